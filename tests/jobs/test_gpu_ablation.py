"""The GPU ablation on a CPU: scripts/gpu_ablation.sh on a tiny pack (unpack, one probe, every arm
on the same sized schedule, scored on the test split and a photo set), and how it is read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pokedex.data.pack import pack
from pokedex.errors import PokedexError
from pokedex.jobs.gpuablation import CURVES, RESULTS, ablate, check_arms, format_table, noise
from tests.conftest import write_photo_folder
from tests.jobs.conftest import gpu_script_env, run_gpu_script

BUDGET = 300  # ample: epochs on this shared CPU have measured from 0.1 to 4.5 s
EPOCHS = 3  # at most, so the test takes seconds, not the budget it is sized by
# the smoke preset with the small ShuffleNet: its checkpoints, written every epoch, are 9 MB
OVERRIDES = ["experiment=smoke", "data.num_workers=0", "model.arch=shufflenet_v2_x1_0"]


def test_the_script_runs_every_arm_on_one_schedule_within_its_budget(
    processed: Path, tmp_path: Path
) -> None:
    pack(processed, tmp_path / "pack", size=32, quality=80, workers=1)
    out = tmp_path / "out"
    env = gpu_script_env(
        tmp_path,
        out,
        POKEDEX_REAL_PHOTOS=str(write_photo_folder(processed, tmp_path / "photos")),
        POKEDEX_ABLATION_ARMS="base,perspective",
    )
    command = ["scripts/gpu_ablation.sh", str(BUDGET), f"--max-epochs={EPOCHS}", *OVERRIDES]
    files = run_gpu_script(command, env, out)
    assert files == sorted([RESULTS, CURVES, "run.log"])
    report = json.loads((out / RESULTS).read_text())
    assert (
        report["total_s"] <= BUDGET + 20
    )  # the last arm's hard stop leaves 20 s to test and score
    assert [a["arm"] for a in report["arms"]] == ["base", "perspective"]
    base, slant = report["arms"]
    assert slant["changes"] == ["augment.perspective=0.3", "augment.perspective_distortion=0.3"]
    assert report["epochs"] == EPOCHS  # what fits the budget, up to the cap
    for arm in (base, slant):  # one schedule for all, sized from the probe, run to its end
        assert arm["epochs_planned"] == arm["epochs_run"] == EPOCHS
        assert 0 <= arm["test/acc_top1"] <= 1
        assert arm["photos/n"] == 12  # the photo set: the test canvas of each of 12 species
    assert slant["delta/photos/acc_top1"] == pytest.approx(
        slant["photos/acc_top1"] - base["photos/acc_top1"], abs=1e-4
    )
    assert isinstance(slant["beyond_noise"], bool)
    log = (out / "run.log").read_text()
    assert "| perspective | augment.perspective=0.3 augment.perspective_distortion=0.3 |" in log
    assert "A photo top-1 difference counts beyond" in log


def test_arms_are_checked_before_any_training() -> None:
    with pytest.raises(PokedexError, match=r"unknown ablation arm\(s\) \['colour'\]: choose among"):
        check_arms(["base", "colour"], ["experiment=smoke"])
    with pytest.raises(PokedexError, match="must include base"):
        check_arms(["perspective"], ["experiment=smoke"])
    # the smoke preset's augmentation has no JPEG artefacts to take away
    with pytest.raises(PokedexError, match=r"\['no_jpeg'\] change nothing against these overrides"):
        check_arms(["base", "no_jpeg"], ["experiment=smoke"])
    with pytest.raises(PokedexError, match=r"perspective_distortion=0\.9"):
        check_arms(["base"], ["experiment=smoke", "augment.perspective_distortion=0.9"])
    assert check_arms(["base", "no_jpeg"], ["experiment=photo"])["no_jpeg"] == ["augment.jpeg=0"]
    with pytest.raises(PokedexError, match="--max-epochs 1: a one-cycle schedule needs at least 2"):
        ablate(60, ["experiment=smoke"], Path("unused"), ["base"], max_epochs=1)


def test_a_difference_counts_beyond_two_standard_errors_of_a_difference() -> None:
    assert noise(0.5, 1361) == pytest.approx(0.0383, abs=1e-4)  # the photo set at 50 %
    assert noise(0.9, 2551) == pytest.approx(0.0168, abs=1e-4)  # the test split at 90 %
    assert noise(0.5, 0) == float("inf")
    report = {
        "epochs": 20,
        "device": "NVIDIA H200 x1",
        "overrides": ["experiment=photo"],
        "arms": [
            {"arm": "base", "changes": [], "epochs_run": 20, "train_s": 60.0,
             "photos/acc_top1": 0.5, "photos/n": 1361.0},
            {"arm": "no_blur", "changes": ["augment.blur=0"], "epochs_run": 20, "train_s": 59.0,
             "photos/acc_top1": 0.45, "photos/n": 1361.0, "delta/photos/acc_top1": -0.05,
             "beyond_noise": True},
            {"arm": "no_jpeg", "changes": ["augment.jpeg=0"], "error": "RuntimeError: no memory"},
        ],
    }  # fmt: skip
    table = format_table(report)
    assert "| no_blur | augment.blur=0 | 20 | 59 | – | – | – | 45.0 (-5.0) | yes |" in table
    assert "| no_jpeg | augment.jpeg=0 | failed: RuntimeError: no memory |" in table
    assert "counts beyond 3.8 points (2 standard errors of a difference on 1361 photos)" in table
