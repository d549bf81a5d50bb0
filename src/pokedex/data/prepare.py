"""`pokedex data prepare`: validate, de-duplicate, split and pack the raw dataset.

data/raw (immutable) -> data/processed/, written atomically as one folder:
    classes.json            class names in label order (fixed here, shipped with every model)
    manifest.csv            path, sha256, species, label, split, width, height, mode, has_alpha
    {split}_images.npy      (N, 128, 128, 4) uint8 RGBA canvases, memory-mappable
    {split}_labels.npy      (N,) int16
    catalog.json, typechart.json   species facts and the 18x18 chart (when --metadata is given)
    gallery/                one small picture per species, for the API to show (data/gallery.py)
    quarantine/             rejected files, with the reason of each in summary.json
    summary.json
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import shutil
import time
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pokedex.data.feedback import SOURCE as FEEDBACK_SOURCE
from pokedex.data.feedback import take_feedback
from pokedex.data.gallery import build_gallery
from pokedex.data.split import SPLITS, assign_splits, cross_split_similar, near_duplicate_groups
from pokedex.data.validate import FORMATS, ImageCheck, check_image
from pokedex.errors import PokedexError
from pokedex.io import atomic_path, remove_stale_temps, write_json_atomic
from pokedex.logs import track

log = logging.getLogger(__name__)

MIN_IMAGES_PER_CLASS = 3
MAX_BAD_FRACTION = 0.005
# dHash-256 distances: <= 2 is the same picture re-encoded or recoloured (kept in one split);
# <= 8 is merely similar (reported, since sprites of one species share poses)
NEAR_DUPLICATE_DISTANCE = 2
SIMILAR_DISTANCE = 8


@dataclass(frozen=True)
class PrepareResult:
    """Where the processed data went and its headline figures."""

    out: Path
    summary: dict[str, Any]


def find_dataset_root(raw: Path) -> Path:
    """The folder holding one sub-folder per species (the `dataset/` folder of the Kaggle zip)."""
    if not raw.is_dir():
        raise PokedexError(f"{raw} does not exist: run `pokedex data fetch` first")
    candidates = [raw, *sorted(p for p in raw.rglob("*") if p.is_dir())]
    for folder in candidates:
        subdirs = [d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")]
        if len(subdirs) >= 2 and all(_has_images(d) for d in subdirs[:20]):
            return folder
    raise PokedexError(f"no folder of species sub-folders with images found under {raw}")


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in FORMATS for p in folder.iterdir())


def _read_metadata(root: Path) -> dict[str, str]:
    """image path (relative to the dataset root) -> label, from the Kaggle `metadata.csv`."""
    for candidate in (root / "metadata.csv", root.parent / "metadata.csv"):
        if candidate.is_file():
            base = candidate.parent
            with open(candidate, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh))
            labels = {}
            for row in rows:
                path = (base / row["image_path"]).resolve()
                try:
                    labels[path.relative_to(root.resolve()).as_posix()] = row["label"]
                except ValueError:
                    labels[row["image_path"]] = row["label"]
            return labels
    return {}


def _list_files(root: Path) -> list[str]:
    files = []
    for species_dir in sorted(d for d in root.iterdir() if d.is_dir()):
        for f in sorted(species_dir.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                files.append(f.relative_to(root).as_posix())
    return files


def _check_all(root: Path, files: list[str], workers: int) -> list[ImageCheck]:
    check = partial(check_image, root)
    if workers <= 1:
        return [check(f) for f in track(files, "validating images", total=len(files))]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(check, files, chunksize=64)
        return list(track(results, "validating images", total=len(files)))


@dataclass(frozen=True)
class _Sorted:
    """The checked files: those kept, and those quarantined with their reasons."""

    good: list[ImageCheck]
    quarantined: list[dict[str, str]]


@dataclass(frozen=True)
class _Split:
    """The kept images' species, near-duplicate groups and splits, in the order of ``good``."""

    classes: list[str]
    species: list[str]
    hashes: np.ndarray  # (N, 32) dHash-256 bytes
    groups: list[str]  # near-duplicate group id per image
    splits: list[str]

    @property
    def label_of(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.classes)}


