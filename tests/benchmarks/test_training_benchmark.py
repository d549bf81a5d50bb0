"""`pokedex benchmark training`: three pipelines on one model, one table, clean errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pokedex.benchmarks.training import PipelineResult, augment_preset, format_table, recipe
from pokedex.cli import app
from pokedex.jobs.train import compose_config


def test_the_command_times_each_pipeline_on_the_test_data(processed: Path) -> None:
    raw = processed.parent / "raw"
    args = ["benchmark", "training", "--processed", str(processed), "--raw", str(raw)]
    small = ["--arch", "resnet18", "--size", "32", "--batch-size", "8", "--steps", "1"]
    result = CliRunner().invoke(app, [*args, *small, "--repeats", "1"])
    assert result.exit_code == 0, result.output
    rates = dict(re.findall(r"^\| (naive|ours|ceiling) \| ([\d.]+) \|", result.output, re.M))
    assert set(rates) == {"naive", "ours", "ceiling"}
    assert all(float(v) > 0 for v in rates.values())


def test_a_photo_preset_is_timed_with_its_tiles_and_bf16_with_its_own_rows(
    processed: Path, tmp_path: Path
) -> None:
    import numpy as np

    from pokedex.data.backgrounds import TILES_FILE

    raw = processed.parent / "raw"
    args = ["benchmark", "training", "--processed", str(processed), "--raw", str(raw)]
    small = ["--size", "32", "--batch-size", "8", "--steps", "1", "--repeats", "1"]
    photo = [*args, *small, "--experiment", "photo_finetune"]
    missing = CliRunner().invoke(app, [*photo, "--backgrounds", str(tmp_path)])
    assert missing.exit_code != 0  # once a traceback from deep inside the augmentation
    assert "run `pokedex data backgrounds`" in missing.output
    assert "Traceback" not in missing.output
    tiles = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / TILES_FILE, tiles)
    result = CliRunner().invoke(
        app, [*photo, "--backgrounds", str(tmp_path), "--precision", "bf16-mixed"]
    )
    assert result.exit_code == 0, result.output
    names = re.findall(r"^\| ([a-z0-9 -]+?) \| [\d.]+ \|", result.output, re.M)
    assert names == ["naive", "ours", "ceiling", "ours bf16-mixed", "ceiling bf16-mixed"]
    assert "Training steps on " in result.output  # the table names its machine


def test_an_unknown_precision_is_one_line_naming_the_choices(processed: Path) -> None:
    args = ["benchmark", "training", "--processed", str(processed), "--precision", "fp8"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert "precision 'fp8': choose from 32-true, bf16-mixed" in result.output
    assert "Traceback" not in result.output


def test_the_table_gives_best_and_median_with_ratios_to_naive_and_ceiling() -> None:
    table = format_table(
        [
            PipelineResult("naive", [40.0, 50.0, 30.0]),
            PipelineResult("ours", [90.0, 60.0]),
            PipelineResult("ceiling", [100.0, 80.0]),
        ]
    )
    assert "| naive | 50.0 | 40.0 | 1.00 | 0.50 |" in table
    assert "| ours | 90.0 | 75.0 | 1.80 | 0.90 |" in table
    assert "| ceiling | 100.0 | 90.0 | 2.00 | 1.00 |" in table


def test_the_defaults_follow_the_cpu_preset_and_a_named_preset_replaces_its_augmentation() -> None:
    cpu = compose_config(["experiment=cpu"])
    defaults = recipe()
    assert (defaults.arch, defaults.size, defaults.batch_size) == (
        cpu.model.arch,
        cpu.model.input_size,
        cpu.data.batch_size,
    )
    assert defaults.augment.brightness == cpu.augment.brightness
    assert list(defaults.augment.scale) == list(cpu.augment.scale)
    moderate, default = augment_preset("moderate"), augment_preset("default")
    assert moderate.rotate == 0.0
    assert default.rotate == 15.0


def test_an_unknown_preset_is_one_line_naming_the_choices(processed: Path) -> None:
    result = CliRunner().invoke(
        app, ["benchmark", "training", "--processed", str(processed), "--augment", "heavy"]
    )
    assert result.exit_code != 0
    assert "no augmentation preset 'heavy'" in result.output
    assert "moderate" in result.output
    assert "Traceback" not in result.output


def test_the_pack_benchmark_scores_the_model_through_each_setting(
    smoke_bundle: Path, processed: Path
) -> None:
    from pokedex.benchmarks.pack import format_table
    from pokedex.benchmarks.pack import run as run_pack

    settings = [(32, 50, 100), (128, 50, 100), (128, 100, 100), (96, 50, 100), (96, 50, 20)]
    baseline, results = run_pack(str(smoke_bundle), processed, settings)
    small, large, lossless, exact_alpha, rough_alpha = results
    assert lossless.top1 == baseline  # lossless at full size: the very same canvases
    assert small.bytes_per_image < large.bytes_per_image  # fewer pixels, same quality
    assert lossless.psnr_db == float("inf")  # lossless WebP keeps every premultiplied pixel
    assert 15 < large.psnr_db < 60  # q50 loses detail; the error is the codec's alone
    assert small.psnr_db < 60  # measured at 32 px against the lossless 32 px resize, not 128
    # resized, the sprites' edges have partial alpha, which a rough alpha quantizes
    assert rough_alpha.bytes_per_image < exact_alpha.bytes_per_image
    assert rough_alpha.psnr_db < exact_alpha.psnr_db  # the alpha's loss counts in the error
    table = format_table(baseline, results, "smoke", "a CPU")
    assert "| 32 px q50 |" in table
    assert "| 128 px lossless |" in table
    assert "| 96 px q50, alpha q20 |" in table
    assert "| inf |" in table
    assert "a CPU" in table


@pytest.mark.parametrize("setting", ["96", "96:70:50:1", "96:q70"])
def test_a_malformed_pack_setting_is_one_line_naming_both_forms(setting: str) -> None:
    result = CliRunner().invoke(app, ["benchmark", "pack", "--setting", setting])
    assert result.exit_code == 2
    assert f"--setting '{setting}': expected SIZE:QUALITY or SIZE:QUALITY:ALPHA_QUALITY" in (
        result.output
    )


def test_flip_averaging_is_scored_on_sprites_and_photos_and_timed(
    smoke_bundle: Path, processed: Path, tmp_path: Path
) -> None:
    from pokedex.benchmarks.tta import format_table
    from pokedex.benchmarks.tta import run as run_tta
    from tests.conftest import write_photo_folder

    rows = run_tta(str(smoke_bundle), processed, write_photo_folder(processed, tmp_path / "photos"))
    assert [str(r["set"]).split(" (")[0] for r in rows] == ["test sprites", "real photos"]
    # the cost is a ratio of two timings (about 2 on a quiet machine): not asserted beyond its sign
    assert all(0 <= float(r["top1_tta"]) <= 1 and float(r["cost"]) > 0 for r in rows)
    assert "with flips" in format_table(rows, "smoke", "a CPU")
