"""The `pokedex` command line: thin commands that parse options and call one function each."""

from __future__ import annotations

import functools
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from pokedex.errors import PokedexError
from pokedex.feedback_cli import db_app, feedback_app
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
app.add_typer(db_app, name="db")
data_app.add_typer(feedback_app, name="feedback")

log = logging.getLogger("pokedex")
ProcessedOption = Annotated[Path, typer.Option(help="Processed data folder.")]


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


@data_app.command("fetch")
@clean_errors
def data_fetch(
    source: Annotated[
        str | None,
        typer.Option(
            help="Local zip/folder, file://, http(s)://, gs:// or kaggle://owner/name. "
            "Default: $POKEDEX_DATA_SOURCE.",
        ),
    ] = None,
    sha256: Annotated[str | None, typer.Option(help="Expected SHA-256 of the archive.")] = None,
    dest: Annotated[Path, typer.Option(help="Where the raw data goes.")] = Path("data/raw"),
) -> None:
    """Copy or download the raw archive, verify it and extract it safely into DEST."""
    from pokedex.data.fetch import fetch

    source = source or os.environ.get("POKEDEX_DATA_SOURCE")
    if not source:
        raise PokedexError("no data source: pass --source or set POKEDEX_DATA_SOURCE", exit_code=2)
    result = fetch(source, dest, sha256)
    verb = "already up to date" if result.skipped else "fetched"
    typer.echo(f"{verb}: {result.files} files, {result.bytes:,} bytes in {result.dest}")


@data_app.command("prepare")
@clean_errors
def data_prepare(
    raw: Annotated[Path, typer.Option(help="The fetched raw data.")] = Path("data/raw"),
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("data/processed"),
    metadata: Annotated[
        Path | None,
        typer.Option(
            help="PokéAPI CSV folder for the species catalog. Default: $POKEDEX_METADATA."
        ),
    ] = None,
    descriptions: Annotated[
        Path | None, typer.Option(help="Kaggle pokemon.csv with Pokédex descriptions.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Split seed.")] = 0,
    workers: Annotated[int | None, typer.Option(help="Decoding processes.")] = None,
    feedback: Annotated[
        Path | None,
        typer.Option(
            help="A `pokedex data feedback export` folder to take in (train and val rows "
            "tagged source=feedback). Default: $POKEDEX_FEEDBACK."
        ),
    ] = None,
) -> None:
    """Validate, de-duplicate, split and pack the raw images; build the species catalog."""
    from pokedex.data.prepare import prepare

    metadata = metadata or _env_path("POKEDEX_METADATA")
    descriptions = descriptions or _env_path("POKEDEX_DESCRIPTIONS")
    feedback = feedback or _env_path("POKEDEX_FEEDBACK")
    result = prepare(
        raw,
        out,
        metadata=metadata,
        descriptions=descriptions,
        seed=seed,
        workers=workers,
        feedback=feedback,
    )
    s = result.summary
    headline = {k: s[k] for k in ("images", "species", "splits", "data_version", "seconds")}
    headline["quarantined"] = len(s["quarantined"])
    headline["unmatched_species"] = s["unmatched_species"]
    if "feedback" in s:
        headline["feedback"] = {
            "added": s["feedback"]["added"],
            "quarantined": len(s["feedback"]["quarantined"]),
        }
    typer.echo(json.dumps(headline))


@data_app.command("backgrounds")
@clean_errors
def data_backgrounds(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("data/backgrounds"),
    extra: Annotated[
        list[Path] | None, typer.Option(help="More photographs (files or folders) to cut.")
    ] = None,
    tiles_per_image: Annotated[int, typer.Option(min=1, help="Tiles cut from each photo.")] = 48,
    seed: Annotated[int, typer.Option(help="Crop seed.")] = 0,
) -> None:
    """Cut background tiles out of freely licensed photographs (augment.background_photo)."""
    from pokedex.data.backgrounds import build_backgrounds

    for path in extra or []:
        if not path.exists():
            raise PokedexError(f"{path} not found", exit_code=2)
    manifest = build_backgrounds(out, extra=extra, tiles_per_image=tiles_per_image, seed=seed)
    used = sum(1 for s in manifest["sources"] if "tiles" in s)
    typer.echo(
        json.dumps(
            {
                "out": str(out),
                "tiles": manifest["tiles"],
                "photographs": used,
                "missing": len(manifest["missing"]),
            }
        )
    )


