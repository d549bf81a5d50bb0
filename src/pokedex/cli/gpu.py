"""`pokedex gpu ...`: train on a borrowed GPU within a time budget, and bring the run back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pokedex.cli.groups import clean_errors, gpu_app
from pokedex.cli.options import OVERRIDES
from pokedex.errors import PokedexError


@gpu_app.command("run", context_settings=OVERRIDES)
@clean_errors
def gpu_run(
    ctx: typer.Context,
    budget: Annotated[float, typer.Argument(help="Seconds for the probe and the run together.")],
    out: Annotated[Path, typer.Option(help="Where the files that come back go.")] = Path("gpu-out"),
) -> None:
    """Probe the epoch time, size the epochs to BUDGET, train with the Hydra overrides that
    follow, and write the bundle in parts (scripts/gpu_train.sh calls this)."""
    from pokedex.jobs.gpurun import run

    manifest = run(budget, list(ctx.args), out)
    keys = ("epochs_planned", "epochs_run", "probe_epoch_s", "train_s", "total_s", "metrics")
    typer.echo(json.dumps({k: manifest[k] for k in keys}, default=str))


@gpu_app.command("ablation", context_settings=OVERRIDES)
@clean_errors
def gpu_ablation(
    ctx: typer.Context,
    budget: Annotated[float, typer.Argument(help="Seconds for the probe and every arm together.")],
    out: Annotated[Path, typer.Option(help="Where the results file and curves go.")] = Path(
        "gpu-out"
    ),
    arms: Annotated[
        str | None,
        typer.Option(
            envvar="POKEDEX_ABLATION_ARMS",
            help="Comma-separated arms (default: all of pokedex.jobs.gpuablation.ARMS).",
        ),
    ] = None,
    max_epochs: Annotated[
        int | None, typer.Option(help="At most this many epochs per arm, even if more fit.")
    ] = None,
) -> None:
    """The recipe given by the Hydra overrides that follow, then one change at a time, all on one
    schedule sized to BUDGET; scored on the test split and the photos (scripts/gpu_ablation.sh)."""
    from pokedex.jobs.gpuablation import ablate, format_table, parse_arms

    names = parse_arms(arms)
    typer.echo(format_table(ablate(budget, list(ctx.args), out, names, max_epochs)))


@gpu_app.command("collect")
@clean_errors
def gpu_collect(
    folder: Annotated[Path, typer.Argument(help="The files a GPU run brought back.")],
    out: Annotated[Path, typer.Option(help="Bundle folder to write.")] = Path("models/candidate"),
) -> None:
    """Check the parts a GPU run brought back and restore its bundle (then scripts/release.sh)."""
    from pokedex.jobs.gpurun import collect

    if not folder.is_dir():
        raise PokedexError(f"{folder} is not a folder", exit_code=2)
    manifest = collect(folder, out)
    typer.echo(
        json.dumps(
            {
                "bundle": str(out),
                "epochs_run": manifest.get("epochs_run"),
                "metrics": manifest.get("metrics"),
            },
            default=str,
        )
    )
