"""The dataset report, on tiny processed folders made by hand in the documented layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pokedex.data.dataset_report import write_report
from pokedex.dex.catalog import STATS, Species, save_catalog
from pokedex.errors import PokedexError

CLASSES = ["bulbasaur", "charmander", "squirtle"]
SIZE = 32  # canvases are 128 px in real data; the report does not depend on it
TYPES = {"bulbasaur": ("grass", "poison"), "charmander": ("fire",), "squirtle": ("water",)}


def _canvas(rgb: tuple[int, int, int], alpha: np.ndarray | int = 255) -> np.ndarray:
    image = np.empty((SIZE, SIZE, 4), dtype=np.uint8)
    image[..., :3] = rgb
    image[..., 3] = alpha
    return image


def make_processed(root: Path, *, catalog: bool = True) -> Path:
    """train: 5/4/3 noise images; val: one opaque red per class; test: two half-transparent."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (12, SIZE, SIZE, 4), dtype=np.uint8)
    half = np.zeros((SIZE, SIZE), dtype=np.uint8)
    half[:, SIZE // 2 :] = 255
    test = np.stack([_canvas((255, 255, 255), half)] * 2)
    test[:, :, : SIZE // 2, :3] = 0  # colour under transparent pixels must not count
    splits = {
        "train": (train, [0] * 5 + [1] * 4 + [2] * 3),
        "val": (np.stack([_canvas((255, 0, 0))] * 3), [0, 1, 2]),
        "test": (test, [0, 1]),  # squirtle has no test image
    }
    root.mkdir(parents=True)
    for split, (images, labels) in splits.items():
        np.save(root / f"{split}_images.npy", images)
        np.save(root / f"{split}_labels.npy", np.array(labels, dtype=np.int16))
    (root / "classes.json").write_text(json.dumps(CLASSES))
    summary = {
        "data_version": "abc123",
        "seed": 0,
        "quarantined": [{"path": "pikachu/bad|name.webp", "sha256": "0", "reason": "truncated"}],
        "exact_duplicate_groups": 4,
        "exact_duplicate_images": 9,
        "duplicates_with_conflicting_labels": [["abra/1.png", "kadabra/2.png"]],
        "near_duplicate_groups": 7,
        "held_out_with_similar_train_image_d8": 3,
        "metadata_missing_files": [],
        "metadata_unlisted_files": ["x/y.png"],
    }
    (root / "summary.json").write_text(json.dumps(summary))
    if catalog:
        entries = {
            name: Species(
                name=name,
                display_name=name.title(),
                national_number=i + 1,
                pokeapi_id=i + 1,
                types=TYPES[name],
                stats=dict.fromkeys(STATS, 50),
                generation=1,
            )
            for i, name in enumerate(CLASSES)
        }
        save_catalog(entries, root / "catalog.json")
    return root


@pytest.fixture
def processed(tmp_path: Path) -> Path:
    return make_processed(tmp_path / "processed")


def _valid_png(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        image.verify()
        return image.size


def test_report_holds_counts_types_quality_and_figures(processed: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    md = write_report(processed, out, sample_grid=3, seed=1)
    assert md == out / "report.md"
    text = md.read_text(encoding="utf-8")

    assert "17 images of 3 species; data version `abc123`" in text
    assert "| train | 12 | 70.6% | 3 |" in text
    assert "| val | 3 | 17.6% | 3 |" in text
    assert "| test | 2 | 11.8% | 2 |" in text
    assert "| total | 17 | 100% | 3 |" in text
    assert "1 species have no test image: squirtle." in text
    assert "median 6, min 4 (squirtle), max 7 (bulbasaur)" in text
    assert "| train | 3 | 4 | 5 |" in text  # min / median / max per species

    assert "3 of 3 species are in the catalog, 1 of them with a secondary type" in text
    assert "| poison | 0 | 1 |" in text
    assert "| grass | 1 | 0 |" in text

    assert "Quarantined files: 1." in text
    assert "| pikachu/bad\\|name.webp | truncated |" in text  # a pipe must not break the table
    assert "| exact duplicate groups (identical pixels) | 4 |" in text
    assert "| val/test images with a similar train image | 3 |" in text
    assert "| files not listed in the metadata | 1 |" in text
    assert "- abra/1.png, kadabra/2.png" in text

    names = ["class_sizes.png", "types.png", "image_stats.png", "samples.png"]
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "report.md"])
    for name in names:
        assert f"]({name})" in text
        _valid_png(out / name)
    assert _valid_png(out / "samples.png") == (3 * SIZE, 3 * SIZE)  # one pixel per pixel


def test_image_statistics_ignore_transparent_pixels(processed: Path, tmp_path: Path) -> None:
    text = write_report(processed, tmp_path / "report").read_text(encoding="utf-8")
    # opaque pure red: luma 0.299 * 255, no contrast, colourfulness 0.3 * |(255, 127.5)|
    assert "| val | 3 of 3 | 76.2 ± 0.0 | 0.0 ± 0.0 | 85.5 ± 0.0 | 100.0 ± 0.0 |" in text
    # white right half, black but transparent left half: only the white counts
    assert "| test | 2 of 2 | 255.0 ± 0.0 | 0.0 ± 0.0 | 0.0 ± 0.0 | 50.0 ± 0.0 |" in text


def test_types_are_skipped_without_a_catalog(tmp_path: Path) -> None:
    processed = make_processed(tmp_path / "processed", catalog=False)
    out = tmp_path / "report"
    text = write_report(processed, out).read_text(encoding="utf-8")
    assert "No catalog.json" in text
    assert not (out / "types.png").exists()
    assert (out / "samples.png").is_file()


def test_sample_grid_is_seeded(processed: Path, tmp_path: Path) -> None:
    def grid(seed: int, name: str) -> bytes:
        return (
            write_report(processed, tmp_path / name, sample_grid=2, seed=seed).parent
            / "samples.png"
        ).read_bytes()

    assert grid(0, "a") == grid(0, "b")
    assert grid(0, "a") != grid(1, "c")


def test_rerun_replaces_a_report_but_keeps_foreign_folders(processed: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    write_report(processed, out)
    (out / "old.png").write_bytes(b"stale")
    write_report(processed, out)
    assert not (out / "old.png").exists()  # replaced as a whole

    (out / "notes.txt").write_text("mine")
    with pytest.raises(PokedexError, match=r"notes\.txt"):
        write_report(processed, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_missing_folder_tells_to_prepare(tmp_path: Path) -> None:
    with pytest.raises(PokedexError, match=r"does not exist: run `pokedex data prepare`"):
        write_report(tmp_path / "nope", tmp_path / "report")
    assert not (tmp_path / "report").exists()


def test_missing_file_is_named(processed: Path, tmp_path: Path) -> None:
    (processed / "val_labels.npy").unlink()
    (processed / "summary.json").unlink()
    with pytest.raises(PokedexError, match=r"lacks summary\.json, val_labels\.npy: run `pokedex"):
        write_report(processed, tmp_path / "report")


def test_invalid_arrays_are_rejected(processed: Path, tmp_path: Path) -> None:
    np.save(processed / "test_labels.npy", np.array([0, 3], dtype=np.int16))  # 3 classes only
    with pytest.raises(PokedexError, match=r"test_labels\.npy does not hold one label in \[0, 3\)"):
        write_report(processed, tmp_path / "report")
    np.save(processed / "test_labels.npy", np.array([0, 1], dtype=np.int16))
    np.save(processed / "val_images.npy", np.zeros((3, SIZE, SIZE, 3), dtype=np.uint8))
    with pytest.raises(PokedexError, match=r"val_images\.npy holds uint8 \(3, 32, 32, 3\)"):
        write_report(processed, tmp_path / "report")
    (processed / "classes.json").write_text("{not json")
    with pytest.raises(PokedexError, match=r"cannot read .*classes\.json"):
        write_report(processed, tmp_path / "report")