@data_app.command("pack")
@clean_errors
def data_pack(
    processed: ProcessedOption = Path("data/processed"),
    out: Annotated[Path, typer.Option(help="Pack folder.")] = Path("data/pack"),
    size: Annotated[int, typer.Option(help="Side of the stored canvases, px.")] = 64,
    quality: Annotated[int, typer.Option(help="WebP quality; 100 = lossless.")] = 85,
    alpha_quality: Annotated[
        int, typer.Option(help="WebP alpha quality of a lossy pack; 100 = exact alpha.")
    ] = 100,
    backgrounds: Annotated[
        Path, typer.Option(help="Photo tile bank to include when present.")
    ] = Path("data/backgrounds"),
    workers: Annotated[int, typer.Option(min=1, help="Encoding processes.")] = 2,
) -> None:
    """A compact, checksummed copy of the processed splits that travels (e.g. to a GPU)."""
    from pokedex.data.pack import pack

    m = pack(
        processed,
        out,
        size=size,
        quality=quality,
        alpha_quality=alpha_quality,
        backgrounds=backgrounds,
        workers=workers,
    )
    keys = ("pack_id", "size", "quality", "alpha_quality", "counts", "bytes")
    typer.echo(json.dumps({k: m[k] for k in keys}))


@data_app.command("unpack")
@clean_errors
def data_unpack(
    pack_dir: Annotated[Path, typer.Option("--pack", help="Pack folder.")] = Path("data/pack"),
    out: Annotated[Path, typer.Option(help="Processed data folder to write.")] = Path(
        "data/processed"
    ),
    backgrounds: Annotated[Path, typer.Option(help="Where the pack's photo tiles go.")] = Path(
        "data/backgrounds"
    ),
    workers: Annotated[int, typer.Option(min=1, help="Decoding processes.")] = 2,
) -> None:
    """Verify a pack and restore the processed folder (128 px canvases) from it."""
    from pokedex.data.pack import unpack

    m = unpack(pack_dir, out, backgrounds=backgrounds, workers=workers)
    typer.echo(json.dumps({"out": str(out), "pack_id": m["pack_id"], "counts": m["counts"]}))


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


@app.command("train", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@clean_errors
def train_cmd(ctx: typer.Context) -> None:
    """Train with Hydra overrides, e.g. `pokedex train experiment=smoke trainer.max_epochs=3`."""
    from pokedex.train import compose_config, train

    result = train(compose_config(ctx.args))
    typer.echo(
        json.dumps(
            {"run_dir": str(result.run_dir), "bundle": str(result.bundle.path), **result.metrics}
        )
    )


@gpu_app.command("run", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@clean_errors
def gpu_run(
    ctx: typer.Context,
    budget: Annotated[float, typer.Argument(help="Seconds for the probe and the run together.")],
    out: Annotated[Path, typer.Option(help="Where the files that come back go.")] = Path("gpu-out"),
) -> None:
    """Probe the epoch time, size the epochs to BUDGET, train with the Hydra overrides that
    follow, and write the bundle in parts (scripts/gpu_train.sh calls this)."""
    from pokedex.gpurun import run

    manifest = run(budget, list(ctx.args), out)
    keys = ("epochs_planned", "epochs_run", "probe_epoch_s", "train_s", "total_s", "metrics")
    typer.echo(json.dumps({k: manifest[k] for k in keys}, default=str))


@gpu_app.command(
    "ablation", context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
)
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
            help="Comma-separated arms (default: all of pokedex.gpuablation.ARMS).",
        ),
    ] = None,
    max_epochs: Annotated[
        int | None, typer.Option(help="At most this many epochs per arm, even if more fit.")
    ] = None,
) -> None:
    """The recipe given by the Hydra overrides that follow, then one change at a time, all on one
    schedule sized to BUDGET; scored on the test split and the photos (scripts/gpu_ablation.sh)."""
    from pokedex.gpuablation import ARMS, ablate, format_table

    names = [a.strip() for a in arms.split(",") if a.strip()] if arms else list(ARMS)
    typer.echo(format_table(ablate(budget, list(ctx.args), out, names, max_epochs)))


