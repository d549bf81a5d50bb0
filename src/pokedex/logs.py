"""Console logging and progress bars shared by every command."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")

# stdout is for command results (e.g. the JSON headline of `data prepare`); Rich defaults to it
_STDERR = Console(stderr=True)


def setup_logging(level: int | str = logging.INFO) -> None:
    """Send library logs to stderr in a readable, timestamped format."""
    logging.basicConfig(
        level=level,
        format="%(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=[
            RichHandler(console=_STDERR, show_path=False, rich_tracebacks=False, markup=False)
        ],
        force=True,
    )


def track(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate with a progress bar on stderr (hidden when not a terminal)."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=_STDERR, transient=True) as progress:
        yield from progress.track(items, total=total, description=description)
