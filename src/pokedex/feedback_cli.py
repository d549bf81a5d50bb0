"""Commands of the feedback loop: `pokedex db …` (the prediction store's schema) and
`pokedex data feedback …` (review verdicts, export them as a raw data source).

Thin like the rest of the CLI: parse, call one function, print. Mounted by :mod:`pokedex.cli`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from pokedex.errors import PokedexError

F = TypeVar("F", bound=Callable[..., Any])

db_app = typer.Typer(
    help="The prediction store's schema: migrations (Alembic) up and down.", no_args_is_help=True
)
feedback_app = typer.Typer(
    help="User verdicts on predictions: review them, export them as a raw data source.",
    no_args_is_help=True,
)
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Prediction-store URL. Default: $POKEDEX_PREDICTION_LOG_URL."),
]


def _clean_errors(fn: F) -> F:
    """A PokedexError becomes one line on stderr and its exit code, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except PokedexError as exc:
            typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


def _url(db: str | None) -> str:
    if db:
        return db
    from pokedex.serving.settings import Settings

    url = Settings().prediction_log_url
    if not url:
        raise PokedexError(
            "the prediction log is off (POKEDEX_PREDICTION_LOG_URL is empty)", exit_code=2
        )
    return url


@db_app.command("upgrade")
@_clean_errors
def db_upgrade(
    db: DbOption = None,
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Migrate the prediction store up (a store made before migrations is adopted first)."""
    from pokedex.store.migrate import upgrade_url

    state = upgrade_url(_url(db), revision)
    adopted = " (adopted a store created before migrations)" if state.adopted else ""
    typer.echo(f"prediction store at revision {state.current} (newest {state.head}){adopted}")


@db_app.command("downgrade")
@_clean_errors
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; base drops every table.")],
    db: DbOption = None,
) -> None:
    """Migrate the prediction store down to REVISION (data of the dropped tables is lost)."""
    from pokedex.store.migrate import downgrade
    from pokedex.store.predlog import make_engine

    engine = make_engine(_url(db))
    try:
        state = downgrade(engine, revision)
    finally:
        engine.dispose()
    typer.echo(f"prediction store at revision {state.current or 'base'} (newest {state.head})")


@db_app.command("current")
@_clean_errors
def db_current(db: DbOption = None) -> None:
    """Print the prediction store's revision and the newest this package ships."""
    from sqlalchemy.exc import SQLAlchemyError

    from pokedex.store.migrate import current, head
    from pokedex.store.predlog import make_engine

    engine = make_engine(_url(db))
    try:
        revision = current(engine)
    except SQLAlchemyError as exc:
        raise PokedexError(f"cannot read the prediction store: {exc}") from exc
    finally:
        engine.dispose()
    typer.echo(f"prediction store at revision {revision or 'none'} (newest {head()})")