@gpu_app.command("collect")
@clean_errors
def gpu_collect(
    folder: Annotated[Path, typer.Argument(help="The files a GPU run brought back.")],
    out: Annotated[Path, typer.Option(help="Bundle folder to write.")] = Path("models/candidate"),
) -> None:
    """Check the parts a GPU run brought back and restore its bundle (then scripts/release.sh)."""
    from pokedex.gpurun import collect

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


@data_app.command("gallery")
@clean_errors
def data_gallery(
    processed: ProcessedOption = Path("data/processed"),
    out: Annotated[
        Path | None, typer.Option(help="Gallery folder. Default: PROCESSED/gallery.")
    ] = None,
    size: Annotated[int, typer.Option(min=16, max=512, help="Picture side in pixels.")] = 96,
) -> None:
    """One small picture per species from the processed data, for the API to serve."""
    from pokedex.data.gallery import build_gallery

    typer.echo(str(build_gallery(processed, out, size)))


@data_app.command("report")
@clean_errors
def data_report(
    processed: ProcessedOption = Path("data/processed"),
    out: Annotated[Path, typer.Option(help="Report folder.")] = Path("reports/data"),
) -> None:
    """Dataset statistics as markdown + figures."""
    from pokedex.data.report import write_report

    typer.echo(str(write_report(processed, out)))


