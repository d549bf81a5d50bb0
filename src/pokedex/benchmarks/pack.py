"""`pokedex benchmark pack`: what a lossy pack costs in accuracy, against what it saves in bytes.

Each setting (side in px, WebP quality, alpha quality) encodes the test split as
`pokedex data pack` would, decodes it back to 128 px canvases as `unpack` does, and scores a
model on it beside the original canvases; the bytes are extrapolated from the test split to the
whole dataset. The pixel error is the codec's alone: the decoded images against the same
canvases resized to the same side without loss (PSNR of the premultiplied colour and alpha,
what the augmentation sees), so it says what a quality costs at a side whatever model is scored.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from pokedex.core.preprocess import CANVAS, canvases_to_input
from pokedex.data.pack import decode_blobs, describe_setting, encode_canvases
from pokedex.errors import PokedexError
from pokedex.evaluation.metrics import accuracy

# the settings measured when none is given: SIZE:QUALITY[:ALPHA_QUALITY]
SETTINGS = ("48:85", "64:85", "64:95", "96:85", "128:100")


def parse_setting(text: str) -> tuple[int, int, int]:
    """``"64:85"`` or ``"96:70:50"`` as ``(size, quality, alpha quality)``; the alpha quality
    is 100 (exact) when not given. A malformed setting is a usage error."""
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise PokedexError(
            f"--setting {text!r}: expected SIZE:QUALITY or SIZE:QUALITY:ALPHA_QUALITY, "
            "e.g. 64:85 or 96:70:50",
            exit_code=2,
        )
    size, quality, alpha = (*map(int, parts), 100)[:3]
    return size, quality, alpha


@dataclass
class PackResult:
    """One setting: its size on disk and the model's test accuracy through it."""

    setting: str
    bytes_per_image: float
    dataset_mb: float
    top1: float
    seconds: float
    psnr_db: float  # against the lossless canvases at the same side; inf when identical


def run(
    bundle_ref: str,
    processed: Path,
    settings: list[tuple[int, int, int]],
    limit: int | None = None,
) -> tuple[float, list[PackResult]]:
    """Top-1 on the original test canvases, and one result per ``(size, quality, alpha
    quality)`` setting."""
    from pokedex.jobs.predict import TorchPredictor
    from pokedex.store.registry import resolve_model

    predictor = TorchPredictor(resolve_model(bundle_ref))
    bundle = predictor.bundle
    canvases = np.load(processed / "test_images.npy")[:limit]
    labels = np.load(processed / "test_labels.npy")[:limit].astype(np.int64)
    if json.loads((processed / "classes.json").read_text()) != list(bundle.classes):
        raise PokedexError(f"{bundle.path} was not trained on the species of {processed}")
    total = json.loads((processed / "summary.json").read_text())["images"]

    def top1(images: np.ndarray) -> float:
        logits = predictor.logits(canvases_to_input(images, bundle.preprocess))
        return float(accuracy(logits, labels)["acc_top1"])

    baseline = top1(canvases)
    results = []
    for size, quality, alpha_quality in settings:
        started = time.perf_counter()
        blobs = encode_canvases(canvases, size, quality, "RGBA", alpha_quality)
        restored = decode_blobs(blobs, CANVAS, "RGBA")
        seconds = time.perf_counter() - started
        per_image = sum(map(len, blobs)) / len(blobs)
        setting = {"size": size, "quality": quality, "alpha_quality": alpha_quality}
        name = describe_setting({**setting, "lossless": quality >= 100}).replace(" WebP", "")
        psnr = codec_psnr(canvases, decode_blobs(blobs, size, "RGBA"), size)
        results.append(
            PackResult(name, per_image, per_image * total / 1e6, top1(restored), seconds, psnr)
        )
    return baseline, results


def codec_psnr(canvases: np.ndarray, decoded: np.ndarray, size: int) -> float:
    """PSNR in dB of ``decoded`` ``(N, size, size, 4)`` against ``canvases`` resized to ``size``
    as `pack` resizes them, over premultiplied colour and alpha (colour under transparent pixels
    is never seen)."""
    squared = 0.0
    for canvas, image in zip(canvases, decoded, strict=True):
        reference = Image.fromarray(np.ascontiguousarray(canvas), "RGBA")
        if reference.width != size:
            reference = reference.resize((size, size), Image.Resampling.LANCZOS)
        a, b = _premultiplied(np.asarray(reference)), _premultiplied(image)
        squared += float(np.mean((a - b) ** 2))
    mse = squared / len(canvases)
    return float("inf") if mse == 0 else 10 * float(np.log10(255**2 / mse))


def _premultiplied(rgba: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` uint8 -> float64 with the colour multiplied by alpha (0-255 scale)."""
    out = rgba.astype(np.float64)
    out[..., :3] *= out[..., 3:] / 255
    return out


def format_table(baseline: float, results: list[PackResult], model: str, machine: str) -> str:
    """A markdown table: bytes, the whole dataset's pack size, top-1 and its change."""
    rows = [
        f"Model {model}; test split top-1 on the original canvases {baseline:.2%}; {machine}.",
        "",
        "| pack setting | bytes / image | whole dataset, MB | PSNR against lossless, dB "
        "| test top-1 through it | change | encode+decode s |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r.setting} | {r.bytes_per_image:,.0f} | {r.dataset_mb:.1f} | {r.psnr_db:.1f} "
            f"| {r.top1:.2%} | {(r.top1 - baseline) * 100:+.2f} pt | {r.seconds:.1f} |"
        )
    return "\n".join(rows)
