"""`pokedex benchmark ...`: the speed and cost tables of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pokedex.cli.groups import bench_app, clean_errors
from pokedex.cli.options import ProcessedOption, ReleaseOption, env_path
from pokedex.errors import PokedexError


@bench_app.command("pack")
@clean_errors
def bench_pack(
    model: Annotated[str, typer.Option(help="Model REF scored through each setting.")] = (
        "models/release"
    ),
    processed: ProcessedOption = Path("data/processed"),
    setting: Annotated[
        list[str] | None,
        typer.Option(help="SIZE:QUALITY[:ALPHA_QUALITY], repeatable (100 = lossless, exact)."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N test images.")] = None,
) -> None:
    """Bytes against accuracy for `pokedex data pack` settings, on the test split."""
    from pokedex.benchmarks.machine import describe
    from pokedex.benchmarks.pack import SETTINGS, format_table, parse_setting, run

    settings = [parse_setting(item) for item in setting or SETTINGS]
    baseline, results = run(model, processed, settings, limit)
    typer.echo(format_table(baseline, results, model, describe()))


@bench_app.command("tta")
@clean_errors
def bench_tta(
    model: Annotated[str, typer.Option(help="Model REF.")] = "models/release",
    processed: ProcessedOption = Path("data/processed"),
    photos: Annotated[
        Path | None, typer.Option(help="Labelled photo set (zip or folder); $POKEDEX_REAL_PHOTOS.")
    ] = None,
) -> None:
    """Test-time flip averaging: accuracy gained on sprites and photos against its cost."""
    from pokedex.benchmarks.machine import describe
    from pokedex.benchmarks.tta import format_table, run

    photos = photos or env_path("POKEDEX_REAL_PHOTOS")
    if photos is not None and not photos.exists():
        raise PokedexError(f"{photos} not found", exit_code=2)
    typer.echo(format_table(run(model, processed, photos), model, describe()))


def _tiles(augment, backgrounds: Path | None):
    """The photo tile bank ``(N, T, T, 3)`` when ``augment`` puts photos behind the sprites."""
    if augment.background_photo <= 0:
        return None
    from pokedex.data.backgrounds import load_tiles

    return load_tiles(backgrounds or env_path("POKEDEX_BACKGROUNDS") or Path("data/backgrounds"))


@bench_app.command("training")
@clean_errors
def bench_training(
    processed: ProcessedOption = Path("data/processed"),
    raw: Annotated[Path, typer.Option(help="Raw data folder (for the naive pipeline).")] = Path(
        "data/raw"
    ),
    experiment: Annotated[
        str, typer.Option(help="Training preset giving the defaults below (configs/experiment).")
    ] = "cpu",
    arch: Annotated[str | None, typer.Option(help="Backbone (default: the preset's).")] = None,
    size: Annotated[int | None, typer.Option(help="Input size (default: the preset's).")] = None,
    batch_size: Annotated[
        int | None, typer.Option(help="Batch size (default: the preset's).")
    ] = None,
    augment: Annotated[
        str | None,
        typer.Option(
            help="Augmentation preset of ours, configs/augment/NAME.yaml (default: the "
            "experiment's augmentation)."
        ),
    ] = None,
    steps: Annotated[int, typer.Option(help="Timed steps per repeat.")] = 10,
    repeats: Annotated[int, typer.Option(help="Interleaved repeats.")] = 2,
    backgrounds: Annotated[
        Path | None, typer.Option(help="Photo tiles, when the augmentation uses them.")
    ] = None,
    precision: Annotated[
        list[str] | None,
        typer.Option(help="Also time ours and the ceiling at this precision (bf16-mixed)."),
    ] = None,
) -> None:
    """Training images/s: naive file pipeline vs ours vs in-memory tensors (the ceiling).

    The defaults are the `experiment=cpu` recipe's model, input size, batch size and augmentation.
    """
    from pokedex.benchmarks.machine import describe
    from pokedex.benchmarks.training import augment_preset, format_table, recipe, run

    preset = recipe(experiment)
    strengths = augment_preset(augment) if augment else preset.augment
    results = run(
        processed,
        raw,
        arch=arch or preset.arch,
        size=size or preset.size,
        batch_size=batch_size or preset.batch_size,
        augment=strengths,
        steps=steps,
        repeats=repeats,
        tiles=_tiles(strengths, backgrounds),
        precisions=tuple(precision or ()),
    )
    typer.echo(format_table(results, describe()))


@bench_app.command("augment")
@clean_errors
def bench_augment(
    processed: ProcessedOption = Path("data/processed"),
    experiment: Annotated[
        str, typer.Option(help="Training preset whose input size and augmentation are timed.")
    ] = "photo",
    batch: Annotated[
        int | None, typer.Option(help="Canvases per batch (default: the preset's).")
    ] = None,
    distortion: Annotated[float, typer.Option(help="augment.perspective_distortion timed.")] = 0.3,
    repeats: Annotated[int, typer.Option(help="Timed repeats of each step.")] = 10,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    backgrounds: Annotated[
        Path | None, typer.Option(help="Photo tiles, when the preset uses them.")
    ] = None,
) -> None:
    """Milliseconds per batch of the augmentation's steps: the affine geometry, the same with
    the perspective warp, and the preset's whole augmentation without and with it."""
    from pokedex.benchmarks.augment import format_table, load_batch, run
    from pokedex.benchmarks.machine import describe
    from pokedex.benchmarks.training import recipe

    preset = recipe(experiment)
    tiles = _tiles(preset.augment, backgrounds)
    canvases = load_batch(processed, batch or preset.batch_size)
    results = run(
        canvases,
        size=preset.size,
        augment=preset.augment,
        tiles=tiles,
        distortion=distortion,
        repeats=repeats,
        device=device,
    )
    where = describe() if device == "cpu" else device
    context = f"experiment={experiment} on {where}"
    typer.echo(format_table(results, batch=len(canvases), size=preset.size, context=context))


