"""fetch + prepare on the real dataset (POKEDEX_DATA_SOURCE; POKEDEX_METADATA for the catalog)."""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pokedex.data.fetch import fetch
from pokedex.data.prepare import prepare
from pokedex.data.split import SPLITS

SOURCE = os.environ.get("POKEDEX_DATA_SOURCE", "")
METADATA = os.environ.get("POKEDEX_METADATA", "")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (SOURCE and Path(SOURCE).is_file()),
        reason="set POKEDEX_DATA_SOURCE to the dataset archive",
    ),
]


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """Fetch and prepare once for the whole module (about a minute)."""
    base = tmp_path_factory.mktemp("real")
    fetch(SOURCE, base / "raw")
    metadata = Path(METADATA) if METADATA else None
    result = prepare(base / "raw", base / "processed", metadata=metadata)
    return result.out, result.summary


def _rows(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_image_is_kept(processed: tuple[Path, dict[str, Any]]) -> None:
    out, summary = processed
    assert summary["files"] == summary["images"] == 24_642
    assert summary["species"] == 1_000
    assert summary["quarantined"] == []
    assert len(json.loads((out / "classes.json").read_text())) == 1_000


def test_splits_are_disjoint_complete_and_stratified(
    processed: tuple[Path, dict[str, Any]],
) -> None:
    out, summary = processed
    rows = _rows(out)
    assert len({r["path"] for r in rows}) == len(rows) == 24_642
    assert sum(summary["splits"].values()) == 24_642
    species_in = {s: {r["species"] for r in rows if r["split"] == s} for s in SPLITS}
    assert len(species_in["train"]) == 1_000
    for split in SPLITS:
        labels = np.load(out / f"{split}_labels.npy")
        assert len(labels) == summary["splits"][split]
        images = np.load(out / f"{split}_images.npy", mmap_mode="r")
        assert images.shape == (len(labels), 128, 128, 4)


def test_no_exact_duplicate_straddles_splits(processed: tuple[Path, dict[str, Any]]) -> None:
    out, _ = processed
    splits_of: dict[str, set[str]] = defaultdict(set)
    for split in SPLITS:
        images = np.load(out / f"{split}_images.npy", mmap_mode="r")  # (N, 128, 128, 4)
        for canvas in images:
            splits_of[hashlib.sha256(canvas.tobytes()).hexdigest()].add(split)
    straddling = [h for h, s in splits_of.items() if len(s) > 1]
    assert straddling == []


@pytest.mark.skipif(not METADATA, reason="set POKEDEX_METADATA to the PokéAPI CSV folder")
def test_catalog_covers_every_species(processed: tuple[Path, dict[str, Any]]) -> None:
    out, summary = processed
    assert summary["unmatched_species"] == []
    catalog = json.loads((out / "catalog.json").read_text())["species"]
    assert sorted(catalog) == json.loads((out / "classes.json").read_text())
