"""A training run on a borrowed machine within a time budget, and its way back.

`run` (called by scripts/gpu_train.sh on the GPU machine) measures how long one epoch takes
once warmed up, sizes the epochs so the one-cycle schedule ends inside the budget (a time limit
that cuts the schedule wastes its annealing), trains, and writes what comes back as at most
``MAX_FILES`` files of at most ``PART_BYTES`` each: the run bundle as a tar in parts, its
learning curves and metrics, and ``manifest.json`` with every checksum. `collect` (run here)
checks the parts and restores the bundle, ready for scripts/release.sh and the gate.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import shutil
import statistics
import tarfile
import time
from pathlib import Path
from typing import Any

import lightning as L

from pokedex.errors import PokedexError
from pokedex.io import atomic_path, check_digests, sha256_file

log = logging.getLogger(__name__)

MAX_FILES = 8
PART_BYTES = 15 * 2**20  # under the 16 MiB a file may weigh on the way back
MANIFEST = "manifest.json"
PROBE_EPOCHS = 4  # the first is warm-up (allocator, cuDNN autotuning); the rest are timed
# Epochs slow down over a long run: on the H200 (2026-12-04, experiment=photo) the mean epoch of
# 170 was 1.17x the probe's median (2.3 s against 2.0). The plan assumes this much.
SLOWDOWN = 1.2
MARGIN_S = 15  # slack a plan keeps for the test, photo scoring and bundle writes running slower


class EpochClock(L.Callback):
    """Wall seconds of every training epoch, from one epoch's start to the next's: validation,
    photo scoring and checkpoint writes included (they recur every epoch, so they are not fixed
    costs: the first H200 run, which left them out, planned 218 epochs and had time for 170)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._last = 0.0

    def on_train_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        self._last = time.perf_counter()  # after the sanity check, before the first epoch

    def on_train_epoch_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        now = time.perf_counter()  # after validation and the checkpoint callbacks' saves
        self.seconds.append(now - self._last)
        self._last = now


def size_epochs(
    budget_s: float, epoch_s: float, fixed_s: float, *, minimum: int = 2, slowdown: float = 1.0
) -> int:
    """How many epochs of ``epoch_s`` (times ``slowdown``) fit in ``budget_s`` after ``fixed_s``
    of start-up, test and export."""
    if epoch_s <= 0:
        raise PokedexError(f"an epoch took {epoch_s} s: the probe measured nothing")
    epoch_s *= slowdown
    epochs = math.floor((budget_s - fixed_s) / epoch_s)
    if epochs < minimum:
        raise PokedexError(
            f"a budget of {budget_s:.0f} s fits {max(epochs, 0)} epochs of {epoch_s:.1f} s after "
            f"{fixed_s:.0f} s of fixed costs: give it at least "
            f"{math.ceil(fixed_s + minimum * epoch_s)} s"
        )
    return epochs


def train_timed(overrides: list[str]) -> tuple[Any, EpochClock, float]:
    """Train with these Hydra overrides; return the result, its epoch clock and its seconds."""
    from pokedex.jobs.train import compose_config, train

    clock = EpochClock()
    started = time.perf_counter()
    result = train(compose_config(overrides), extra_callbacks=[clock])
    return result, clock, time.perf_counter() - started


def probe(overrides: list[str]) -> tuple[float, float]:
    """Train ``PROBE_EPOCHS`` epochs; return the seconds of an epoch after warm-up and the fixed
    seconds a run of these overrides spends outside its timed epochs (start-up, warm-up epoch,
    test, bundle)."""
    started = time.perf_counter()
    probe_overrides = [
        *overrides,
        f"trainer.max_epochs={PROBE_EPOCHS}",
        "optim.warmup_epochs=1",
        "trainer.max_time=null",
        "logger=csv",
        "name=probe",
    ]
    _, clock, _ = train_timed(probe_overrides)
    epoch_s = statistics.median(clock.seconds[1:] or clock.seconds)
    fixed = time.perf_counter() - started - sum(clock.seconds[1:])
    return epoch_s, fixed


