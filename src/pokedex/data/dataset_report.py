"""`pokedex data report`: describe a processed dataset as markdown plus figures.

Reads data/processed/ (layout in `pokedex.data.prepare`) and writes one folder, replaced
atomically:
    report.md         counts, class balance, types, image statistics, data-quality findings
    class_sizes.png   histogram of images per species
    types.png         primary / secondary type counts (only when catalog.json exists)
    image_stats.png   per-split histograms of the image statistics
    samples.png       a seeded grid of train canvases flattened on a checkerboard
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from pokedex.data.split import SPLITS
from pokedex.errors import PokedexError
from pokedex.io import atomic_path, check_replaceable

log = logging.getLogger(__name__)

Splits = dict[str, tuple[np.ndarray, np.ndarray]]  # split -> (images (N, H, W, 4), labels (N,))

# Per split: enough for means stable to ~1 %, few enough that the report takes seconds.
MAX_STAT_IMAGES = 2000
STAT_CHUNK = 256  # images converted to float32 at a time (~67 MB of 128 px RGBA)
DPI = 100
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 weights
METRICS = {
    "brightness": "mean luma of the opaque pixels (0-255)",
    "contrast": "standard deviation of that luma (0-255)",
    "colourfulness": "Hasler-Süsstrunk colourfulness of the opaque pixels (0-255 scale)",
    "alpha_coverage": "share of pixels that are not fully transparent (%)",
}
MAX_LISTED = 20  # names or rows shown before "and N more"
PREPARE_HINT = "run `pokedex data prepare` first"


def write_report(processed: Path, out: Path, *, sample_grid: int = 8, seed: int = 0) -> Path:
    """Write out/report.md and out/*.png; return the markdown path."""
    start = time.perf_counter()
    processed, out = Path(processed), Path(out)
    if sample_grid < 1:
        raise PokedexError(f"sample_grid must be >= 1, got {sample_grid}")
    classes, summary, splits = _load(processed)
    check_replaceable(out, _owned, "report folder")
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        n_images = sum(len(labels) for _, labels in splits.values())
        sections = [
            f"# Dataset report\n\n{n_images} images of {len(classes)} species; data version "
            f"`{summary.get('data_version', '?')}`, split seed {summary.get('seed', '?')}.",
            _counts_section(classes, splits),
            _class_size_section(tmp, classes, splits),
            _type_section(tmp, processed, classes),
            _image_stats_section(tmp, splits, seed),
            _quality_section(summary),
            *([_feedback_section(summary["feedback"])] if "feedback" in summary else []),
            _samples_section(tmp, classes, splits["train"], sample_grid, seed),
        ]
        (tmp / "report.md").write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    log.info("wrote the dataset report to %s in %.1f s", out, time.perf_counter() - start)
    return out / "report.md"


def _load(processed: Path) -> tuple[list[str], dict[str, Any], Splits]:
    if not processed.is_dir():
        raise PokedexError(f"processed data folder {processed} does not exist: {PREPARE_HINT}")
    arrays = [f"{s}_{kind}.npy" for s in SPLITS for kind in ("images", "labels")]
    needed = ("classes.json", "summary.json", *arrays)
    missing = [name for name in needed if not (processed / name).is_file()]
    if missing:
        raise PokedexError(f"{processed} lacks {', '.join(missing)}: {PREPARE_HINT}")
    classes = _read(processed / "classes.json")
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise PokedexError(f"{processed / 'classes.json'} is not a non-empty list of class names")
    summary = _read(processed / "summary.json")
    if not isinstance(summary, dict):
        raise PokedexError(f"{processed / 'summary.json'} is not a JSON object")
    splits = {}
    for split in SPLITS:
        images, labels = (_read(processed / f"{split}_{k}.npy") for k in ("images", "labels"))
        if images.ndim != 4 or images.shape[-1] != 4 or images.dtype != np.uint8:
            raise PokedexError(
                f"{processed / f'{split}_images.npy'} holds {images.dtype} {images.shape}, "
                f"expected (N, H, W, 4) uint8: {PREPARE_HINT}"
            )
        if labels.shape != (len(images),) or (
            len(labels) and not 0 <= labels.min() <= labels.max() < len(classes)
        ):
            raise PokedexError(
                f"{processed / f'{split}_labels.npy'} does not hold one label in "
                f"[0, {len(classes)}) per image: {PREPARE_HINT}"
            )
        splits[split] = (images, np.asarray(labels, dtype=np.int64))
    return classes, summary, splits


def _read(path: Path) -> Any:
    try:
        if path.suffix == ".npy":
            # memory-mapped: the train images take >1 GB and only a sample is ever touched
            return np.load(path, mmap_mode="r", allow_pickle=False)
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError included
        raise PokedexError(f"cannot read {path}: {exc}: {PREPARE_HINT}") from exc


def _owned(name: str) -> bool:
    """Files an earlier report leaves in its folder (replaced as a whole)."""
    return name == "report.md" or name.endswith(".png")


def _counts_section(classes: list[str], splits: Splits) -> str:
    total = sum(len(labels) for _, labels in splits.values())
    rows = [["split", "images", "share", "species"]]
    for split, (_, labels) in splits.items():
        share = f"{len(labels) / total:.1%}" if total else "-"
        rows.append([split, len(labels), share, len(np.unique(labels))])
    every = np.concatenate([labels for _, labels in splits.values()])
    rows.append(["total", total, "100%" if total else "-", len(np.unique(every))])
    blocks = ["## Splits", _table(rows)]
    for split, (_, labels) in splits.items():
        absent = sorted(set(range(len(classes))) - set(labels.tolist()))
        if absent:
            names = _listing([classes[i] for i in absent])
            blocks.append(f"{len(absent)} species have no {split} image: {names}.")
    return "\n\n".join(blocks)


def _class_size_section(tmp: Path, classes: list[str], splits: Splits) -> str:
    per_split = {s: np.bincount(lab, minlength=len(classes)) for s, (_, lab) in splits.items()}
    sizes = sum(per_split.values())  # (C,) images per species over all splits
    rows = [["split", "min", "median", "max"]]
    rows += [[s, c.min(), f"{np.median(c):g}", c.max()] for s, c in per_split.items()]
    smallest = _listing([classes[i] for i in np.flatnonzero(sizes == sizes.min())], limit=5)
    largest = _listing([classes[i] for i in np.flatnonzero(sizes == sizes.max())], limit=5)

    fig, ax = _pyplot().subplots(figsize=(7, 3.5), layout="constrained")
    # one bar per integer size while that stays readable
    bins = np.arange(sizes.min(), sizes.max() + 2) - 0.5 if np.ptp(sizes) <= 60 else 60
    ax.hist(sizes, bins=bins)
    ax.set(xlabel="images per species", ylabel="species", title="Class sizes (all splits)")
    _save(fig, tmp / "class_sizes.png")
    text = (
        f"Images per species: median {np.median(sizes):g}, min {sizes.min()} ({smallest}), "
        f"max {sizes.max()} ({largest})."
    )
    return "\n\n".join(["## Class sizes", text, _table(rows), "![class sizes](class_sizes.png)"])


def _type_section(tmp: Path, processed: Path, classes: list[str]) -> str:
    if not (processed / "catalog.json").is_file():
        return (
            "## Types\n\nNo catalog.json in the processed folder: run `pokedex data prepare` "
            "with `--metadata` to include the type distribution."
        )
    from pokedex.dex.catalog import load_catalog  # pydantic models: imported only when needed

    catalog = load_catalog(processed / "catalog.json")
    primary: dict[str, int] = {}
    secondary: dict[str, int] = {}
    known = [catalog[name].types for name in classes if name in catalog]
    for types in known:
        primary[types[0]] = primary.get(types[0], 0) + 1
        for extra in types[1:]:
            secondary[extra] = secondary.get(extra, 0) + 1
    order = sorted(primary.keys() | secondary.keys(), key=lambda t: (-primary.get(t, 0), t))
    rows = [["type", "primary", "secondary"]]
    rows += [[t, primary.get(t, 0), secondary.get(t, 0)] for t in order]

    fig, ax = _pyplot().subplots(figsize=(7, 0.3 * len(order) + 1.2), layout="constrained")
    y = np.arange(len(order))
    ax.barh(y - 0.2, [primary.get(t, 0) for t in order], 0.4, label="primary")
    ax.barh(y + 0.2, [secondary.get(t, 0) for t in order], 0.4, label="secondary")
    ax.set_yticks(y, order)
    ax.invert_yaxis()
    ax.set(xlabel="species", title="Types of the species")
    ax.legend()
    _save(fig, tmp / "types.png")
    text = (
        f"{len(known)} of {len(classes)} species are in the catalog, "
        f"{sum(secondary.values())} of them with a secondary type (counted once per species)."
    )
    return "\n\n".join(["## Types", text, _table(rows), "![type distribution](types.png)"])


def _image_stats_section(tmp: Path, splits: Splits, seed: int) -> str:
    rows = [["split", "sampled", *METRICS]]
    stats = {}
    for i, (split, (images, _)) in enumerate(splits.items()):
        rng = np.random.default_rng([seed, i])
        # sorted: the memory map is then read front to back
        idx = np.sort(rng.choice(len(images), min(len(images), MAX_STAT_IMAGES), replace=False))
        stats[split] = _image_stats(images, idx)
        cells = [
            f"{np.nanmean(v):.1f} ± {np.nanstd(v):.1f}" if len(v) else "-"
            for v in stats[split].values()
        ]
        rows.append([split, f"{len(idx)} of {len(images)}", *cells])

    fig, axes = _pyplot().subplots(2, 2, figsize=(9, 6), layout="constrained")
    for ax, metric in zip(axes.flat, METRICS, strict=True):
        for split, values in stats.items():
            finite = values[metric][np.isfinite(values[metric])]
            if len(finite):
                ax.hist(finite, bins=40, histtype="step", density=True, label=split)
        ax.set(title=metric.replace("_", " "), yticks=[])
    axes.flat[0].legend()
    _save(fig, tmp / "image_stats.png")
    defs = "\n".join(f"- **{m}**: {d}" for m, d in METRICS.items())
    head = f"Mean ± std per split over a seeded sample of at most {MAX_STAT_IMAGES} images."
    figure = "![image statistics](image_stats.png)"
    return "\n\n".join(["## Image statistics", head, defs, _table(rows), figure])


def _image_stats(images: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric of each image in ``images[idx]``, alpha-weighted: ``{metric: (n,)}``."""
    parts: dict[str, list[np.ndarray]] = {m: [np.zeros(0)] for m in METRICS}
    for start in range(0, len(idx), STAT_CHUNK):
        batch = images[idx[start : start + STAT_CHUNK]].astype(np.float32)  # (B, H, W, 4)
        rgb, alpha = batch[..., :3], batch[..., 3] / 255  # (B, H, W, 3), (B, H, W)
        luma_mean, luma_std = _weighted(rgb @ LUMA, alpha)
        rg_mean, rg_std = _weighted(rgb[..., 0] - rgb[..., 1], alpha)
        yb_mean, yb_std = _weighted((rgb[..., 0] + rgb[..., 1]) / 2 - rgb[..., 2], alpha)
        parts["brightness"].append(luma_mean)
        parts["contrast"].append(luma_std)
        parts["colourfulness"].append(np.hypot(rg_std, yb_std) + 0.3 * np.hypot(rg_mean, yb_mean))
        parts["alpha_coverage"].append(100 * (alpha > 0).mean(axis=(1, 2)))
    return {m: np.concatenate(v) for m, v in parts.items()}


def _weighted(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image weighted mean and std of ``x`` (B, H, W); NaN for a fully transparent image."""
    total = w.sum(axis=(1, 2))  # (B,)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (x * w).sum(axis=(1, 2)) / total
        var = ((x - mean[:, None, None]) ** 2 * w).sum(axis=(1, 2)) / total
    return mean, np.sqrt(var)


def _quality_section(summary: dict[str, Any]) -> str:
    quarantined = summary.get("quarantined", [])
    blocks = ["## Data quality", f"Quarantined files: {len(quarantined)}."]
    if quarantined:
        shown = [[q.get("path", "?"), q.get("reason", "?")] for q in quarantined[:MAX_LISTED]]
        blocks.append(_table([["file", "reason"], *shown]))
        if len(quarantined) > MAX_LISTED:
            blocks.append(f"... and {len(quarantined) - MAX_LISTED} more in summary.json.")
    similar = next((k for k in summary if k.startswith("held_out_with_similar_train")), "")
    facts = [
        ("exact duplicate groups (identical pixels)", summary.get("exact_duplicate_groups")),
        ("images in exact duplicate groups", summary.get("exact_duplicate_images")),
        ("near-duplicate groups (each kept in one split)", summary.get("near_duplicate_groups")),
        ("val/test images with a similar train image", summary.get(similar)),
        ("files not listed in the metadata", len(summary.get("metadata_unlisted_files", []))),
        ("metadata rows without a file", len(summary.get("metadata_missing_files", []))),
    ]
    blocks.append(_table([["check", "count"], *[[k, "-" if v is None else v] for k, v in facts]]))
    conflicts = summary.get("duplicates_with_conflicting_labels", [])
    blocks.append(f"Identical images filed under different species: {len(conflicts)}.")
    if conflicts:
        blocks.append("\n".join(f"- {', '.join(g)}" for g in conflicts[:MAX_LISTED]))
    return "\n\n".join(blocks)


def _feedback_section(block: dict[str, Any]) -> str:
    """Users' corrections taken in by prepare (rows tagged source=feedback)."""
    added = block.get("added", {})
    quarantined = block.get("quarantined", [])
    blocks = [
        "## Feedback",
        f"From `{block.get('source', '?')}`: {block.get('rows', 0)} exported images; added "
        f"{added.get('train', 0)} to train and {added.get('val', 0)} to val (never test) over "
        f"{block.get('species', 0)} species; {block.get('not_pokemon', 0)} not-a-Pokémon "
        f"pictures set aside; {len(quarantined)} left out.",
    ]
    if quarantined:
        shown = [[q.get("path", "?"), q.get("reason", "?")] for q in quarantined[:MAX_LISTED]]
        blocks.append(_table([["file", "reason"], *shown]))
        if len(quarantined) > MAX_LISTED:
            blocks.append(f"... and {len(quarantined) - MAX_LISTED} more in summary.json.")
    return "\n\n".join(blocks)


def _samples_section(
    tmp: Path, classes: list[str], train: tuple[np.ndarray, np.ndarray], grid: int, seed: int
) -> str:
    images, labels = train
    n = min(grid * grid, len(images))
    if n == 0:
        return "## Samples\n\nThe train split is empty."
    rng = np.random.default_rng([seed, len(SPLITS)])  # its own stream, apart from the stats
    idx = np.sort(rng.choice(len(images), n, replace=False))
    tiles = images[idx].astype(np.float32) / 255  # (n, H, W, 4)
    h, w = tiles.shape[1:3]
    yy, xx = np.mgrid[:h, :w]
    checker = np.where((yy // 8 + xx // 8) % 2, 0.8, 1.0)[..., None]  # (H, W, 1)
    alpha = tiles[..., 3:]
    flat = tiles[..., :3] * alpha + checker * (1 - alpha)  # (n, H, W, 3)
    cols, rows = min(grid, n), -(-n // min(grid, n))
    mosaic = np.ones((rows, cols, h, w, 3), dtype=np.float32)
    mosaic.reshape(rows * cols, h, w, 3)[:n] = flat
    mosaic = mosaic.transpose(0, 2, 1, 3, 4).reshape(rows * h, cols * w, 3)

    fig = _pyplot().figure(figsize=(cols * w / DPI, rows * h / DPI))  # one pixel per pixel
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    ax.imshow(mosaic, interpolation="nearest")
    box = {"facecolor": "white", "alpha": 0.7, "pad": 1, "linewidth": 0}
    for k, label in enumerate(labels[idx]):
        r, c = divmod(k, cols)
        ax.text(c * w + 2, r * h + 2, classes[label], fontsize=6, va="top", bbox=box)
    _save(fig, tmp / "samples.png")
    text = f"{n} random train images (seed {seed}); transparency shows as a checkerboard."
    return f"## Samples\n\n{text}\n\n![train samples](samples.png)"


def _listing(names: list[str], limit: int = MAX_LISTED) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _table(rows: list[list[Any]]) -> str:
    head, *body = [[str(cell).replace("|", "\\|") for cell in row] for row in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # files only: no window, works without a display
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    # no Software metadata: the same data and seed give byte-identical files across versions
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    _pyplot().close(fig)
