"""Users' corrections as a data source: written by `pokedex data feedback export`, taken in by
`pokedex data prepare --feedback DIR`.

The export is a raw source like the Kaggle folder, written atomically as one folder::

    <species>/<sha256>.webp   one file per distinct kept image (cleaned by the API)
    not_pokemon/<sha256>.webp pictures users said show no Pokémon (not trained on, yet)
    manifest.csv              path, sha256, species, verdict, verdicts, prediction_id,
                              model_name, model_version, verdict_time, review
    quarantine.csv            images whose verdicts disagree, with the reason; no file written
    export.json               which verdicts (since, reviews), counts

How prepare uses it (docs/feedback.md): the rows are tagged ``source=feedback`` in the
processed manifest and go to train or val, never test, so the test split stays the shipped
held-out images and its metrics stay comparable across data versions; val grows a set of real
photos. Near copies of one picture share a split. A feedback image that is a near copy of a
shipped image is dropped with the reason (a correction never overrides a shipped image or its
label), and so are near copies that users labelled differently.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from pokedex.data.split import near_duplicate_groups
from pokedex.data.validate import ImageCheck, check_image
from pokedex.errors import PokedexError
from pokedex.io import atomic_path, check_replaceable, write_json_atomic
from pokedex.store.feedback import Correction

log = logging.getLogger(__name__)

MANIFEST = "manifest.csv"
QUARANTINE = "quarantine.csv"
EXPORT = "export.json"
NOT_POKEMON = "not_pokemon"
SOURCE = "feedback"  # the tag of these rows in the processed manifest
COLUMNS = ("path", "sha256", "species", "verdict", "verdicts", "prediction_id", "model_name",
           "model_version", "verdict_time", "review")  # fmt: skip
VAL_SHARE = 0.2  # of feedback groups: the real-photo validation set; the rest trains
# dHash-256 bits within which two pictures count as one: wider than prepare's 2 for the shipped
# sprites, since users' copies of one picture differ by more than a lossless re-encode (one
# JPEG'd at q95 moved a median 13 bits on the test sprites, distinct sprites were >= 30 apart)
NEAR_COPY_DISTANCE = 12


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    out: Path
    images: int
    by_species: dict[str, int]
    not_pokemon: int
    quarantined: int


def export_feedback(
    corrections: Sequence[Correction], out: Path, *, since: datetime | None, reviews: Sequence[str]
) -> ExportResult:
    """Write ``corrections`` (verdicts with their kept images) as a raw source at ``out``.

    Verdicts on the same image (same hash) that agree make one file; ones that disagree put
    the image in quarantine.csv with the reason, and no file.
    """
    out = Path(out)
    check_replaceable(out, lambda name: (out / EXPORT).is_file(), "feedback export folder")
    by_image: dict[str, list[Correction]] = defaultdict(list)
    for c in corrections:
        by_image[c.sha256].append(c)
    rows, quarantined = [], []
    files: dict[str, bytes] = {}
    for sha, group in sorted(by_image.items()):
        labels = sorted({_label(c) for c in group})
        if len(labels) > 1:
            counts = ", ".join(f"{lab} ({sum(_label(c) == lab for c in group)})" for lab in labels)
            quarantined.append(
                {
                    "sha256": sha,
                    "reason": f"conflicting verdicts on one image: {counts}",
                    "prediction_ids": ";".join(str(c.prediction_id) for c in group),
                }
            )
            continue
        first = min(group, key=lambda c: c.ts)
        path = f"{labels[0]}/{sha}.webp"
        files[path] = first.data
        rows.append(
            {
                "path": path,
                "sha256": hashlib.sha256(first.data).hexdigest(),
                "species": "" if labels[0] == NOT_POKEMON else labels[0],
                "verdict": first.verdict,
                "verdicts": len(group),
                "prediction_id": str(first.prediction_id),
                "model_name": first.model_name,
                "model_version": first.model_version,
                "verdict_time": first.ts.astimezone(UTC).isoformat(),
                "review": first.review,
            }
        )
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        for path, data in files.items():
            (tmp / path).parent.mkdir(parents=True, exist_ok=True)
            (tmp / path).write_bytes(data)
        _write_csv(tmp / MANIFEST, COLUMNS, rows)
        _write_csv(tmp / QUARANTINE, ("sha256", "reason", "prediction_ids"), quarantined)
        by_species: dict[str, int] = defaultdict(int)
        for row in rows:
            if row["species"]:
                by_species[row["species"]] += 1
        summary = {  # no time of export: the same verdicts give the same bytes (DVC sees no change)
            "since": since.isoformat() if since else None,
            "reviews": list(reviews),
            "verdicts": len(corrections),
            "images": len(rows),
            "by_species": dict(sorted(by_species.items())),
            "not_pokemon": sum(1 for r in rows if not r["species"]),
            "quarantined": len(quarantined),
        }
        write_json_atomic(tmp / EXPORT, summary)
    log.info("exported %d images from %d verdicts to %s", len(rows), len(corrections), out)
    return ExportResult(
        out, len(rows), summary["by_species"], summary["not_pokemon"], len(quarantined)
    )


def _label(c: Correction) -> str:
    return NOT_POKEMON if c.verdict == "not_pokemon" or not c.species else c.species


def _write_csv(path: Path, columns: Sequence[str], rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")


@dataclass
class FeedbackRows:
    """Feedback images prepare adds: their checks (paths prefixed ``feedback/``), species and
    splits in matching order, what was left out and why, and the summary block."""

    checks: list[ImageCheck] = field(default_factory=list)
    species: list[str] = field(default_factory=list)
    splits: list[str] = field(default_factory=list)
    quarantined: list[dict[str, str]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def take_feedback(
    source: Path,
    classes: Sequence[str],
    shipped: Sequence[ImageCheck],
    shipped_species: Sequence[str],
    *,
    seed: int = 0,
    val_share: float = VAL_SHARE,
) -> FeedbackRows:
    """Read, check and split the feedback export at ``source`` against the shipped images."""
    source = Path(source)
    rows = _read_manifest(source)
    result = FeedbackRows()

    def drop(row: dict[str, str], reason: str) -> None:
        result.quarantined.append(
            {"path": f"{SOURCE}/{row['path']}", "sha256": row["sha256"], "reason": reason}
        )

    known = set(classes)
    candidates: list[tuple[dict[str, str], ImageCheck]] = []
    not_pokemon = 0
    for row in rows:
        if not row["species"]:
            not_pokemon += 1  # kept in the export for open-set work; not a class to train
            continue
        if row["species"] not in known:
            drop(row, f"species {row['species']!r} is not one of the dataset's classes")
            continue
        if not (source / row["path"]).is_file():
            drop(row, "listed in the manifest but the file is missing")
            continue
        check = check_image(source, row["path"])
        if check.sha256 != row["sha256"]:
            drop(row, "sha256 differs from the manifest: the file was changed after export")
        elif check.reason is not None:
            drop(row, check.reason)
        else:
            candidates.append((row, check))

    # a correction never overrides a shipped image: near copies of one are left out
    kept: list[tuple[dict[str, str], ImageCheck]] = []
    shipped_hashes = _hashes([c.dhash for c in shipped])
    for row, check in candidates:
        hit = _nearest(check.dhash, shipped_hashes)
        if hit is not None:
            same = shipped_species[hit] == row["species"]
            drop(
                row,
                f"near copy of shipped image {shipped[hit].path} ({shipped_species[hit]}): "
                + ("already in the dataset" if same else "a correction never overrides it"),
            )
        else:
            kept.append((row, check))

    # near copies that users filed under different species: left out, all of them
    if kept:
        hashes = _hashes([c.dhash for _, c in kept])
        groups = near_duplicate_groups(["all"] * len(kept), hashes, NEAR_COPY_DISTANCE)
        labels: dict[str, set[str]] = defaultdict(set)
        for group, (row, _) in zip(groups, kept, strict=True):
            labels[group].add(row["species"])
        accepted = []
        for group, (row, check) in zip(groups, kept, strict=True):
            if len(labels[group]) > 1:
                drop(row, f"conflicting verdicts on one image: {', '.join(sorted(labels[group]))}")
            else:
                accepted.append((group, row, check))
        for group, row, check in accepted:
            result.checks.append(_prefixed(check))
            result.species.append(row["species"])
            result.splits.append("val" if _fraction(seed, group) < val_share else "train")

    result.summary = {
        "source": str(source),
        "rows": len(rows),
        "added": {s: result.splits.count(s) for s in ("train", "val")},
        "species": len(set(result.species)),
        "not_pokemon": not_pokemon,
        "val_share": val_share,
        "quarantined": result.quarantined,
    }
    return result


def _read_manifest(source: Path) -> list[dict[str, str]]:
    path = source / MANIFEST
    if not path.is_file():
        raise PokedexError(
            f"{source} is not a feedback export (no {MANIFEST}): write one with "
            "`pokedex data feedback export`"
        )
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = set(COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise PokedexError(f"{path} lacks the columns {', '.join(sorted(missing))}")
        rows = list(reader)
    for row in rows:
        parts = Path(row["path"]).parts
        if len(parts) != 2 or ".." in parts or Path(row["path"]).is_absolute():
            raise PokedexError(f"{path}: path {row['path']!r} is not <species>/<file>")
    return rows


def _prefixed(check: ImageCheck) -> ImageCheck:
    return replace(check, path=f"{SOURCE}/{check.path}")


def _hashes(dhashes: list[bytes]) -> np.ndarray:
    """``(N, 32)`` uint8 packed 256-bit hashes (``(0, 32)`` for none)."""
    if not dhashes:
        return np.zeros((0, 32), dtype=np.uint8)
    return np.stack([np.frombuffer(h, dtype=np.uint8) for h in dhashes])


def _nearest(dhash: bytes, hashes: np.ndarray, chunk: int = 8192) -> int | None:
    """Index of a hash within NEAR_COPY_DISTANCE of ``dhash``, or None."""
    one = np.frombuffer(dhash, dtype=np.uint8).view(np.uint64)  # (4,)
    for start in range(0, len(hashes), chunk):
        block = np.ascontiguousarray(hashes[start : start + chunk]).view(np.uint64)  # (n, 4)
        distance = np.bitwise_count(block ^ one).sum(axis=1)
        close = np.flatnonzero(distance <= NEAR_COPY_DISTANCE)
        if len(close):
            return start + int(close[0])
    return None


def _fraction(seed: int, group: str) -> float:
    """A stable number in [0, 1) per group: the split does not depend on the order of rows."""
    digest = hashlib.sha256(f"{seed}:{SOURCE}:{group}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
