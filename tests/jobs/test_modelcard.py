"""MODEL_CARD.md is rendered from what the bundle records, so it cannot drift from the model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pokedex.core.bundle import read_bundle, update_meta
from pokedex.jobs.modelcard import CARD, render_card
from tests.serving.conftest import write_bundle

POKEDEX = str(Path(sys.executable).with_name("pokedex"))


def _bundle(tmp_path: Path):
    bundle = read_bundle(write_bundle(tmp_path / "b"))
    return update_meta(
        bundle,
        metrics={"test/acc_top1": 0.8123, "test/acc_top5": 0.95, "photos/acc_top1": 0.31,
                 "photos/n": 1361, "epochs": 15, "fit_seconds": 5400},
        run={"experiment": "cpu", "mlflow_run_id": "abc123", "data_version": "e679c86c"},
        temperature=1.234,
        open_set={"score": "msp", "threshold": 0.2, "false_accept": 0.1, "false_reject": 0.05},
        serving={"variant": "int8", "top1": 0.81, "batch32_img_s": 900.0, "measured": "2026"},
    )  # fmt: skip


def test_card_reports_the_recorded_figures(tmp_path: Path) -> None:
    card = render_card(_bundle(tmp_path))
    for figure in ("81.2%", "95.0%", "31.0%", "1361", "abc123", "e679c86c", "1.234", "`int8`"):
        assert figure in card, figure
    assert "## Limitations" in card


def test_card_names_the_worst_unknowns_the_gpu_run_and_a_missing_tracker(tmp_path: Path) -> None:
    bundle = update_meta(_bundle(tmp_path), run={"experiment": "photo", "seed": 0})
    (bundle.path / "gpu_run.json").write_text(
        json.dumps({"device": "NVIDIA H200 x1", "epochs_run": 170, "epochs_planned": 218,
                    "train_s": 441.3, "budget_s": 486.0})
    )  # fmt: skip
    evaluation = {"open_set": {"false_accept_by_kind": {"texture": 0.06, "text": 0.576}}}
    card = render_card(bundle, evaluation)
    assert "non-Pokémon image: text 57.6%, texture 6.0%." in card  # worst first
    assert "NVIDIA H200 x1: 170 of 218 planned epochs in 441.3 s" in card
    assert "no MLflow run (logged as CSV)" in card


def test_cli_writes_the_card_with_the_evaluation(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    evaluation = tmp_path / "metrics.json"
    evaluation.write_text(
        json.dumps(
            {"split": "test", "acc_top1": 0.8, "acc_top5": 0.9, "acc_macro": 0.7,
             "calibration": {"ece_before": 0.06, "ece_after": 0.021}}
        )
    )  # fmt: skip
    done = subprocess.run(
        [POKEDEX, "card", "--model", str(bundle.path), "--evaluation", str(evaluation)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "ECE 6.0% → 2.1%" in (bundle.path / CARD).read_text()


def test_cli_missing_evaluation_file_is_one_line(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    done = subprocess.run(
        [POKEDEX, "card", "--model", str(bundle.path), "--evaluation", str(tmp_path / "x.json")],
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0
    assert "no such file" in done.stderr
    assert "Traceback" not in done.stderr


def test_photo_figures_come_from_the_evaluation_when_training_had_no_photos(
    tmp_path: Path,
) -> None:
    bundle = update_meta(_bundle(tmp_path), metrics={"test/acc_top1": 0.83, "epochs": 22})
    evaluation = {"split": "test", "photos": {"n": 1361, "acc_top1": 0.262, "acc_top5": 0.438}}
    card = render_card(bundle, evaluation)
    photo_row = next(line for line in card.splitlines() if line.startswith("| real photos"))
    assert "| 1361 | 26.2% | 43.8% |" in photo_row
    assert "| 0 | – |" in render_card(bundle).split("| real photos", 1)[1].splitlines()[0]


def test_card_names_the_batch_mixing_of_the_recipe() -> None:
    from pokedex.jobs.modelcard import _mixing

    assert _mixing({"mixup": 0.0, "cutmix": 0.0}) == "no mixup or CutMix"
    assert _mixing({"mixup": 0.0}) == "no mixup or CutMix"  # bundles from before CutMix
    assert _mixing({"mixup": 0.2, "cutmix": 1.0, "mix_prob": 0.5}) == (
        "mixup 0.2 and CutMix 1.0 on 50% of batches"
    )


def test_card_says_which_weights_a_fine_tuned_model_started_from(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    assert "Fine-tuned" not in render_card(bundle)
    tuned = update_meta(bundle, run={**bundle.meta["run"], "init_version": "20261127-abc"})
    assert "started from the weights of `20261127-abc`" in render_card(tuned)


def test_card_names_the_pack_and_how_lossy_it_was(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    assert "pack" not in render_card(bundle)
    run = {**bundle.meta["run"], "data_pack": "0123abcd", "data_pack_lossy": "64 px WebP q85"}
    card = render_card(update_meta(bundle, run=run))
    assert "Trained on pack `0123abcd` of that data (64 px WebP q85" in card


def test_card_says_what_an_auto_precision_ran_as(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    (bundle.path / "config.yaml").write_text("trainer:\n  precision: auto\n")
    assert "precision `auto`, " in render_card(bundle)  # bundles from before the record
    ran = update_meta(bundle, run={**bundle.meta["run"], "precision": "bf16-mixed"})
    assert "precision `auto` (ran as `bf16-mixed`)" in render_card(ran)
    pinned = update_meta(bundle, run={**bundle.meta["run"], "precision": "auto"})
    assert "ran as" not in render_card(pinned)


def test_card_says_when_the_model_averages_mirror_images(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path)
    assert "mirror image" not in render_card(bundle)
    flips = update_meta(bundle, net={**bundle.meta.get("net", {}), "flip_average": True})
    assert "mean of the image and its mirror image" in render_card(flips)
