"""T6: checkpoints stay whole under SIGKILL, a full disk and a read-only folder; no temp litter.

The writers under test run in forks of this process: a fork starts at once, where a fresh
interpreter spends about 20 s importing torch on a busy box, and the kill storm needs 20.
"""

from __future__ import annotations

import errno
import hashlib
import multiprocessing as mp
import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest
import torch

from pokedex.data.prepare import prepare
from pokedex.errors import PokedexError
from pokedex.io import atomic_path, remove_stale_temps
from pokedex.jobs.checkpoint import AtomicCheckpointIO
from tests.conftest import write_raw
from tests.figures import Figure

FORK = mp.get_context("fork")
POKEDEX = str(Path(sys.executable).with_name("pokedex"))
MiB = 1024 * 1024
KILLS = 20
PAUSE_S = 0.015  # after each MiB written: adds about 1 s to a save of the ~64 MB state
TRAIN_S = 0.3  # the training steps between two checkpoints
# parameters that carry SGD momentum in the fake optimizer state (~19 MB of it)
OPTIMIZED = ("layer4.1.conv1.weight", "layer4.1.conv2.weight", "fc.weight", "fc.bias")


@pytest.fixture(scope="module")
def resnet_state() -> dict[str, Any]:
    """A checkpoint shaped like Lightning's: 50-class resnet18 weights plus momentum, ~64 MB."""
    from torchvision.models import resnet18

    torch.manual_seed(0)
    weights = resnet18(num_classes=50).state_dict()
    momentum = {
        i: {"momentum_buffer": torch.randn_like(weights[n])} for i, n in enumerate(OPTIMIZED)
    }
    groups = [{"lr": 0.01, "momentum": 0.9, "params": list(momentum)}]
    return {
        "version": 0,
        "state_dict": weights,
        "optimizer_states": [{"state": momentum, "param_groups": groups}],
    }


def _stamped(state: dict[str, Any], version: int) -> dict[str, Any]:
    """``state`` as saved at ``version``: the counter and the fc bias both carry it."""
    bias = torch.full_like(state["state_dict"]["fc.bias"], float(version))
    return {**state, "version": version, "state_dict": {**state["state_dict"], "fc.bias": bias}}


