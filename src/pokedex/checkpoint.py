"""Checkpoints written atomically and read without unpickling arbitrary objects."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from pokedex.errors import PokedexError

# errno values that mean "no room" and "not allowed": each gets its own fix in the message
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


def temp_path(path: Path) -> Path:
    """The sibling a checkpoint is written to before the rename: ``.NAME.tmp``."""
    return path.with_name(f".{path.name}.tmp")


class AtomicCheckpointIO(TorchCheckpointIO):
    """Save to a temporary sibling, fsync, then rename: a crash never leaves a torn file.

    The first save into a folder deletes the ``.*.ckpt.tmp`` files a killed run left there.
    A failed write raises a PokedexError that says what to fix; the previous checkpoint is
    never touched. Loading uses ``weights_only=True`` so a tampered checkpoint cannot run code.
    """

    def __init__(self) -> None:
        super().__init__()
        self._swept: set[Path] = set()

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        path = Path(path)
        tmp = temp_path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._remove_stale_temps(path.parent)
            with open(tmp, "wb") as fh:
                torch.save(checkpoint, fh)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            _fsync_folder(path.parent)
        except (OSError, RuntimeError) as exc:
            cause = _os_error(exc)
            if cause is None:
                raise
            raise PokedexError(_explain(cause, path)) from cause
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)

    def _remove_stale_temps(self, folder: Path) -> None:
        """Delete our own temporaries (``.NAME.ckpt.tmp`` files) left by a killed process.

        Once per folder: within this process saves run one after another and clean up after
        themselves, so anything found on the first visit is an orphan.
        """
        if folder in self._swept:
            return
        for stale in folder.glob(".*.ckpt.tmp"):
            if stale.is_file() and not stale.is_symlink():
                stale.unlink(missing_ok=True)
        self._swept.add(folder)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself survive a power cut (a kill needs no more than the rename)."""
    with contextlib.suppress(OSError):  # some filesystems cannot fsync a folder: best effort
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _os_error(exc: BaseException | None) -> OSError | None:
    """The OSError behind ``exc``, if any.

    torch's zip writer reports a failed write (disk full) as a RuntimeError ("unexpected
    pos") raised while it closes the archive; the real OSError is that error's context.
    """
    while exc is not None and not isinstance(exc, OSError):
        exc = exc.__cause__ or exc.__context__
    return exc


def _explain(exc: OSError, path: Path) -> str:
    """One line: what failed, why, what to do; the old checkpoint is still there."""
    reason = exc.strerror or str(exc)
    if exc.errno in _NO_ROOM:
        fix = f"free space in {path.parent} or set output_dir to a disk with room"
    elif exc.errno in _NOT_ALLOWED:
        fix = f"make {path.parent} writable or set output_dir to a writable folder"
    else:
        fix = f"check {path.parent}"
    return f"cannot write checkpoint {path}: {reason}; {fix} (the previous checkpoint is unchanged)"
