"""A compact, checksummed copy of `data/processed` that travels where 1.6 GB cannot (a GPU
machine that receives a working tree of at most 64 MiB).

Every canvas is stored as one WebP image with its alpha, at ``size`` px and ``quality``
(lossless at quality 100), the alpha exact unless ``alpha_quality`` is below 100 (at 96 px the
exact alpha is a quarter of the bytes); the blobs of a split are concatenated into one file,
indexed by their offsets. `unpack` decodes them back to 128 px canvases, so everything
downstream reads an ordinary processed folder, and records in it which pack, and how lossy, it
came from:

    pack/pack.json                 format, size, quality, source data version, files + sha256
    pack/{split}.webp.bin          the WebP blobs of a split, back to back
    pack/{split}_offsets.npy       (N + 1,) int64 byte offsets into the .bin
    pack/{split}_labels.npy        as in data/processed
    pack/classes.json catalog.json typechart.json summary.json   copied as they are
    pack/backgrounds.webp.bin ...  the photo tile bank, when there is one (lossy, q90)
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import logging
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pokedex.core.preprocess import CANVAS
from pokedex.data.backgrounds import MANIFEST_FILE, TILES_FILE, load_tiles
from pokedex.errors import PokedexError
from pokedex.io import atomic_path, check_digests, sha256_file

log = logging.getLogger(__name__)

FORMAT = 1
PACK_FILE = "pack.json"
SPLITS = ("train", "val", "test")
COPIED = ("classes.json", "catalog.json", "typechart.json", "summary.json")
BACKGROUNDS = "backgrounds"
_CHUNK = 512  # canvases per worker task


def encode_canvases(
    canvases: np.ndarray, size: int, quality: int, mode: str, alpha_quality: int = 100
) -> list[bytes]:
    """One WebP blob per image ``(N, S, S, C)``, resized to ``size`` (quality 100: lossless)."""
    out = []
    for canvas in canvases:
        image = Image.fromarray(np.ascontiguousarray(canvas), mode)
        if image.width != size:
            image = image.resize((size, size), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        if quality >= 100:
            image.save(buf, "WEBP", lossless=True, exact=True, method=4)
        else:  # exact: keep the colour under transparent pixels (the augmentation premultiplies)
            image.save(
                buf, "WEBP", quality=quality, alpha_quality=alpha_quality, exact=True, method=4
            )
        out.append(buf.getvalue())
    return out


def decode_blobs(blobs: list[bytes], size: int, mode: str) -> np.ndarray:
    """The images ``(N, size, size, C)`` back from their blobs."""
    out = np.empty((len(blobs), size, size, len(mode)), dtype=np.uint8)
    for i, blob in enumerate(blobs):
        with Image.open(io.BytesIO(blob)) as image:
            image = image.convert(mode)
            if image.width != size:
                image = image.resize((size, size), Image.Resampling.BICUBIC)
            out[i] = np.asarray(image)
    return out


def _write_blobs(
    folder: Path,
    name: str,
    images: np.ndarray,
    size: int,
    quality: int,
    mode: str,
    workers: int,
    alpha_quality: int = 100,
) -> int:
    chunks = [np.asarray(images[i : i + _CHUNK]) for i in range(0, len(images), _CHUNK)]
    encode = functools.partial(
        encode_canvases, size=size, quality=quality, mode=mode, alpha_quality=alpha_quality
    )
    with ProcessPoolExecutor(workers) as pool:
        blobs = [b for part in pool.map(encode, chunks) for b in part]
    offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    with open(folder / f"{name}.webp.bin", "wb") as fh:
        for blob in blobs:
            fh.write(blob)
    np.save(folder / f"{name}_offsets.npy", offsets)
    return int(offsets[-1])


def _read_blobs(folder: Path, name: str) -> list[bytes]:
    data = (folder / f"{name}.webp.bin").read_bytes()
    offsets = np.load(folder / f"{name}_offsets.npy", allow_pickle=False)
    if offsets.ndim != 1 or offsets[-1] != len(data) or np.any(np.diff(offsets) <= 0):
        raise PokedexError(f"{folder}: {name}_offsets.npy does not index {name}.webp.bin")
    return [data[a:b] for a, b in itertools.pairwise(offsets.tolist())]


def pack(
    processed: Path,
    out: Path,
    *,
    size: int = 64,
    quality: int = 85,
    alpha_quality: int = 100,
    backgrounds: Path | None = None,
    workers: int = 2,
) -> dict[str, Any]:
    """Write the pack of ``processed`` to ``out`` (replaced as a whole); return its manifest."""
    if not 8 <= size <= CANVAS:
        raise PokedexError(f"--size {size}: choose between 8 and {CANVAS} px")
    if not 1 <= quality <= 100:
        raise PokedexError(f"--quality {quality}: choose between 1 and 100 (100 = lossless)")
    if not 0 <= alpha_quality <= 100:
        raise PokedexError(f"--alpha-quality {alpha_quality}: choose between 0 and 100 (exact)")
    if quality >= 100 and alpha_quality < 100:
        raise PokedexError(
            f"--alpha-quality {alpha_quality} with --quality 100: a lossless pack keeps its alpha "
            "exact; lower --quality too, or leave --alpha-quality at 100"
        )
    if not (processed / "train_images.npy").is_file():
        raise PokedexError(f"{processed} has no packed splits: run `pokedex data prepare` first")
    started = time.perf_counter()
    counts, sizes = {}, {}
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for split in SPLITS:
            images = np.load(processed / f"{split}_images.npy", mmap_mode="r")
            sizes[split] = _write_blobs(
                tmp, split, images, size, quality, "RGBA", workers, alpha_quality
            )
            shutil.copyfile(processed / f"{split}_labels.npy", tmp / f"{split}_labels.npy")
            counts[split] = len(images)
        for name in COPIED:
            if (processed / name).is_file():
                shutil.copyfile(processed / name, tmp / name)
        bank = None
        if backgrounds is not None and (backgrounds / TILES_FILE).is_file():
            tiles = load_tiles(backgrounds)
            _write_blobs(tmp, BACKGROUNDS, tiles, tiles.shape[1], min(quality, 90), "RGB", workers)
            shutil.copyfile(backgrounds / MANIFEST_FILE, tmp / "backgrounds_manifest.json")
            bank = {"tiles": len(tiles), "size": int(tiles.shape[1])}
        files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        from pokedex.provenance import data_version

        identity = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
        manifest = {
            "format": FORMAT,
            "pack_id": identity,
            "size": size,
            "quality": quality,
            "alpha_quality": alpha_quality,
            "lossless": quality >= 100,
            "source_data_version": data_version(processed),
            "counts": counts,
            "bytes": {**sizes, "total": sum(p.stat().st_size for p in tmp.iterdir())},
            "backgrounds": bank,
            "files": files,
            "seconds": round(time.perf_counter() - started, 1),
        }
        (tmp / PACK_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    log.info("packed %s into %s: %.1f MB", processed, out, manifest["bytes"]["total"] / 1e6)
    return manifest


def read_manifest(pack_dir: Path) -> dict[str, Any]:
    """The pack's manifest, after checking every file against its sha256."""
    path = pack_dir / PACK_FILE
    if not path.is_file():
        raise PokedexError(f"{path} not found: make a pack with `pokedex data pack`")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise PokedexError(f"{path}: not JSON ({exc})") from exc
    if manifest.get("format") != FORMAT:
        raise PokedexError(f"{path}: pack format {manifest.get('format')!r}, expected {FORMAT}")
    check_digests(
        pack_dir,
        manifest["files"],
        missing="missing from the pack",
        damaged="checksum mismatch, the pack is damaged",
    )
    return manifest