@app.command("predict")
@clean_errors
def predict_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Image files or folders.")],
    model: Annotated[
        str | None,
        typer.Option(help="Bundle folder or models:/pokedex@alias. Default: $POKEDEX_MODEL."),
    ] = None,
    top_k: Annotated[int, typer.Option("--top-k", help="How many species to list (1-20).")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Recognize the Pokémon in each image."""
    from pokedex.predict import format_record, predict_paths

    failed = 0
    for record in predict_paths(paths, model, top_k):
        failed += "error" in record
        typer.echo(format_record(record, as_json))
    if failed:
        raise typer.Exit(3)


@app.command("sweep", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
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
    from pokedex.sweep import sweep

    result = sweep(ctx.args, trials=trials, study=study, storage=storage, seed=seed)
    typer.echo(json.dumps(result.__dict__))


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
    from pokedex.benchmarks.pack import format_table, run

    settings = []
    for item in setting or ["48:85", "64:85", "64:95", "96:85", "128:100"]:
        parts = item.split(":")
        if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
            raise PokedexError(
                f"--setting {item!r}: expected SIZE:QUALITY or SIZE:QUALITY:ALPHA_QUALITY, "
                "e.g. 64:85 or 96:70:50",
                exit_code=2,
            )
        size, quality, alpha = (*map(int, parts), 100)[:3]
        settings.append((size, quality, alpha))
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

    photos = photos or _env_path("POKEDEX_REAL_PHOTOS")
    if photos is not None and not photos.exists():
        raise PokedexError(f"{photos} not found", exit_code=2)
    typer.echo(format_table(run(model, processed, photos), model, describe()))


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
) -> None:
    """Training images/s: naive file pipeline vs ours vs in-memory tensors (the ceiling).

    The defaults are the `experiment=cpu` recipe's model, input size, batch size and augmentation.
    """
    from pokedex.benchmarks.training import augment_preset, format_table, recipe, run

    preset = recipe(experiment)
    results = run(
        processed,
        raw,
        arch=arch or preset.arch,
        size=size or preset.size,
        batch_size=batch_size or preset.batch_size,
        augment=augment_preset(augment) if augment else preset.augment,
        steps=steps,
        repeats=repeats,
    )
    typer.echo(format_table(results))


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
    tiles = None
    if preset.augment.background_photo > 0:
        from pokedex.data.backgrounds import load_tiles

        tiles = load_tiles(
            backgrounds or _env_path("POKEDEX_BACKGROUNDS") or Path("data/backgrounds")
        )
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


@app.command("export")
@clean_errors
def export_cmd(
    model: Annotated[str, typer.Option(help="Bundle folder or models:/pokedex@alias.")],
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
) -> None:
    """Add ONNX fp32 and INT8 (static QDQ) variants to a bundle, checked against PyTorch."""
    from pokedex.export import export, halve_weights
    from pokedex.registry import resolve_model

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
    )
    typer.echo(json.dumps(report.to_dict(), indent=2))


@bench_app.command("inference")
@clean_errors
def bench_inference(
    model: Annotated[str | None, typer.Option(help="Bundle folder (default: the release).")] = None,
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
    from pokedex.registry import resolve_model

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
    model: Annotated[str | None, typer.Option(help="Bundle folder (default: the release).")] = None,
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
) -> None:
    """HTTP req/s and latency: naive FastAPI + PyTorch vs LitServe vs ours vs the model
    without HTTP."""
    from pokedex.benchmarks.serving import BATCH_CONCURRENCY, CONCURRENCY, run
    from pokedex.benchmarks.serving_report import print_table, write_outputs
    from pokedex.registry import resolve_model
    from pokedex.serving.settings import Settings

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
    )
    print_table(result)
    if out is not None:
        for path in write_outputs(result, out):
            typer.echo(f"wrote {path}")


@app.command("serve")
@clean_errors
def serve_cmd(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    model: Annotated[
        str | None,
        typer.Option(help="Bundle folder or models:/pokedex@alias. Default: $POKEDEX_MODEL."),
    ] = None,
    variant: Annotated[str | None, typer.Option(help="fp32 or int8 ONNX variant.")] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning...")] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Server processes. Default: $POKEDEX_WORKERS, else 1."),
    ] = None,
) -> None:
    """The HTTP API (FastAPI + ONNX Runtime with dynamic batching) under uvicorn."""
    from pokedex.serving.server import serve

    extra = {} if workers is None else {"workers": workers}
    serve(host, port, model, variant=variant, log_level=log_level, **extra)


@app.command("ui")
@clean_errors
def ui_cmd(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8501,
    api_url: Annotated[
        str | None,
        typer.Option(help="The Pokédex API. Default: $POKEDEX_API_URL, else the local API."),
    ] = None,
) -> None:
    """The web UI (Streamlit); it talks to the API over HTTP."""
    from pokedex.ui.launch import run_ui

    if api_url is not None and not api_url.startswith(("http://", "https://")):
        raise PokedexError(f"--api-url must be an http(s):// URL, got {api_url!r}", exit_code=2)
    run_ui(host, port, api_url)


@app.command("card")
@clean_errors
def card_cmd(
    model: Annotated[str, typer.Option(help="Bundle folder or models:/pokedex@alias.")],
    evaluation: Annotated[
        Path | None, typer.Option(help="metrics.json of `pokedex evaluate` to include.")
    ] = None,
) -> None:
    """Write MODEL_CARD.md into a bundle from its recorded metrics, recipe and export checks."""
    from pokedex.modelcard import write_card
    from pokedex.registry import resolve_model

    if evaluation is not None and not evaluation.is_file():
        raise PokedexError(f"{evaluation}: no such file; give the metrics.json of an evaluation")
    typer.echo(write_card(resolve_model(model), evaluation))


@app.command("evaluate")
@clean_errors
def evaluate_cmd(
    model: Annotated[
        str | None,
        typer.Option(help="Bundle folder or models:/pokedex@alias. Default: $POKEDEX_MODEL."),
    ] = None,
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
    from pokedex.registry import resolve_model

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
    from pokedex.evaluate import evaluate

    photos = photos or _env_path("POKEDEX_REAL_PHOTOS")
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


@registry_app.command("register")
@clean_errors
def registry_register(
    bundle: Annotated[Path, typer.Option(help="Bundle folder to register.")],
    alias: Annotated[
        str | None, typer.Option(help="Alias to point at the new version ('' for none).")
    ] = "candidate",
    name: Annotated[str, typer.Option(help="Registered model name.")] = "pokedex",
) -> None:
    """Log a bundle to MLflow and make it a version of the registered model."""
    from pokedex.registry import register_bundle

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
    from pydantic import ValidationError

    from pokedex.evaluation.gate import GateSettings, format_comparison
    from pokedex.promote import promote

    given = {"max_top1_drop": max_top1_drop, "max_ece_rise": max_ece_rise}
    try:
        settings = GateSettings(**{k: v for k, v in given.items() if v is not None})
        processed = processed or _env_path("POKEDEX_PROCESSED") or Path("data/processed")
        result = promote(model, processed, settings, dry_run=dry_run)
    except ValidationError as exc:
        raise PokedexError(f"invalid gate margin: {exc.errors()[0]['msg']}", exit_code=2) from None
    except PokedexError as exc:  # whatever keeps the gate from deciding is not a refusal
        raise PokedexError(str(exc), exit_code=2) from None
    if result.comparison is None:
        typer.echo(f"{result.name} version {result.candidate} already is production")
        return
    old = result.production and f"v{result.production}"
    typer.echo(format_comparison(result.comparison, f"v{result.candidate}", old))
    if not result.comparison.accepted:
        typer.echo(f"verdict: REFUSED ({'; '.join(result.comparison.reasons)})")
        typer.echo(f"production stays at version {result.production}")
        raise typer.Exit(1)
    if result.production is None:
        verdict = "no production model yet: the candidate becomes production"
    else:
        verdict = "the candidate is within the margins"
    action = "would move" if dry_run else "moved"
    typer.echo(f"verdict: PROMOTE ({verdict}); production {action} to version {result.candidate}")


@registry_app.command("list")
@clean_errors
def registry_list(
    name: Annotated[str, typer.Option(help="Registered model name.")] = "pokedex",
) -> None:
    """Versions with their aliases, bundle version and recorded metrics."""
    from pokedex.registry import format_versions, list_versions

    typer.echo(format_versions(list_versions(name)))


@registry_app.command("alias")
@clean_errors
def registry_alias(
    alias: Annotated[str, typer.Argument(help="Alias to move, e.g. production.")],
    version: Annotated[str, typer.Argument(help="Version number to point it at.")],
    name: Annotated[str, typer.Option(help="Registered model name.")] = "pokedex",
) -> None:
    """Point an alias at a version with no gate: how a bad promotion is rolled back."""
    from pokedex.registry import set_alias

    before = set_alias(name, alias, version)
    typer.echo(f"{name}@{alias}: version {before or 'none'} -> {version}")


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
    model: Annotated[
        str | None,
        typer.Option(help="Bundle folder or models:/pokedex@alias. Default: $POKEDEX_MODEL."),
    ] = None,
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
    from pydantic import ValidationError

    from pokedex.monitoring.check import check_drift, reference_of
    from pokedex.monitoring.feedback import check_feedback, feedback_lines
    from pokedex.monitoring.log import open_log
    from pokedex.monitoring.report import summary_lines, write_report
    from pokedex.monitoring.window import parse_window
    from pokedex.registry import resolve_model
    from pokedex.serving.settings import Settings

    try:
        served = Settings()  # the server's defaults: the same log and window
        chosen = parse_window(window or served.drift_window)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = f"POKEDEX_{str(first['loc'][0]).upper()}"
        raise PokedexError(f"{name}: {first['msg']}", exit_code=2) from exc
    except ValueError as exc:
        raise PokedexError(str(exc), exit_code=2) from exc
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
    model: Annotated[
        str | None,
        typer.Option(help="Bundle folder or models:/pokedex@alias. Default: $POKEDEX_MODEL."),
    ] = None,
    processed: ProcessedOption = Path("data/processed"),
    split: Annotated[str, typer.Option(help="Reference split: val (default) or train.")] = "val",
    max_images: Annotated[int, typer.Option(help="Reference images (a seeded subset).")] = 2000,
    variant: Annotated[str, typer.Option(help="ONNX variant: auto, fp32 or int8.")] = "auto",
) -> None:
    """Build a bundle's drift reference on held-out data through the served-model path (image
    statistics, confidence, embeddings) and store it in the bundle."""
    from pokedex.monitoring.profile import build_profile, write_profile
    from pokedex.registry import resolve_model

    bundle = resolve_model(model)
    profile = build_profile(bundle, processed, split=split, max_images=max_images, variant=variant)
    path = write_profile(bundle, profile)
    typer.echo(
        f"wrote {path}: {len(profile.observations)} {split} images, "
        f"mean confidence {profile.confidence_mean:.3f}"
    )


if __name__ == "__main__":  # `python -m pokedex.cli`, where the entry point is not installed
    app()
