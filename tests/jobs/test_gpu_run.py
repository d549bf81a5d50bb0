"""The GPU path on a CPU: pack, scripts/gpu_train.sh (unpack, probe, sized run, parts), collect,
and a prediction from the collected bundle; the epoch sizing and the checks on the way back."""

from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from pokedex.core.bundle import read_bundle
from pokedex.data.pack import pack
from pokedex.errors import PokedexError
from pokedex.jobs import gpurun
from pokedex.jobs.gpurun import collect, size_epochs, write_return
from pokedex.jobs.predict import TorchPredictor
from tests.jobs.conftest import gpu_script_env, run_gpu_script


def test_epochs_fill_the_budget_after_the_fixed_costs() -> None:
    assert size_epochs(300, 1.2, 60) == 200
    assert size_epochs(100, 10, 20) == 8


def test_the_plan_allows_for_epochs_slowing_down() -> None:
    assert size_epochs(300, 1.0, 60, slowdown=1.2) == 200


def test_an_epoch_is_timed_from_start_to_start_with_what_runs_between(monkeypatch) -> None:
    ticks = iter([10.0, 12.5, 15.5, 17.0])
    monkeypatch.setattr(gpurun.time, "perf_counter", lambda: next(ticks))
    clock = gpurun.EpochClock()
    clock.on_train_start(None, None)  # 10.0
    clock.on_train_epoch_end(None, None)  # 12.5: training, validation, checkpoint
    clock.on_train_epoch_end(None, None)  # 15.5: the gap between epochs belongs to the one before
    clock.on_train_epoch_end(None, None)  # 17.0
    assert clock.seconds == [2.5, 3.0, 1.5]


def test_a_budget_too_small_for_two_epochs_says_how_much_is_needed() -> None:
    with pytest.raises(PokedexError, match="at least 80 s"):
        size_epochs(70, 30, 20)


def test_the_script_trains_within_its_budget_and_collect_restores_the_bundle(
    processed: Path, tmp_path: Path
) -> None:
    from PIL import Image

    from pokedex.data.backgrounds import build_backgrounds

    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(photo)
    build_backgrounds(tmp_path / "bank", extra=[photo], tiles_per_image=4)
    pack(
        processed, tmp_path / "pack", size=32, quality=80, backgrounds=tmp_path / "bank", workers=1
    )
    out = tmp_path / "out"
    env = gpu_script_env(tmp_path, out, GPU_TRAIN_TESTS="0")
    command = [
        *("scripts/gpu_train.sh", "100", "experiment=smoke", "data.num_workers=0"),
        "augment.background_photo=0.3",  # the tiles travelled in the pack
    ]
    run_gpu_script(command, env, out)
    manifest = json.loads((out / "manifest.json").read_text())
    # sized to the budget; the hard stop ends it early only when epochs run slower than probed
    assert 2 <= manifest["epochs_run"] <= manifest["epochs_planned"]
    assert manifest["total_s"] <= 100 + 30  # the hard stop leaves 30 s to test and write
    assert manifest["metrics"]["test/acc_top1"] >= 0

    bundle_dir = tmp_path / "candidate"
    collect(out, bundle_dir)
    bundle = read_bundle(bundle_dir)
    assert (
        bundle.meta["run"]["data_pack"]
        == json.loads((tmp_path / "pack" / "pack.json").read_text())["pack_id"]
    )
    assert bundle.meta["run"]["data_pack_lossy"] == "32 px WebP q80"
    assert (bundle_dir / "gpu_run.json").is_file()
    image = next((tmp_path / "processed").glob("summary.json")).parent  # data restored
    assert (image / "pack.json").is_file()
    assert (tmp_path / "backgrounds" / "tiles.npy").is_file()
    canvases = np.load(image / "test_images.npy")[:1]
    buf = BytesIO()
    Image.fromarray(canvases[0]).save(buf, "PNG")
    answer = TorchPredictor(bundle).predict_image(buf.getvalue(), top_k=3)
    assert len(answer["species"]) == 3


def test_collect_refuses_a_damaged_or_missing_part(smoke_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_return(smoke_bundle, out, extra={"metrics": {}})
    part = out / "bundle.tar.00"
    part.write_bytes(part.read_bytes()[:-1] + b"\0")
    with pytest.raises(PokedexError, match="checksum mismatch"):
        collect(out, tmp_path / "a")
    part.unlink()
    with pytest.raises(PokedexError, match="missing"):
        collect(out, tmp_path / "b")
    with pytest.raises(PokedexError, match=r"manifest\.json not found"):
        collect(tmp_path, tmp_path / "c")
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()
