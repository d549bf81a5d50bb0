"""The lifecycle commands: `pokedex train`, `sweep`, `evaluate`, `export`, `predict`, `card`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from pokedex.cli.groups import app, clean_errors
from pokedex.cli.options import (
    OVERRIDES,
    ModelOption,
    ModelOrEnvOption,
    ProcessedOption,
    env_path,
)
from pokedex.errors import PokedexError


@app.command("train", context_settings=OVERRIDES)
@clean_errors
def train_cmd(ctx: typer.Context) -> None:
    """Train with Hydra overrides, e.g. `pokedex train experiment=smoke trainer.max_epochs=3`."""
    from pokedex.jobs.train import compose_config, train

    result = train(compose_config(ctx.args))
    typer.echo(
        json.dumps(
            {"run_dir": str(result.run_dir), "bundle": str(result.bundle.path), **result.metrics}
        )
    )


@app.command("predict")
@clean_errors
def predict_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    model: ModelOrEnvOption = None,
    top_k: Annotated[int, typer.Option("--top-k", help="How many species to list (1-20).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Recognize the Pokémon in each image."""
    from pokedex.jobs.predict import format_record, predict_paths

    failed = 0
    for record in predict_paths(paths, model, top_k):
        failed += "error" in record
        typer.echo(format_record(record, as_json))
    if failed:
        raise typer.Exit(3)


@app.command("sweep", context_settings=OVERRIDES)
@clean_errors
def sweep_cmd(
    ctx: typer.Context,
    trials: Annotated[int, typer.Option(help="Trials to run in this process.")] = 10,
    study: Annotated[str, typer.Option(help="Study name (shared by workers).")] = "pokedex",
    storage: Annotated[
        str, typer.Option(help="Optuna storage URL shared by workers.")
    ] = "sqlite:///optuna.db",
    seed: Annotated[
        int | None, typer.Option(help="Sampler seed; leave unset when workers share a study.")
    ] = None,
) -> None:
    """Hyperparameter search with Optuna (TPE + median pruning) over training overrides."""
    from pokedex.jobs.sweep import sweep

    result = sweep(ctx.args, trials=trials, study=study, storage=storage, seed=seed)
    typer.echo(json.dumps(result.__dict__))


@app.command("export")
@clean_errors
def export_cmd(
    model: ModelOption,
    processed: Annotated[
        Path | None, typer.Option(help="Processed data: calibration and parity images.")
    ] = None,
    calibration_images: Annotated[int, typer.Option(help="INT8 calibration images.")] = 256,
    parity_images: Annotated[int, typer.Option(help="Test images for the parity checks.")] = 512,
    fp32_tolerance: Annotated[float, typer.Option(help="Max |Δlogit| ONNX vs PyTorch.")] = 1e-3,
    int8_min_agreement: Annotated[
        float, typer.Option(help="Min top-1 agreement INT8 vs PyTorch.")
    ] = 0.98,
    seed: Annotated[int, typer.Option(help="Image sampling seed.")] = 0,
    fp16_weights: Annotated[
        bool, typer.Option(help="First store the safetensors weights as fp16 (half the size).")
    ] = False,
    flip_average: Annotated[
        bool,
        typer.Option(help="Answer with the mean of each image and its mirror image (2x the work)."),
    ] = False,
) -> None:
    """Add ONNX fp32 and INT8 (static QDQ) variants to a bundle, checked against PyTorch."""
    from pokedex.jobs.export import export, halve_weights
    from pokedex.store.registry import resolve_model

    if fp16_weights:
        halve_weights(resolve_model(model))
    report = export(
        resolve_model(model).path,
        processed=processed,
        calibration_images=calibration_images,
        parity_images=parity_images,
        fp32_tolerance=fp32_tolerance,
        int8_min_agreement=int8_min_agreement,
        seed=seed,
        flip_average=flip_average,
    )
    typer.echo(json.dumps(report.to_dict(), indent=2))


@app.command("card")
@clean_errors
def card_cmd(
    model: ModelOption,
    evaluation: Annotated[
        Path | None, typer.Option(help="metrics.json of `pokedex evaluate` to include.")
    ] = None,
) -> None:
    """Write MODEL_CARD.md into a bundle from its recorded metrics, recipe and export checks."""
    from pokedex.jobs.modelcard import write_card
    from pokedex.store.registry import resolve_model

    if evaluation is not None and not evaluation.is_file():
        raise PokedexError(f"{evaluation}: no such file; give the metrics.json of an evaluation")
    typer.echo(write_card(resolve_model(model), evaluation))


@app.command("evaluate")
@clean_errors
def evaluate_cmd(
    model: ModelOrEnvOption = None,
    split: Annotated[str, typer.Option(help="val or test.")] = "test",
    processed: ProcessedOption = Path("data/processed"),
    out: Annotated[
        Path | None,
        typer.Option(help="Report folder. Default: reports/evaluation (reports/robustness)."),
    ] = None,
    calibrate: Annotated[
        bool, typer.Option(help="Fit temperature + open-set threshold on val, store in the bundle.")
    ] = True,
    embeddings: Annotated[bool, typer.Option(help="Also write the UMAP embedding map.")] = False,
    photos: Annotated[
        Path | None,
        typer.Option(help="Labelled photo set (zip/folder). Default: $POKEDEX_REAL_PHOTOS."),
    ] = None,
    robustness: Annotated[
        bool, typer.Option(help="Instead: top-1 under controlled shifts, table and plot.")
    ] = False,
    shift: Annotated[
        list[str] | None, typer.Option(help="With --robustness: only this shift (repeatable).")
    ] = None,
    severity: Annotated[
        list[int] | None, typer.Option(help="With --robustness: only this severity, 1-5.")
    ] = None,
    images: Annotated[
        int | None, typer.Option(help="With --robustness: a seeded subset of this many images.")
    ] = None,
) -> None:
    """Test-split metrics, calibration, open-set threshold and a report (or --robustness)."""
    from pokedex.store.registry import resolve_model

    if robustness:
        from pokedex.evaluation.robustness import render_table
        from pokedex.evaluation.robustness import robustness as run_robustness

        report = run_robustness(
            resolve_model(model),
            processed,
            out or Path("reports/robustness"),
            split=split,
            shifts=shift,
            severities=severity,
            images=images,
        )
        typer.echo(render_table(report))
        return
    from pokedex.jobs.evaluate import evaluate

    photos = photos or env_path("POKEDEX_REAL_PHOTOS")
    metrics = evaluate(
        resolve_model(model),
        processed,
        out or Path("reports/evaluation"),
        split=split,
        calibrate=calibrate,
        embeddings=embeddings,
        photos=photos,
    )
    typer.echo(json.dumps(metrics, default=str))
