"""`pokedex drift`: drift of served inputs and predictions against the model's reference."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pokedex.cli.groups import clean_errors, drift_app
from pokedex.cli.options import ModelOrEnvOption, ProcessedOption


@drift_app.callback()
@clean_errors
def drift_cmd(
    ctx: typer.Context,
    window: Annotated[
        str | None,
        typer.Option(
            help="Last N predictions (500) or a duration (30m, 6h, 7d). "
            "Default: $POKEDEX_DRIFT_WINDOW, else 500."
        ),
    ] = None,
    model: ModelOrEnvOption = None,
    db: Annotated[
        str | None,
        typer.Option(help="Prediction-log URL. Default: $POKEDEX_PREDICTION_LOG_URL."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder for drift.html and drift.json.")] = Path(
        "reports/drift"
    ),
    fail_on_drift: Annotated[
        bool, typer.Option(help="Exit with code 1 when the verdict is drift.")
    ] = False,
) -> None:
    """Compare recent logged predictions with the model's reference; print the verdict and
    write an HTML report."""
    if ctx.invoked_subcommand is not None:
        return
    from pokedex.monitoring.check import check_drift, reference_of
    from pokedex.monitoring.drift_report import summary_lines, write_report
    from pokedex.monitoring.feedback import check_feedback, feedback_lines
    from pokedex.monitoring.log import open_log
    from pokedex.monitoring.window import choose_window
    from pokedex.serving.settings import settings_from_env
    from pokedex.store.registry import resolve_model

    served = settings_from_env()  # the server's defaults: the same log and window
    chosen = choose_window(window, served.drift_window)
    bundle = resolve_model(model)
    profile = reference_of(bundle)
    engine = open_log(db or served.prediction_log_url)
    try:
        check = check_drift(bundle, profile, engine, chosen)
        feedback = check_feedback(engine, chosen)
    finally:
        engine.dispose()
    for line in [*summary_lines(check.report), *feedback_lines(feedback)]:
        typer.echo(line)
    for path in write_report(check, out, feedback):
        typer.echo(f"wrote {path}")
    if fail_on_drift and check.report.verdict == "drift":
        raise typer.Exit(1)


@drift_app.command("profile")
@clean_errors
def drift_profile(
    model: ModelOrEnvOption = None,
    processed: ProcessedOption = Path("data/processed"),
    split: Annotated[str, typer.Option(help="Reference split: val (default) or train.")] = "val",
    max_images: Annotated[int, typer.Option(help="Reference images (a seeded subset).")] = 2000,
    variant: Annotated[str, typer.Option(help="ONNX variant: auto, fp32 or int8.")] = "auto",
) -> None:
    """Build a bundle's drift reference on held-out data through the served-model path (image
    statistics, confidence, embeddings) and store it in the bundle."""
    from pokedex.monitoring.profile import build_profile, write_profile
    from pokedex.store.registry import resolve_model

    bundle = resolve_model(model)
    profile = build_profile(bundle, processed, split=split, max_images=max_images, variant=variant)
    path = write_profile(bundle, profile)
    typer.echo(
        f"wrote {path}: {len(profile.observations)} {split} images, "
        f"mean confidence {profile.confidence_mean:.3f}"
    )
