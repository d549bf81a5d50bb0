"""`pokedex data prepare` on synthetic data: fault quarantine (T4), class minimum, CLI errors."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import pokedex.data.prepare as prepare_module
from pokedex.cli import app
from pokedex.core.preprocess import PreprocessSpec, canvases_to_input, decode, image_to_input
from pokedex.data.prepare import prepare
from pokedex.errors import PokedexError
from tests.conftest import SPECIES, MakeRaw, SyntheticRaw, encode, sprite


def run(raw: SyntheticRaw, out: Path, **options: Any) -> dict[str, Any]:
    """Prepare in-process on one worker; the summary."""
    return prepare(raw.raw, out, workers=1, **options).summary


def manifest(out: Path) -> list[dict[str, str]]:
    with open(out / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_clean_set_is_packed_whole(make_raw: MakeRaw, tmp_path: Path) -> None:
    raw = make_raw()
    out = tmp_path / "processed"
    summary = run(raw, out)

    assert summary["images"] == summary["files"] == len(raw.files) == 96
    assert summary["species"] == 12
    assert summary["quarantined"] == []
    assert summary["metadata_missing_files"] == summary["metadata_unlisted_files"] == []
    # the synthetic sprites are all distinct: nothing may be merged as a duplicate
    assert summary["exact_duplicate_groups"] == summary["near_duplicate_groups"] == 0
    assert summary["with_alpha"] == len(raw.files) - len(raw.rgb_files)
    assert json.loads((out / "classes.json").read_text()) == list(SPECIES)
    assert sorted(r["path"] for r in manifest(out)) == sorted(raw.files)
    assert not (out / "quarantine").exists()
    assert json.loads((out / "summary.json").read_text())["data_version"] == summary["data_version"]


def test_packed_canvas_gives_the_serving_input(make_raw: MakeRaw, tmp_path: Path) -> None:
    """What training evaluates on (packed canvas) equals what serving computes from the file."""
    raw = make_raw(species=4, per_species=3)
    rotated = Image.new("RGB", (96, 48), (250, 20, 20))
    rotated.paste((20, 20, 250), (0, 0, 48, 48))
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    raw.add("abra/abra_exif.jpg", encode(rotated, "JPEG", exif=exif, quality=95))
    raw.add("ditto/ditto_wide.webp", encode(sprite(77, size=(128, 80))))
    out = tmp_path / "processed"
    run(raw, out)

    spec = PreprocessSpec(size=64, background=(10, 200, 30))
    classes = json.loads((out / "classes.json").read_text())
    rows = manifest(out)
    for split in ("train", "val", "test"):
        images = np.load(out / f"{split}_images.npy")
        labels = np.load(out / f"{split}_labels.npy")
        in_split = [r for r in rows if r["split"] == split]
        assert images.shape == (len(in_split), 128, 128, 4)
        assert images.dtype == np.uint8
        assert labels.dtype == np.int16
        for row, canvas, label in zip(in_split, images, labels, strict=True):
            served = image_to_input(decode(raw.path(row["path"]).read_bytes()), spec)
            assert np.array_equal(canvases_to_input(canvas[None], spec), served), row["path"]
            assert classes[label] == row["species"] == row["path"].split("/")[0]


# file name -> (content, pattern its quarantine reason must match); one fault of each kind
def _faults() -> dict[str, tuple[bytes, str]]:
    webp = encode(sprite(900))
    frames = [sprite(901 + k) for k in range(3)]
    i16 = Image.fromarray((np.arange(128 * 128).reshape(128, 128) * 3).astype(np.uint16))
    return {
        "abra/abra_cut.webp": (webp[: len(webp) // 2], r"cannot decode"),
        "bulbasaur/bulbasaur_cut.webp": (webp[:-1], r"cannot decode"),
        "charmander/charmander_empty.webp": (b"", r"empty file"),
        "ditto/ditto_text.webp": (b"<html>not found</html>\n", r"cannot decode"),
        "eevee/eevee_png.webp": (encode(sprite(902), "PNG"), r"content is PNG"),
        "gengar/gengar_anim.webp": (
            encode(frames[0], save_all=True, append_images=frames[1:]),
            r"animated \(3 frames\)",
        ),
        "ho-oh/ho-oh_cmyk.jpg": (encode(sprite(903).convert("CMYK"), "JPEG"), r"mode CMYK"),
        "mr-mime/mr-mime_16bit.png": (encode(i16, "PNG"), r"mode I;16"),
        "pikachu/pikachu_palette.png": (encode(sprite(904).convert("P"), "PNG"), r"mode P\b"),
        "porygon-z/porygon-z_huge.webp": (
            encode(Image.new("RGB", (2000, 2000), (9, 9, 9))),
            r"2000x2000 is over",
        ),
        "snorlax/snorlax_notes.txt": (b"caught at route 12\n", r"unsupported extension"),
    }


def test_injected_faults_are_all_quarantined_and_nothing_else(
    make_raw: MakeRaw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """T4, scaled down: recall of every injected fault, no false positive on clean files."""
    monkeypatch.setattr(prepare_module, "MAX_BAD_FRACTION", 1.0)  # the fault rate here is ~12%
    raw = make_raw()
    faults = _faults()
    for rel, (data, _) in faults.items():
        raw.add(rel, data)
    relabelled = "zubat/zubat_3.webp"
    rows = [
        raw.row(relabelled, "gengar") if r["image_path"].endswith(relabelled) else r
        for r in raw.read_rows()
    ]
    missing = ["abra/abra_404.webp", "zubat/zubat_99.webp"]
    raw.write_rows([*rows, *(raw.row(rel) for rel in missing)])
    unlisted = ["eevee/eevee_new.webp", "snorlax/snorlax_new.webp"]
    for k, rel in enumerate(unlisted):
        raw.add(rel, encode(sprite(950 + k)), listed=False)
    out = tmp_path / "processed"
    summary = run(raw, out)

    reasons = {q["path"]: q["reason"] for q in summary["quarantined"]}
    assert set(reasons) == {*faults, relabelled}
    for rel, (_, pattern) in faults.items():
        assert re.search(pattern, reasons[rel]), (rel, reasons[rel])
    assert reasons[relabelled] == "metadata label 'gengar' differs from folder 'zubat'"
    assert summary["metadata_missing_files"] == missing
    assert summary["metadata_unlisted_files"] == unlisted
    # unlisted files are good images labelled by their folder: reported, not quarantined
    kept = {r["path"] for r in manifest(out)}
    assert kept == {*raw.files, *unlisted} - {relabelled}
    assert summary["images"] == len(kept)
    # the quarantine holds byte-identical copies; the raw folder is left untouched
    copies = [p for p in (out / "quarantine").rglob("*") if p.is_file()]
    assert {p.relative_to(out / "quarantine").as_posix() for p in copies} == set(reasons)
    for q in summary["quarantined"]:
        original = raw.path(q["path"]).read_bytes()
        assert (out / "quarantine" / q["path"]).read_bytes() == original
        assert q["sha256"] == hashlib.sha256(original).hexdigest()


def test_more_bad_files_than_the_limit_fail_in_one_line(
    make_raw: MakeRaw, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = make_raw()
    raw.add("gengar/gengar_cut.webp", encode(sprite(900))[:100])  # 1 bad in 97 files = 1.03%
    out = tmp_path / "processed"
    with pytest.raises(PokedexError) as err:
        run(raw, out)
    message = str(err.value)
    assert "\n" not in message
    assert "1 of 97 images are unusable" in message
    assert "gengar/gengar_cut.webp: cannot decode" in message
    assert not out.exists()  # nothing half-written

    monkeypatch.setattr(prepare_module, "MAX_BAD_FRACTION", 1 / 97)  # exactly at the limit: ok
    assert [q["path"] for q in run(raw, out)["quarantined"]] == ["gengar/gengar_cut.webp"]


@pytest.mark.parametrize(("broken", "fails"), [(6, True), (5, False)])
def test_class_needs_three_usable_images(
    make_raw: MakeRaw,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    broken: int,
    fails: bool,
) -> None:
    monkeypatch.setattr(prepare_module, "MAX_BAD_FRACTION", 1.0)
    raw = make_raw(species=4)
    for i in range(1, broken + 1):
        raw.path(f"charmander/charmander_{i}.webp").write_bytes(b"")
    if not fails:
        summary = run(raw, tmp_path / "processed")
        assert summary["splits"] == {"train": 20, "val": 4, "test": 3}  # 3 images: no test one
        return
    expected = r"1 species have fewer than 3 usable images: charmander$"
    with pytest.raises(PokedexError, match=expected):
        run(raw, tmp_path / "processed")


def test_missing_or_flat_raw_folder_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(PokedexError, match="does not exist: run `pokedex data fetch` first"):
        prepare(tmp_path / "nothing", tmp_path / "out")
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.webp").write_bytes(encode(sprite(1)))
    with pytest.raises(PokedexError, match="no folder of species sub-folders"):
        prepare(flat, tmp_path / "out")


def test_cli_missing_raw_folder_prints_one_error_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POKEDEX_METADATA", raising=False)
    raw, out = tmp_path / "missing", tmp_path / "out"
    result = CliRunner().invoke(app, ["data", "prepare", "--raw", str(raw), "--out", str(out)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {raw} does not exist: run `pokedex data fetch` first"
    ]
    assert "Traceback" not in result.output
    assert not out.exists()


def test_rerun_replaces_the_output_folder(make_raw: MakeRaw, tmp_path: Path) -> None:
    raw = make_raw(species=3, per_species=4)
    out = tmp_path / "processed"
    first = run(raw, out)
    (out / "stale.txt").write_text("from an older run")
    second = run(raw, out)
    assert not (out / "stale.txt").exists()
    assert second["data_version"] == first["data_version"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["processed", "raw"]  # no temp left