def unpack(
    pack_dir: Path, out: Path, *, backgrounds: Path | None = None, workers: int = 2
) -> dict[str, Any]:
    """Restore a processed folder (128 px canvases) from a pack; record the pack in it as
    ``pack.json``. The tile bank goes to ``backgrounds`` when the pack has one."""
    manifest = read_manifest(pack_dir)
    size = int(manifest["size"])
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for split in SPLITS:
            blobs = _read_blobs(pack_dir, split)
            chunks = [blobs[i : i + _CHUNK] for i in range(0, len(blobs), _CHUNK)]
            images = np.lib.format.open_memmap(
                tmp / f"{split}_images.npy", "w+", np.uint8, (len(blobs), CANVAS, CANVAS, 4)
            )
            decode = functools.partial(decode_blobs, size=CANVAS, mode="RGBA")
            with ProcessPoolExecutor(workers) as pool:
                row = 0
                for part in pool.map(decode, chunks):
                    images[row : row + len(part)] = part
                    row += len(part)
            images.flush()
            del images
            shutil.copyfile(pack_dir / f"{split}_labels.npy", tmp / f"{split}_labels.npy")
        for name in COPIED:
            if (pack_dir / name).is_file():
                shutil.copyfile(pack_dir / name, tmp / name)
        (tmp / PACK_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    if backgrounds is not None and manifest.get("backgrounds"):
        bank = manifest["backgrounds"]
        tiles = decode_blobs(_read_blobs(pack_dir, BACKGROUNDS), int(bank["size"]), "RGB")
        with atomic_path(backgrounds) as tmp:
            tmp.mkdir(parents=True)
            np.save(tmp / TILES_FILE, tiles)
            shutil.copyfile(pack_dir / "backgrounds_manifest.json", tmp / MANIFEST_FILE)
    log.info("unpacked %s (%s px, q%s) into %s", pack_dir, size, manifest["quality"], out)
    return manifest


def pack_provenance(processed: Path) -> dict[str, Any]:
    """What a run records about the pack its data came from ({} for data prepared here)."""
    path = processed / PACK_FILE
    if not path.is_file():
        return {}
    m = json.loads(path.read_text())
    return {"data_pack": m["pack_id"], "data_pack_lossy": describe_setting(m)}


def describe_setting(manifest: dict[str, Any]) -> str:
    """``96 px WebP q70, alpha q50``: how lossy a pack is, from its manifest."""
    if manifest.get("lossless"):
        return f"{manifest['size']} px WebP lossless"
    alpha = int(manifest.get("alpha_quality", 100))  # packs before the option kept alpha exact
    return f"{manifest['size']} px WebP q{manifest['quality']}" + (
        f", alpha q{alpha}" if alpha < 100 else ""
    )