def prepare(
    raw: Path,
    out: Path,
    *,
    metadata: Path | None = None,
    descriptions: Path | None = None,
    seed: int = 0,
    val: float = 0.1,
    test: float = 0.1,
    workers: int | None = None,
    feedback: Path | None = None,
) -> PrepareResult:
    """Validate, split and pack ``raw`` into ``out`` (replaced atomically); ``feedback``, a
    `pokedex data feedback export` folder, adds users' corrections (see data/feedback.py)."""
    start = time.perf_counter()
    root = find_dataset_root(raw)
    for stale in remove_stale_temps(out):
        log.warning("removed %s, left by an interrupted run", stale)
    files = _list_files(root)
    listed = _read_metadata(root)
    workers = workers if workers is not None else min(4, os.cpu_count() or 1)
    log.info("validating %d files under %s with %d workers", len(files), root, workers)
    checked = _sort_checks(_check_all(root, files, workers), listed)
    _refuse_unusable(files, checked)
    split = _split(checked.good, seed=seed, val=val, test=test)
    duplicates = _duplicates(checked.good, split)  # among the dataset's own images
    good, species, splits = checked.good, split.species, split.splits
    extra, sources = None, None
    if feedback is not None:
        extra = take_feedback(feedback, split.classes, good, species, seed=seed)
        if extra.checks:  # rows are tagged only when some are added: else the same version
            sources = ["dataset"] * len(good) + [FEEDBACK_SOURCE] * len(extra.checks)
            good, species = good + extra.checks, species + extra.species
            splits = splits + extra.splits

    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        manifest = _write_manifest(
            tmp / "manifest.csv", good, species, splits, split.label_of, sources
        )
        split_counts = _pack(tmp, good, species, splits, split.label_of)
        (tmp / "classes.json").write_text(json.dumps(split.classes, indent=1) + "\n")
        unmatched = _write_catalog(tmp, split.classes, metadata, descriptions)
        build_gallery(tmp)
        _copy_quarantine(root, tmp / "quarantine", checked.quarantined)
        if feedback is not None and extra is not None:
            # their paths start with feedback/: under quarantine/feedback/<species>/
            _copy_quarantine(feedback.parent, tmp / "quarantine", extra.quarantined, feedback)
        summary = {
            "source": str(raw),
            "data_version": hashlib.sha256(manifest).hexdigest()[:16],
            "seed": seed,
            "files": len(files),
            "images": len(good),
            "species": len(split.classes),
            "splits": split_counts,
            "species_per_split": {
                s: len({sp for sp, sv in zip(species, splits, strict=True) if sv == s})
                for s in SPLITS
            },
            "with_alpha": sum(c.has_alpha for c in good),
            "quarantined": checked.quarantined,
            **_metadata_mismatches(files, listed),
            **duplicates,
            "unmatched_species": unmatched,
            **({"feedback": extra.summary} if extra is not None else {}),
            "seconds": round(time.perf_counter() - start, 1),
        }
        write_json_atomic(tmp / "summary.json", summary)
    log.info(
        "prepared %d images of %d species in %.1f s (%d quarantined) -> %s",
        len(checked.good),
        len(split.classes),
        summary["seconds"],
        len(checked.quarantined),
        out,
    )
    return PrepareResult(out=out, summary=summary)


def _sort_checks(checks: list[ImageCheck], listed: dict[str, str]) -> _Sorted:
    """Keep the valid images whose folder agrees with the metadata's label; quarantine the rest
    with the reason of each."""
    quarantined: list[dict[str, str]] = []
    good: list[ImageCheck] = []
    for c in checks:
        folder_label = c.path.split("/")[0]
        reason = c.reason
        if reason is None and listed and listed.get(c.path, folder_label) != folder_label:
            reason = f"metadata label {listed[c.path]!r} differs from folder {folder_label!r}"
        if reason is None:
            good.append(c)
        else:
            quarantined.append({"path": c.path, "sha256": c.sha256, "reason": reason})
    return _Sorted(good=good, quarantined=quarantined)


def _refuse_unusable(files: list[str], checked: _Sorted) -> None:
    """PokedexError when too many files are unusable, or a species keeps too few images."""
    quarantined = checked.quarantined
    bad_fraction = len(quarantined) / max(1, len(files))
    if bad_fraction > MAX_BAD_FRACTION:
        raise PokedexError(
            f"{len(quarantined)} of {len(files)} images are unusable ({bad_fraction:.2%} > "
            f"{MAX_BAD_FRACTION:.1%}); first: {quarantined[0]['path']}: {quarantined[0]['reason']}"
        )
    per_class = Counter(c.path.split("/")[0] for c in checked.good)
    all_classes = sorted({f.split("/")[0] for f in files})
    small = sorted(k for k in all_classes if per_class[k] < MIN_IMAGES_PER_CLASS)
    if small:
        raise PokedexError(
            f"{len(small)} species have fewer than {MIN_IMAGES_PER_CLASS} usable images: "
            f"{', '.join(small[:10])}"
        )


