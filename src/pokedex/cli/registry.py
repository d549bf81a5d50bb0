"""`pokedex registry ...`: register bundles, the promotion gate, aliases."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pokedex.cli.groups import clean_errors, registry_app
from pokedex.cli.options import RegisteredNameOption, env_path
from pokedex.errors import PokedexError


@registry_app.command("register")
@clean_errors
def registry_register(
    bundle: Annotated[Path, typer.Option(help="Bundle folder to register.")],
    alias: Annotated[
        str | None, typer.Option(help="Alias to point at the new version ('' for none).")
    ] = "candidate",
    name: RegisteredNameOption = "pokedex",
) -> None:
    """Log a bundle to MLflow and make it a version of the registered model."""
    from pokedex.store.registry import register_bundle

    mv = register_bundle(bundle, name=name, alias=alias or None)
    aliases = f" (alias {alias})" if alias else ""
    typer.echo(f"registered {name} version {mv.version}{aliases}: models:/{name}/{mv.version}")


@registry_app.command("promote")
@clean_errors
def registry_promote(
    model: Annotated[
        str, typer.Option(help="Candidate: models:/name@alias or models:/name/version.")
    ] = "models:/pokedex@candidate",
    processed: Annotated[
        Path | None,
        typer.Option(help="Processed data (default: $POKEDEX_PROCESSED, else data/processed)."),
    ] = None,
    max_top1_drop: Annotated[
        float | None,
        typer.Option(help="Allowed top-1 drop, e.g. 0.01 (default: $POKEDEX_GATE_MAX_TOP1_DROP)."),
    ] = None,
    max_ece_rise: Annotated[
        float | None,
        typer.Option(help="Allowed ECE rise, e.g. 0.01 (default: $POKEDEX_GATE_MAX_ECE_RISE)."),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Decide, but leave the alias alone.")] = False,
) -> None:
    """Gate: score candidate and production on the same test images; move `production` only if
    the candidate is not worse beyond the margins. Exit 0 promoted, 1 refused, 2 usage error."""
    from pokedex.jobs.promote import gate_settings, promote, verdict_lines

    try:
        settings = gate_settings(max_top1_drop=max_top1_drop, max_ece_rise=max_ece_rise)
        processed = processed or env_path("POKEDEX_PROCESSED") or Path("data/processed")
        result = promote(model, processed, settings, dry_run=dry_run)
    except PokedexError as exc:  # whatever keeps the gate from deciding is not a refusal
        raise PokedexError(str(exc), exit_code=2) from None
    for line in verdict_lines(result, dry_run=dry_run):
        typer.echo(line)
    if result.comparison is not None and not result.comparison.accepted:
        raise typer.Exit(1)


@registry_app.command("list")
@clean_errors
def registry_list(name: RegisteredNameOption = "pokedex") -> None:
    """Versions with their aliases, bundle version and recorded metrics."""
    from pokedex.store.registry import format_versions, list_versions

    typer.echo(format_versions(list_versions(name)))


@registry_app.command("alias")
@clean_errors
def registry_alias(
    alias: Annotated[str, typer.Argument(help="Alias to move, e.g. production.")],
    version: Annotated[str, typer.Argument(help="Version number to point it at.")],
    name: RegisteredNameOption = "pokedex",
) -> None:
    """Point an alias at a version with no gate: how a bad promotion is rolled back."""
    from pokedex.store.registry import set_alias

    before = set_alias(name, alias, version)
    typer.echo(f"{name}@{alias}: version {before or 'none'} -> {version}")