def _same(a: Any, b: Any) -> bool:
    """Deep equality of checkpoint contents, tensors compared element by element."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


class _SlowDisk:
    """Writes in 1 MiB pieces with a pause after each: a slow disk, so kills land mid-save."""

    def __init__(self, fh: Any, written: Any) -> None:
        self._fh = fh
        self._written = written  # shared with the parent: it waits for the first bytes

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), MiB):
            piece = view[start : start + MiB]
            self._fh.write(piece)
            before = self._written.value
            self._written.value = before + len(piece)
            if before // MiB != self._written.value // MiB:
                time.sleep(PAUSE_S)
        return len(view)

    def flush(self) -> None:
        self._fh.flush()


def _save_until_killed(
    state: dict[str, Any], path: Path, first: int, started: Any, done: Any, written: Any
) -> None:
    """Child: save ever newer versions of ``state`` to ``path`` through a slow disk, forever."""
    real_save = torch.save

    def slow_save(obj: Any, f: Any, **kwargs: Any) -> None:
        real_save(obj, _SlowDisk(f, written), **kwargs)

    torch.save = slow_save  # this fork never returns, so the patch dies with it
    checkpoint_io = AtomicCheckpointIO()
    version = first
    while True:
        started.value = version
        checkpoint_io.save_checkpoint(_stamped(state, version), path)
        done.value = version
        time.sleep(TRAIN_S)
        version += 1


def _wait_for(condition: Callable[[], bool], child: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert child.is_alive(), f"the writer died on its own (exit {child.exitcode})"
        assert time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.002)


@pytest.mark.slow
def test_kill_storm_always_leaves_a_whole_checkpoint(
    resnet_state: dict[str, Any], tmp_path: Path, figure: Figure
) -> None:
    path = tmp_path / "last.ckpt"

    def temps() -> int:  # atomic_file's temporaries of last.ckpt
        return len(list(tmp_path.glob(".last.ckpt.*.tmp")))

    begun = time.perf_counter()
    AtomicCheckpointIO().save_checkpoint(_stamped(resnet_state, 0), path)
    # a save in the child: this unslowed one plus a pause per MiB
    save_s = time.perf_counter() - begun + path.stat().st_size / MiB * PAUSE_S
    rng = random.Random(6)
    on_disk, inside, loadable, corrupt, lost = 0, 0, 0, 0, []
    started_s = time.perf_counter()
    for kill in range(KILLS):
        started, done, written = (FORK.Value("q", v, lock=False) for v in (on_disk, on_disk, 0))
        args = (resnet_state, path, on_disk + 1, started, done, written)
        child = FORK.Process(target=_save_until_killed, args=args, daemon=True)
        child.start()
        try:
            _wait_for(lambda w=written: w.value > 0, child)  # its first save is writing
            # odd kills are timed inside that save; even ones land anywhere in two cycles
            cycle = save_s + TRAIN_S
            time.sleep(rng.uniform(0, save_s / 2) if kill % 2 else rng.uniform(0, 2 * cycle))
        finally:
            child.kill()  # SIGKILL: no finally blocks, no cleanup
            child.join()
        assert child.exitcode == -signal.SIGKILL
        inside += temps()  # a temp only outlives the process when a save was cut
        try:
            loaded = torch.load(path, weights_only=True)
        except Exception:
            corrupt += 1
            continue
        version = int(loaded["version"])
        # the last save that finished, or the one in flight if only its rename was missing
        whole = done.value <= version <= started.value
        whole = whole and _same(loaded, _stamped(resnet_state, version))
        loadable += whole
        corrupt += not whole
        lost.append(started.value - version)  # 1: the save in flight is gone
        on_disk = version
    storm_s = time.perf_counter() - started_s

    orphan_left = temps() == 1  # the last kill was timed inside a save
    AtomicCheckpointIO().save_checkpoint(_stamped(resnet_state, 1), path)
    litter = sorted(p.name for p in tmp_path.glob(".*"))
    figure(
        "T6",
        f"kill storm: {KILLS} SIGKILLs in {storm_s:.0f} s, {inside} inside a save; loadable "
        f"{loadable}/{KILLS}, corrupt {corrupt}; orphan temp files after kills {inside}, after "
        f"restart {len(litter)}; saves lost per kill: {lost.count(0)} x 0, {lost.count(1)} x 1, "
        f"more {sum(n > 1 for n in lost)} (save ~{save_s:.1f} s)",
    )
    assert corrupt == 0
    assert loadable == KILLS
    assert inside >= 5
    assert orphan_left, "the last kill should have left a temp file for the restart to remove"
    assert litter == []


def test_the_first_save_removes_only_its_own_orphans(tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    (folder / "sub").mkdir(parents=True)
    own = [".last.ckpt.abcd1234.tmp", ".last.ckpt.x_9y8z7w.tmp", ".best.ckpt.q1w2e3r4.tmp"]
    foreign = [
        "last.ckpt.abcd1234.tmp",
        ".last.ckpt.tmp",  # not atomic_file's pattern
        ".last.ckpt.ABCD1234.tmp",
        ".last.ckpt.abcd1234.tmp.keep",
        ".notes.ckpt.abcd1234.tmp",  # another name's: swept when that name is saved
        "sub/.last.ckpt.abcd1234.tmp",
    ]
    for name in own + foreign:
        (folder / name).write_bytes(b"torn")
    (folder / ".last.ckpt.dir12345.tmp").mkdir()  # a torn atomic write may be a folder
    (tmp_path / "elsewhere").write_text("keep")
    (folder / ".last.ckpt.link1234.tmp").symlink_to(tmp_path / "elsewhere")
    own += [".last.ckpt.dir12345.tmp", ".last.ckpt.link1234.tmp"]

    checkpoint_io = AtomicCheckpointIO()
    checkpoint_io.save_checkpoint({"version": 1}, folder / "last.ckpt")
    checkpoint_io.save_checkpoint({"version": 1}, folder / "best.ckpt")

    assert [n for n in own if (folder / n).exists() or (folder / n).is_symlink()] == []
    assert [n for n in foreign if not (folder / n).exists()] == []
    assert (tmp_path / "elsewhere").read_text() == "keep"  # the link went, not its target
    assert torch.load(folder / "last.ckpt", weights_only=True) == {"version": 1}


def _die_inside_atomic_path(target: Path) -> None:
    """Child: start an atomic folder write and vanish halfway, as a SIGKILL would."""
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "manifest.csv").write_text("half written\n")
        os._exit(0)  # skips every finally block and context exit


def test_prepare_removes_the_orphans_of_a_killed_run(tmp_path: Path, figure: Figure) -> None:
    write_raw(tmp_path / "raw", species=4, per_species=4)
    out = tmp_path / "processed"
    prepare(tmp_path / "raw", out, workers=1)
    child = FORK.Process(target=_die_inside_atomic_path, args=(out,))
    child.start()
    child.join(60)
    orphans = sorted(tmp_path.glob(".processed.*.tmp"))
    assert len(orphans) == 1
    assert (orphans[0] / "manifest.csv").is_file()
    (tmp_path / ".processed.old").mkdir()  # a kill between the swap and its cleanup
    # near misses of the pattern: not ours, so they stay
    foreign = [
        ".processed.keep.tmp",
        ".processed.ABCD1234.tmp",
        ".processed.abcd1234.tmp.bak",
        "processed.abcd1234.tmp",
        ".processedx.abcd1234.tmp",
        ".other.abcd1234.tmp",
        ".other.old",
    ]
    for name in foreign:
        (tmp_path / name).mkdir()

    prepare(tmp_path / "raw", out, workers=1)

    left = sorted(p.name for p in tmp_path.glob(".processed.*") if p.name not in foreign)
    assert left == []
    assert [n for n in foreign if not (tmp_path / n).is_dir()] == []
    assert (out / "summary.json").is_file()
    figure(
        "T6",
        "prepare: orphans of a killed run removed 2/2 (temp folder + .old), "
        f"near misses kept {len(foreign)}/{len(foreign)}",
    )


def test_the_old_copy_stays_while_the_target_is_missing(tmp_path: Path) -> None:
    (tmp_path / ".processed.old").mkdir()  # killed between the two renames: the only copy
    assert remove_stale_temps(tmp_path / "processed") == []
    assert (tmp_path / ".processed.old").is_dir()


def _save_under_file_limit(path: Path, state: dict[str, Any], limit: int, conn: Connection) -> None:
    """Child: cap file sizes at ``limit`` bytes (EFBIG past it, as a full disk) and save."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an error from write() instead of death
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    try:
        AtomicCheckpointIO().save_checkpoint(state, path)
        conn.send(("saved", "", 0))
    except PokedexError as exc:
        conn.send(("PokedexError", str(exc), getattr(exc.__cause__, "errno", 0)))
    except Exception as exc:  # reported, so the assertion shows what leaked through
        conn.send((type(exc).__name__, str(exc), 0))


