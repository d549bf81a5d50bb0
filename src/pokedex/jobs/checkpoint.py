"""Checkpoints written atomically and read without unpickling arbitrary objects."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from pokedex.errors import PokedexError
from pokedex.io import atomic_file, remove_stale_temps

# errno values that mean "no room" and "not allowed": each gets its own fix in the message
_NO_ROOM = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints through :func:`pokedex.io.atomic_file`: a crash never leaves a torn file.

    The first save of each checkpoint name removes the temporaries a killed run left for it
    (:func:`pokedex.io.remove_stale_temps`). A failed write raises a PokedexError that says what
    to fix; the previous checkpoint is never touched. Loading uses ``weights_only=True`` so a
    tampered checkpoint cannot run code.
    """

    def __init__(self) -> None:
        super().__init__()
        self._swept: set[Path] = set()

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None
    ) -> None:
        path = Path(path)
        try:
            if path not in self._swept:  # saves of one process run one after another
                remove_stale_temps(path)
                self._swept.add(path)
            with atomic_file(path) as fh:
                torch.save(checkpoint, fh)
        except (OSError, RuntimeError) as exc:
            cause = _os_error(exc)
            if cause is None:
                raise
            raise PokedexError(_explain(cause, path)) from cause

    def load_checkpoint(
        self, path: Any, map_location: Any = None, weights_only: bool | None = None
    ) -> dict[str, Any]:
        return torch.load(path, map_location=map_location or "cpu", weights_only=True)


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