def _metadata_mismatches(files: list[str], listed: dict[str, str]) -> dict[str, list[str]]:
    """Files the metadata lists that are not there, and files there that it does not list."""
    file_set = set(files)
    return {
        "metadata_missing_files": sorted(p for p in listed if p not in file_set),
        "metadata_unlisted_files": sorted(p for p in files if listed and p not in listed),
    }


def _split(good: list[ImageCheck], *, seed: int, val: float, test: float) -> _Split:
    """Fix the class order and split the images, near-duplicates always into one split."""
    species = [c.path.split("/")[0] for c in good]
    hashes = np.stack([np.frombuffer(c.dhash, dtype=np.uint8) for c in good])  # (N, 32)
    groups = near_duplicate_groups(species, hashes, max_distance=NEAR_DUPLICATE_DISTANCE)
    splits = assign_splits(species, groups, seed=seed, val=val, test=test)
    return _Split(sorted(set(species)), species, hashes, groups, splits)


def _duplicates(good: list[ImageCheck], split: _Split) -> dict[str, Any]:
    """The summary's duplicate figures: exact (identical pixels after decoding, whatever the file
    bytes), near (one split each) and held-out images similar to a train image."""
    by_pixels: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(good):
        by_pixels[c.pixel_hash].append(i)
    dup_groups = [g for g in by_pixels.values() if len(g) > 1]
    species = split.species
    conflicts = [[good[i].path for i in g] for g in dup_groups if len({species[i] for i in g}) > 1]
    similar = cross_split_similar(species, split.hashes, split.splits, SIMILAR_DISTANCE)
    return {
        "exact_duplicate_groups": len(dup_groups),
        "exact_duplicate_images": sum(len(g) for g in dup_groups),
        "duplicates_with_conflicting_labels": conflicts,
        "near_duplicate_groups": sum(1 for n in Counter(split.groups).values() if n > 1),
        f"held_out_with_similar_train_image_d{SIMILAR_DISTANCE}": similar,
    }


def _write_manifest(
    path: Path,
    good: list[ImageCheck],
    species: list[str],
    splits: list[str],
    label_of: dict[str, int],
    sources: list[str] | None = None,
) -> bytes:
    # the source column appears only with feedback rows: without them the manifest, and so
    # the data version, is what it was before feedback existed
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    header = ["path", "sha256", "species", "label", "split", "width", "height", "mode"]
    writer.writerow([*header, "has_alpha", *(["source"] if sources is not None else [])])
    for i, (c, sp, split) in enumerate(zip(good, species, splits, strict=True)):
        tag = [sources[i]] if sources is not None else []
        row = [c.path, c.sha256, sp, label_of[sp], split, c.width, c.height, c.mode]
        writer.writerow([*row, int(c.has_alpha), *tag])
    data = buf.getvalue().encode("utf-8")
    path.write_bytes(data)
    return data


def _pack(
    out: Path,
    good: list[ImageCheck],
    species: list[str],
    splits: list[str],
    label_of: dict[str, int],
) -> dict[str, int]:
    counts = {}
    for split in SPLITS:
        idx = [i for i, s in enumerate(splits) if s == split]
        images = np.lib.format.open_memmap(
            out / f"{split}_images.npy", mode="w+", dtype=np.uint8, shape=(len(idx), 128, 128, 4)
        )
        for row, i in enumerate(idx):
            images[row] = good[i].canvas
        images.flush()
        del images
        labels = np.array([label_of[species[i]] for i in idx], dtype=np.int16)
        np.save(out / f"{split}_labels.npy", labels)
        counts[split] = len(idx)
    return counts


def _write_catalog(
    out: Path, classes: list[str], metadata: Path | None, descriptions: Path | None
) -> list[str]:
    if metadata is None:
        log.warning("no --metadata folder given: no species catalog or type chart is built")
        return []
    from pokedex.dex.catalog import build_catalog, save_catalog
    from pokedex.dex.typechart import TypeChart

    catalog, unmatched = build_catalog(classes, metadata, descriptions)
    save_catalog(catalog, out / "catalog.json")
    write_json_atomic(out / "typechart.json", TypeChart.from_pokeapi(metadata).to_dict())
    if unmatched:
        log.warning("%d species not found in the PokéAPI tables: %s", len(unmatched), unmatched)
    return unmatched


def _copy_quarantine(
    root: Path, dest: Path, quarantined: list[dict[str, str]], folder: Path | None = None
) -> None:
    for item in quarantined:
        source = root / item["path"]
        if folder is not None:  # feedback: "feedback/<rel>" lives at folder/<rel>
            source = folder / item["path"].split("/", 1)[1]
        if not source.is_file():
            continue  # listed but missing: the reason says so
        target = dest / item["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