def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path: Path, figure: Figure) -> None:
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"version": 1, "w": torch.zeros(1000)}, path)
    before = path.read_bytes()
    reader, writer = FORK.Pipe(duplex=False)
    bigger = {"version": 2, "w": torch.ones(MiB)}  # 4 MiB against a 256 KiB limit
    child = FORK.Process(target=_save_under_file_limit, args=(path, bigger, 256 * 1024, writer))
    child.start()
    assert reader.poll(60), "the child reported nothing"
    kind, message, err = reader.recv()
    child.join(60)

    assert (kind, err) == ("PokedexError", errno.EFBIG), message
    assert str(path) in message
    assert "free space" in message
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    figure(
        "T6",
        "full disk (RLIMIT_FSIZE, EFBIG): previous checkpoint byte-identical, temp files 0; "
        f"error: {message}",
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_a_read_only_folder_gives_a_clear_error(tmp_path: Path, figure: Figure) -> None:
    folder = tmp_path / "checkpoints"
    path = folder / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"version": 1}, path)
    before = path.read_bytes()
    folder.chmod(0o555)
    try:
        with pytest.raises(PokedexError, match="writable") as caught:
            AtomicCheckpointIO().save_checkpoint({"version": 2}, path)
    finally:
        folder.chmod(0o755)
    assert path.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["last.ckpt"]
    figure("T6", f"read-only folder: previous checkpoint byte-identical; error: {caught.value}")


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.ckpt")}


def _limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


@pytest.mark.slow
def test_training_on_a_full_disk_exits_with_one_line(tmp_path: Path, figure: Figure) -> None:
    from pokedex.jobs.train import compose_config, train

    write_raw(tmp_path / "raw", per_species=8)
    processed = prepare(tmp_path / "raw", tmp_path / "processed", workers=1).out
    runs = tmp_path / "runs"
    args = ["experiment=smoke", f"data.root={processed}", f"output_dir={runs}", "name=full"]
    train(compose_config([*args, "trainer.max_epochs=1"]))
    last = next(runs.glob("full/*/checkpoints/last.ckpt"))
    before = _digests(last.parent)

    # resume for a second epoch with files capped at 1 MiB: its first checkpoint cannot fit
    proc = subprocess.run(
        [POKEDEX, "train", *args, "trainer.max_epochs=2", "resume=last"],
        capture_output=True,
        text=True,
        timeout=480,
        preexec_fn=_limit_file_size(MiB),
        check=False,
    )
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(errors) == 1, proc.stderr[-3000:]
    assert "free space" in errors[0]
    assert "Traceback" not in proc.stderr
    assert _digests(last.parent) == before  # best.ckpt and last.ckpt, byte for byte
    assert list(last.parent.glob(".*")) == []
    figure(
        "T6",
        f"`pokedex train` on a full disk: exit {proc.returncode}, {len(before)} checkpoints "
        f"byte-identical, stderr: {errors[0]}",
    )
