"""Robustness: deterministic shifts, and top-1 under each one on the colour world."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pokedex.cli import app
from pokedex.core.bundle import Bundle
from pokedex.core.preprocess import flatten
from pokedex.evaluation.robustness import robustness
from pokedex.evaluation.shifts import SEVERITIES, SHIFTS
from tests.evaluation.conftest import colour_split

WHITE = (255, 255, 255)
runner = CliRunner()


@pytest.fixture(scope="module")
def sprites() -> np.ndarray:
    return colour_split(2, seed=5)[0][:6]  # (6, 128, 128, 4)


@pytest.mark.parametrize("name", list(SHIFTS))
def test_every_shift_is_deterministic_and_grows_with_severity(
    sprites: np.ndarray, name: str
) -> None:
    shift = SHIFTS[name]
    assert len(shift.levels) == len(SEVERITIES)
    clean = flatten(sprites, WHITE)
    change = []
    for severity in SEVERITIES:
        out = shift.apply(sprites, severity, WHITE, seed=3)
        assert out.shape == sprites.shape
        assert out.dtype == np.uint8
        np.testing.assert_array_equal(out, shift.apply(sprites, severity, WHITE, seed=3))
        change.append(float(np.abs(flatten(out, WHITE) - clean).mean()))
    assert change[0] > 0  # even the mildest severity changes the image
    assert change[-1] > change[0]  # the strongest changes it more


def test_severity_out_of_range_is_refused(sprites: np.ndarray) -> None:
    with pytest.raises(ValueError, match="severity 6"):
        SHIFTS["blur"].apply(sprites, 6, WHITE)


def test_background_shifts_keep_the_sprite_and_replace_the_transparency(
    sprites: np.ndarray,
) -> None:
    out = SHIFTS["background_solid"].apply(sprites, 5, WHITE)
    opaque = sprites[..., 3] == 255
    np.testing.assert_array_equal(out[opaque], sprites[opaque])
    assert (out[..., 3] == 255).all()
    assert (out[~opaque][:, :3] != 255).any()  # the white background is gone


def test_robustness_table_and_plot(bundle: Bundle, processed: Path, tmp_path: Path) -> None:
    chosen = ["brightness", "background_noise", "rotation"]
    report = robustness(
        bundle, processed, tmp_path / "out", shifts=chosen, severities=[1, 5], images=12
    )
    assert report["images"] == 12
    assert report["clean_top1"] == 1.0  # the colour model is perfect on clean test sprites
    assert list(report["shifts"]) == chosen
    for r in report["shifts"].values():
        assert len(r["acc_top1"]) == 2
        assert all(0.0 <= a <= 1.0 for a in r["acc_top1"])
    # colour is all this model knows: dimming colours to a fifth must cost accuracy
    assert report["shifts"]["brightness"]["acc_top1"][1] < report["clean_top1"]
    assert report["mean_shifted_top1"] == pytest.approx(
        np.mean([a for r in report["shifts"].values() for a in r["acc_top1"]])
    )
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == ["robustness.json", "robustness.md", "robustness.png"]
    assert json.loads((tmp_path / "out" / "robustness.json").read_text()) == report
    table = (tmp_path / "out" / "robustness.md").read_text()
    assert all(f"| {name} |" in table for name in chosen)
    assert (tmp_path / "out" / "robustness.png").read_bytes()[:4] == b"\x89PNG"
    again = robustness(
        bundle, processed, tmp_path / "again", shifts=chosen, severities=[1, 5], images=12
    )
    assert again["shifts"] == report["shifts"]  # seeded: the same numbers every run


def test_cli_robustness(bundle: Bundle, processed: Path, tmp_path: Path) -> None:
    out = tmp_path / "rob"
    args = ["evaluate", "--model", str(bundle.path), "--processed", str(processed)]
    result = runner.invoke(
        app,
        [*args, "--robustness", "--shift", "blur", "--severity", "3", "--images", "6",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "| blur |" in result.output
    assert json.loads((out / "robustness.json").read_text())["severities"] == [3]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--shift", "fog"], "unknown shift fog"),
        (["--severity", "9"], "severity 9 out of range"),
        (["--images", "0"], "--images must be at least 1"),
    ],
)
def test_cli_robustness_errors(
    bundle: Bundle, processed: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    args = ["evaluate", "--model", str(bundle.path), "--processed", str(processed)]
    result = runner.invoke(app, [*args, "--robustness", *extra, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert message in result.output
    assert not (tmp_path / "o").exists()
