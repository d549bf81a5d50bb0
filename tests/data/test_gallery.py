"""The species gallery: one typical picture per species, built at prepare time or on demand."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from pokedex.cli import app
from pokedex.data.gallery import build_gallery, read_gallery
from pokedex.data.prepare import prepare
from pokedex.errors import PokedexError
from tests.conftest import MakeRaw


def _processed(folder: Path, species: dict[str, list[tuple[int, int, int]]]) -> Path:
    """A processed folder by hand: per species, squares of the given colours, split over two
    arrays so that rows of the val array must be found by their rank within the split."""
    folder.mkdir()
    (folder / "classes.json").write_text(json.dumps(sorted(species)))
    rows, arrays = [], {"train": [], "val": []}
    for label, name in enumerate(sorted(species)):
        for k, colour in enumerate(species[name]):
            split = "val" if k % 2 else "train"
            canvas = np.zeros((128, 128, 4), dtype=np.uint8)
            canvas[16:112, 16:112] = (*colour, 255)
            arrays[split].append(canvas)
            rows.append([f"{name}/{k}.png", "x", name, label, split, 128, 128, "RGBA", 1])
    with open(folder / "manifest.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            ["path", "sha256", "species", "label", "split", "width", "height", "mode", "has_alpha"]
        )
        writer.writerows(rows)
    for split, canvases in arrays.items():
        if canvases:
            np.save(folder / f"{split}_images.npy", np.stack(canvases))  # (N, 128, 128, 4)
    return folder


def test_prepare_builds_one_picture_per_species(make_raw: MakeRaw, tmp_path: Path) -> None:
    raw = make_raw(species=4, per_species=4)
    out = prepare(raw.raw, tmp_path / "processed", workers=1).out
    gallery = read_gallery(out / "gallery")
    classes = json.loads((out / "classes.json").read_text())
    assert sorted(gallery) == classes
    for name, entry in gallery.items():
        assert entry.source.startswith(f"{name}/")  # a picture of that species
        with Image.open(out / "gallery" / entry.file) as image:
            assert (image.format, image.size) == ("WEBP", (96, 96))
            assert image.mode in ("RGB", "RGBA")  # an opaque picture is stored without alpha


def test_the_most_typical_picture_is_chosen(tmp_path: Path) -> None:
    # the odd one out comes first, and is in the train split: neither may decide the pick
    red, orange, blue = (250, 20, 20), (240, 60, 20), (20, 20, 250)
    processed = _processed(
        tmp_path / "processed",
        {"flareon": [blue, red, orange, red, red], "vaporeon": [red, blue, blue]},
    )
    gallery = read_gallery(build_gallery(processed, size=32))
    assert gallery["flareon"].source in ("flareon/1.png", "flareon/3.png", "flareon/4.png")
    assert gallery["vaporeon"].source == "vaporeon/1.png"  # the first of two equals: a val row
    with Image.open(processed / "gallery" / "vaporeon.webp") as image:
        assert image.size == (32, 32)
        r, _, b, a = image.getpixel((16, 16))
        assert b > 200 > r  # blue, from the val array row that belongs to vaporeon
        assert a == 255


def test_cli_builds_the_gallery_and_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    processed = _processed(tmp_path / "processed", {"ditto": [(200, 100, 200)]})
    result = CliRunner().invoke(app, ["data", "gallery", "--processed", str(processed)])
    assert result.exit_code == 0, result.output
    assert read_gallery(processed / "gallery")["ditto"].file == "ditto.webp"
    result = CliRunner().invoke(app, ["data", "gallery", "--processed", str(tmp_path / "none")])
    assert result.exit_code != 0
    assert "run `pokedex data prepare` first" in result.output
    assert "Traceback" not in result.output


def test_read_gallery_refuses_paths_and_other_versions(tmp_path: Path) -> None:
    processed = _processed(tmp_path / "processed", {"ditto": [(200, 100, 200)]})
    gallery = build_gallery(processed)
    manifest = json.loads((gallery / "manifest.json").read_text())
    for unsafe in ("../classes.json", "/etc/passwd", ".hidden.webp", "sub/ditto.webp", "x.png"):
        manifest["species"]["ditto"]["file"] = unsafe
        (gallery / "manifest.json").write_text(json.dumps(manifest))
        with pytest.raises(PokedexError, match="unsafe file"):
            read_gallery(gallery)
    (gallery / "manifest.json").write_text(json.dumps({**manifest, "version": 9}))
    with pytest.raises(PokedexError, match="version 1 gallery"):
        read_gallery(gallery)
    with pytest.raises(PokedexError, match="no species gallery"):
        read_gallery(tmp_path)