@bench_app.command("inference")
@clean_errors
def bench_inference(
    model: ReleaseOption = None,
    processed: Annotated[Path, typer.Option(help="Processed data (test split).")] = Path(
        "data/processed"
    ),
    repeats: Annotated[int, typer.Option(help="Timing repeats.")] = 3,
    images: Annotated[int | None, typer.Option(help="Test images for top-1 (default all).")] = None,
    batch1_iters: Annotated[int, typer.Option(help="Batch-1 timing iterations.")] = 100,
    batch32_iters: Annotated[int, typer.Option(help="Batch-32 timing iterations.")] = 10,
    budget_s: Annotated[float, typer.Option(help="Time cap per measurement.")] = 5.0,
    bf16_images: Annotated[int, typer.Option(help="Images for the (slow) bf16 top-1.")] = 256,
    threads: Annotated[int, typer.Option(help="Threads per backend.")] = 2,
    prune_amount: Annotated[float, typer.Option(help="Fraction of channels pruned.")] = 0.3,
    prune_steps: Annotated[int, typer.Option(help="Fine-tune steps after pruning.")] = 100,
    unstructured: Annotated[bool, typer.Option(help="Unstructured instead of channels.")] = False,
    seed: Annotated[int, typer.Option(help="Seed.")] = 0,
    record: Annotated[
        bool, typer.Option(help="Record the chosen serving variant in the bundle.")
    ] = True,
) -> None:
    """Eager fp32/bf16, torch.compile, ONNX Runtime fp32/INT8, OpenVINO and a pruned model."""
    from pokedex.benchmarks.inference import format_table, record_serving_default, run
    from pokedex.store.registry import resolve_model

    bundle_path = resolve_model(model).path
    rows = run(
        bundle_path,
        processed,
        repeats=repeats,
        images=images,
        batch1_iters=batch1_iters,
        batch32_iters=batch32_iters,
        budget_s=budget_s,
        bf16_images=bf16_images,
        threads=threads,
        prune_amount=prune_amount,
        prune_steps=prune_steps,
        prune_structured=not unstructured,
        seed=seed,
    )
    typer.echo(format_table(rows))
    if record:
        choice = record_serving_default(bundle_path, rows)
        served = f"{choice.variant} on {choice.backend}" if choice else "nothing (none qualified)"
        typer.echo(f"Recorded in {bundle_path / 'bundle.json'}: `auto` settings serve {served}")


@bench_app.command("serving")
@clean_errors
def bench_serving(
    model: ReleaseOption = None,
    processed: Annotated[
        Path | None,
        typer.Option(help="Processed data for test images (default: data/processed if present)."),
    ] = None,
    variant: Annotated[
        str | None,
        typer.Option(help="auto, fp32 or int8 (default: $POKEDEX_VARIANT, else auto)."),
    ] = None,
    concurrency: Annotated[
        list[int] | None, typer.Option(help="Concurrent clients; repeat for levels.", min=1)
    ] = None,
    batch_clients: Annotated[
        list[int] | None,
        typer.Option(
            help="Clients sending 32 images per request to ours' batch route; repeat for "
            "levels; 0 skips it (default: 1 and 4).",
            min=0,
        ),
    ] = None,
    duration: Annotated[float, typer.Option(help="Measured seconds per level.", min=0.1)] = 10.0,
    warmup: Annotated[float, typer.Option(help="Unmeasured seconds before each level.")] = 2.0,
    images: Annotated[int, typer.Option(help="Distinct test images sent.", min=1)] = 256,
    out: Annotated[
        Path | None, typer.Option(help="Folder for serving.json and serving.md.")
    ] = None,
    litserve: Annotated[
        bool, typer.Option(help="Also run LitServe over the same predictor (when installed).")
    ] = True,
    workers: Annotated[
        list[int] | None,
        typer.Option(
            help="Ours' server processes; repeat to measure several counts (default: "
            "$POKEDEX_WORKERS, else 1).",
            min=1,
            max=64,
        ),
    ] = None,
    rounds: Annotated[
        int,
        typer.Option(
            help="Measure LitServe and ours this many times each, alternating, and pool the "
            "rounds (steadier on a shared machine).",
            min=1,
        ),
    ] = 1,
) -> None:
    """HTTP req/s and latency: naive FastAPI + PyTorch vs LitServe vs ours vs the model
    without HTTP."""
    from pokedex.benchmarks.serving import BATCH_CONCURRENCY, CONCURRENCY, run
    from pokedex.benchmarks.serving_report import print_table, write_outputs
    from pokedex.serving.settings import Settings
    from pokedex.store.registry import resolve_model

    default = Path("data/processed")
    if processed is None and default.is_dir():
        processed = default
    served = Settings()
    result = run(
        resolve_model(model),
        processed,
        variant=variant or served.variant,
        threads=served.threads,
        concurrency=tuple(concurrency or CONCURRENCY),
        batch_concurrency=tuple(c for c in batch_clients or BATCH_CONCURRENCY if c),
        window_s=duration,
        warmup_s=warmup,
        images=images,
        litserve=litserve,
        workers=tuple(workers or [served.workers]),
        rounds=rounds,
    )
    print_table(result)
    if out is not None:
        for path in write_outputs(result, out):
            typer.echo(f"wrote {path}")
