"""`pokedex data ...`: fetch, prepare, pack and describe the dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from pokedex.cli.groups import clean_errors, data_app
from pokedex.cli.options import ProcessedOption, env_path
from pokedex.errors import PokedexError


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

    metadata = metadata or env_path("POKEDEX_METADATA")
    descriptions = descriptions or env_path("POKEDEX_DESCRIPTIONS")
    feedback = feedback or env_path("POKEDEX_FEEDBACK")
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
    from pokedex.data.dataset_report import write_report

    typer.echo(str(write_report(processed, out)))
