"""The `pokedex` Typer app, its command groups, and the wrapper that turns a PokedexError into
one line on stderr: what every command module of :mod:`pokedex.cli` registers into."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from pokedex.errors import PokedexError
from pokedex.logs import setup_logging

F = TypeVar("F", bound=Callable[..., Any])

app = typer.Typer(
    name="pokedex",
    help="Recognize Pokémon from a picture, and run the whole ML lifecycle behind it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Fetch, prepare and describe the dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")
bench_app = typer.Typer(
    help="Measure speed: the tables in docs/benchmarks.md.", no_args_is_help=True
)
app.add_typer(bench_app, name="benchmark")
registry_app = typer.Typer(
    help="The MLflow model registry: register bundles, the promotion gate, aliases.",
    no_args_is_help=True,
)
app.add_typer(registry_app, name="registry")
drift_app = typer.Typer(
    help="Drift of served inputs and predictions against the model's reference profile.",
    invoke_without_command=True,
)
app.add_typer(drift_app, name="drift")
gpu_app = typer.Typer(
    help="Train on a borrowed GPU within a time budget, and bring the run back.",
    no_args_is_help=True,
)
app.add_typer(gpu_app, name="gpu")


def clean_errors(fn: F) -> F:
    """Turn a PokedexError into one line on stderr and its exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PokedexError as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Set up logging for every command."""
    setup_logging(logging.DEBUG if verbose else logging.INFO)