def sized_overrides(epochs: int, cap_s: float) -> list[str]:
    """The overrides of a run sized to ``epochs``: early stopping off (it would cut the schedule
    it was sized for) and a hard stop after ``cap_s``, should the epochs run slower than probed."""
    cap = int(cap_s)
    return [
        f"trainer.max_epochs={epochs}",
        f"trainer.early_stopping_patience={epochs + 1}",
        f"trainer.max_time=00:{cap // 3600:02d}:{cap % 3600 // 60:02d}:{cap % 60:02d}",
    ]


def run(budget_s: float, overrides: list[str], out: Path) -> dict[str, Any]:
    """Probe, size, train; write the way-back files to ``out``; return the manifest."""
    started = time.perf_counter()
    epoch_s, fixed = probe(overrides)
    spent = time.perf_counter() - started
    epochs = size_epochs(budget_s - spent, epoch_s, fixed + MARGIN_S, slowdown=SLOWDOWN)
    log.info("probe: %.2f s per epoch after warm-up; %d epochs fit the budget", epoch_s, epochs)
    # the hard stop leaves 30 s to test and write, so the bundle still comes back
    cap = max(60, budget_s - (time.perf_counter() - started) - 30)
    result, clock, train_s = train_timed([*overrides, *sized_overrides(epochs, cap)])
    manifest = write_return(
        result.bundle.path,
        out,
        extra={
            "budget_s": budget_s,
            "probe_epoch_s": round(epoch_s, 3),
            "epochs_planned": epochs,
            "epochs_run": int(result.metrics.get("epochs", 0)),
            "epoch_s": [round(s, 2) for s in clock.seconds],
            "train_s": round(train_s, 1),
            "total_s": round(time.perf_counter() - started, 1),
            "overrides": overrides,
            "metrics": result.metrics,
            "device": device_name(),
        },
        run_dir=result.run_dir,
    )
    return manifest


def device_name() -> str:
    """The accelerator a run trains on, in words (``cpu`` when there is none)."""
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
    return "cpu"


def write_return(
    bundle: Path, out: Path, *, extra: dict[str, Any], run_dir: Path | None = None
) -> dict[str, Any]:
    """The bundle as tar parts plus curves, metrics and ``manifest.json``, in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(bundle, arcname="bundle")
    data = buf.getvalue()
    parts = []
    for i in range(0, len(data), PART_BYTES):
        name = f"bundle.tar.{i // PART_BYTES:02d}"
        (out / name).write_bytes(data[i : i + PART_BYTES])
        parts.append(name)
    extras = []
    for name in ("learning_curves.png", "metrics.csv"):
        if run_dir is not None and (run_dir / name).is_file():
            shutil.copyfile(run_dir / name, out / name)
            extras.append(name)
    if len(parts) + len(extras) + 1 > MAX_FILES:
        raise PokedexError(f"{len(parts)} bundle parts do not fit the {MAX_FILES} files allowed")
    manifest = {
        **extra,
        "parts": parts,
        "files": {n: sha256_file(out / n) for n in parts + extras},
        "bundle_sha256": hashlib.sha256(data).hexdigest(),
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest


def collect(folder: Path, out: Path) -> dict[str, Any]:
    """Check the files a GPU run brought back and restore its bundle into ``out``."""
    path = folder / MANIFEST
    if not path.is_file():
        raise PokedexError(f"{path} not found: is {folder} what scripts/gpu_train.sh wrote?")
    manifest = json.loads(path.read_text())
    check_digests(
        folder,
        manifest["files"],
        missing="missing: fetch every file the run wrote",
        damaged="checksum mismatch, fetch it again",
    )
    data = b"".join((folder / name).read_bytes() for name in manifest["parts"])
    if hashlib.sha256(data).hexdigest() != manifest["bundle_sha256"]:
        raise PokedexError(f"{folder}: the joined parts do not match the bundle checksum")
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")  # refuses links and paths outside tmp
        for name in manifest["files"]:
            if name not in manifest["parts"]:
                shutil.copyfile(folder / name, tmp / "bundle" / name)
        (tmp / "bundle" / "gpu_run.json").write_text(json.dumps(manifest, indent=2) + "\n")
        inner = tmp / "bundle"
        for item in inner.iterdir():
            item.rename(tmp / item.name)
        inner.rmdir()
    from pokedex.core.bundle import read_bundle

    read_bundle(out)  # a clear error now rather than at release time
    return manifest
