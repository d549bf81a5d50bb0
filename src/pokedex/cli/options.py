"""Options that several commands share, declared once, and the environment fallback of paths."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

ProcessedOption = Annotated[Path, typer.Option(help="Processed data folder.")]
ModelOption = Annotated[str, typer.Option(help="Bundle folder or models:/pokedex@alias.")]
ModelOrEnvOption = Annotated[
    str | None,
    typer.Option(help="Bundle folder or models:/pokedex@alias. Default: $POKEDEX_MODEL."),
]
ReleaseOption = Annotated[str | None, typer.Option(help="Bundle folder (default: the release).")]
RegisteredNameOption = Annotated[str, typer.Option(help="Registered model name.")]
HostOption = Annotated[str, typer.Option(help="Interface to bind.")]
PortOption = Annotated[int, typer.Option(help="TCP port.")]

# a command that takes Hydra overrides (`key=value` ...) after its own options
OVERRIDES = {"allow_extra_args": True, "ignore_unknown_options": True}


def env_path(name: str) -> Path | None:
    """The path in environment variable ``name``, or None when it is unset or empty."""
    value = os.environ.get(name)
    return Path(value) if value else None
