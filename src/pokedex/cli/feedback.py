"""Commands of the feedback loop: `pokedex db …` (the prediction store's schema) and
`pokedex data feedback …` (review verdicts, export them as a raw data source).

Thin like the rest of the CLI: parse, call one function, print.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from pokedex.cli.groups import app, clean_errors, data_app
from pokedex.errors import PokedexError

db_app = typer.Typer(
    help="The prediction store's schema: migrations (Alembic) up and down.", no_args_is_help=True
)
feedback_app = typer.Typer(
    help="User verdicts on predictions: review them, export them as a raw data source.",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")
data_app.add_typer(feedback_app, name="feedback")
DbOption = Annotated[
    str | None,
    typer.Option("--db", help="Prediction-store URL. Default: $POKEDEX_PREDICTION_LOG_URL."),
]


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
@clean_errors
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
@clean_errors
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
@clean_errors
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


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise PokedexError(
            f"--since {text!r}: give a date or time such as 2026-12-01 or 2026-12-01T18:00",
            exit_code=2,
        ) from exc
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@feedback_app.command("export")
@clean_errors
def feedback_export(
    out: Annotated[Path, typer.Option(help="Folder to write (replaced whole).")] = Path(
        "data/feedback"
    ),
    since: Annotated[
        str | None, typer.Option(help="Only verdicts given at or after this date (UTC).")
    ] = None,
    include_pending: Annotated[
        bool, typer.Option(help="Export verdicts nobody reviewed yet, not only accepted ones.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Write reviewed verdicts with kept images as a raw source: a folder per species, a
    manifest with hashes and provenance, conflicting verdicts quarantined with the reason."""
    from pokedex.data.feedback import export_feedback
    from pokedex.store.feedback import FeedbackStore

    url = _url(db)
    if _missing_sqlite(url):
        # a clean checkout has no store yet: an empty export, and no database created
        typer.secho(f"no prediction store at {url}: the export is empty", err=True)
        corrections = []
    else:
        store = FeedbackStore(url)
        try:
            corrections = store.corrections(_since(since), include_pending=include_pending)
        finally:
            store.close()
    reviews = ["accepted", "pending"] if include_pending else ["accepted"]
    result = export_feedback(corrections, out, since=_since(since), reviews=reviews)
    typer.echo(
        json.dumps(
            {
                "out": str(result.out),
                "verdicts": len(corrections),
                "images": result.images,
                "species": result.by_species,
                "not_pokemon": result.not_pokemon,
                "quarantined": result.quarantined,
            }
        )
    )


def _missing_sqlite(url: str) -> bool:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise PokedexError(f"bad prediction-store URL {url!r}: {exc}", exit_code=2) from exc
    database = parsed.database or ""
    return (
        parsed.get_backend_name() == "sqlite"
        and database not in ("", ":memory:")
        and not Path(database).is_file()
    )


@feedback_app.command("list")
@clean_errors
def feedback_list(
    review: Annotated[
        str | None, typer.Option(help="Only verdicts in this review state: pending, accepted…")
    ] = "pending",
    limit: Annotated[int, typer.Option(min=1, help="The newest this many.")] = 100,
    db: DbOption = None,
) -> None:
    """List verdicts to review: prediction id, the model's top-1, the verdict, the review, and
    the kept image's hash (verdicts without one never reach an export)."""
    from pokedex.store.feedback import FeedbackStore

    if review not in (None, "all", "pending", "accepted", "rejected"):
        raise PokedexError(f"--review {review!r}: pending, accepted, rejected or all", exit_code=2)
    store = FeedbackStore(_url(db))
    try:
        listed = store.verdicts(None if review in (None, "all") else review, limit)  # type: ignore[arg-type]
    finally:
        store.close()
    for v in listed:
        says = v.species if v.verdict == "species" else v.verdict
        image = v.sha256[:12] if v.sha256 else "no image"
        typer.echo(f"{v.prediction_id}  {v.top1:<14} -> {says:<14} {v.review:<9} {image}")


@feedback_app.command("review")
@clean_errors
def feedback_review(
    prediction_id: Annotated[str, typer.Argument(help="The prediction whose verdict to review.")],
    accept: Annotated[
        bool, typer.Option("--accept/--reject", help="Accept the verdict, or reject it.")
    ] = True,
    db: DbOption = None,
) -> None:
    """Accept a verdict (the export takes accepted ones) or reject it."""
    from pokedex.store.feedback import FeedbackStore

    try:
        key = uuid.UUID(prediction_id)
    except ValueError as exc:
        message = f"{prediction_id!r} is not a prediction id (UUID)"
        raise PokedexError(message, exit_code=2) from exc
    review = "accepted" if accept else "rejected"
    store = FeedbackStore(_url(db))
    try:
        store.review(key, review)
    finally:
        store.close()
    typer.echo(f"{key}: {review}")
