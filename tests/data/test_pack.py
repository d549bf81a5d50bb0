"""`pokedex data pack` / `unpack`: a checksummed, versioned, lossy-or-lossless copy that travels."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pokedex.data.pack import pack, pack_provenance, read_manifest, unpack
from pokedex.data.prepare import prepare
from pokedex.errors import PokedexError
from tests.conftest import write_raw

POKEDEX = str(Path(sys.executable).with_name("pokedex"))


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pack-data")
    write_raw(root / "raw", per_species=6)
    return prepare(root / "raw", root / "processed", workers=1).out


def test_lossless_at_full_size_restores_every_canvas_exactly(
    processed: Path, tmp_path: Path
) -> None:
    manifest = pack(processed, tmp_path / "pack", size=128, quality=100, workers=1)
    assert manifest["lossless"]
    unpack(tmp_path / "pack", tmp_path / "restored", workers=1)
    for split in ("train", "val", "test"):
        a = np.load(processed / f"{split}_images.npy")
        b = np.load(tmp_path / "restored" / f"{split}_images.npy")
        # WebP lossless with exact=True keeps RGB under transparent pixels too
        assert np.array_equal(a, b), split
        assert np.array_equal(
            np.load(processed / f"{split}_labels.npy"),
            np.load(tmp_path / "restored" / f"{split}_labels.npy"),
        )
    assert (tmp_path / "restored" / "classes.json").read_text() == (
        processed / "classes.json"
    ).read_text()


def test_a_lossy_small_pack_is_smaller_close_and_recorded_as_such(
    processed: Path, tmp_path: Path
) -> None:
    manifest = pack(processed, tmp_path / "pack", size=64, quality=85, workers=1)
    raw = sum((processed / f"{s}_images.npy").stat().st_size for s in ("train", "val", "test"))
    assert manifest["bytes"]["total"] < raw / 10
    unpack(tmp_path / "pack", tmp_path / "restored", workers=1)
    a = np.load(processed / "test_images.npy").astype(np.int16)
    b = np.load(tmp_path / "restored" / "test_images.npy").astype(np.int16)
    assert a.shape == b.shape
    opaque = a[..., 3] == 255
    assert np.abs(a[..., :3] - b[..., :3])[opaque].mean() < 20  # the same sprites, softened
    provenance = pack_provenance(tmp_path / "restored")
    assert provenance == {"data_pack": manifest["pack_id"], "data_pack_lossy": "64 px WebP q85"}
    assert pack_provenance(processed) == {}
    summary = json.loads((tmp_path / "restored" / "summary.json").read_text())
    assert summary["data_version"] == manifest["source_data_version"]


def test_a_lossy_alpha_saves_bytes_keeps_the_sprites_and_is_recorded(
    processed: Path, tmp_path: Path
) -> None:
    exact = pack(processed, tmp_path / "exact", size=96, quality=70, workers=1)
    lossy = pack(processed, tmp_path / "lossy", size=96, quality=70, alpha_quality=30, workers=1)
    assert lossy["bytes"]["total"] < exact["bytes"]["total"]
    assert lossy["alpha_quality"] == 30
    unpack(tmp_path / "exact", tmp_path / "a", workers=1)
    unpack(tmp_path / "lossy", tmp_path / "b", workers=1)
    a = np.load(tmp_path / "a" / "test_images.npy").astype(np.int16)
    b = np.load(tmp_path / "b" / "test_images.npy").astype(np.int16)
    assert 0 < np.abs(a[..., 3] - b[..., 3]).mean() < 8  # the alpha changed, the shapes did not
    assert pack_provenance(tmp_path / "b")["data_pack_lossy"] == "96 px WebP q70, alpha q30"
    assert pack_provenance(tmp_path / "a")["data_pack_lossy"] == "96 px WebP q70"


def test_the_same_data_packs_to_the_same_id(processed: Path, tmp_path: Path) -> None:
    a = pack(processed, tmp_path / "a", size=32, quality=70, workers=1)
    b = pack(processed, tmp_path / "b", size=32, quality=70, workers=2)
    c = pack(processed, tmp_path / "c", size=32, quality=71, workers=1)
    assert a["pack_id"] == b["pack_id"] != c["pack_id"]


def test_a_damaged_pack_is_refused_and_nothing_is_written(processed: Path, tmp_path: Path) -> None:
    pack(processed, tmp_path / "pack", size=32, quality=70, workers=1)
    blob = tmp_path / "pack" / "train.webp.bin"
    blob.write_bytes(blob.read_bytes()[:-3])
    with pytest.raises(PokedexError, match="checksum mismatch"):
        unpack(tmp_path / "pack", tmp_path / "restored", workers=1)
    assert not (tmp_path / "restored").exists()
    with pytest.raises(PokedexError, match=r"pack\.json not found"):
        read_manifest(tmp_path)


def test_the_photo_tiles_travel_with_the_pack(processed: Path, tmp_path: Path) -> None:
    from PIL import Image

    from pokedex.data.backgrounds import build_backgrounds, load_tiles

    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (80, 120, 3), dtype=np.uint8)).save(photo)
    build_backgrounds(tmp_path / "bg", extra=[photo], tiles_per_image=5)
    manifest = pack(processed, tmp_path / "pack", backgrounds=tmp_path / "bg", workers=1)
    assert manifest["backgrounds"]["tiles"] >= 5
    unpack(tmp_path / "pack", tmp_path / "restored", backgrounds=tmp_path / "bg2", workers=1)
    assert load_tiles(tmp_path / "bg2").shape == load_tiles(tmp_path / "bg").shape


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "4"], "--size 4"),
        (["--quality", "0"], "--quality 0"),
        (["--alpha-quality", "101"], "--alpha-quality 101: choose between 0 and 100"),
        (["--quality", "100", "--alpha-quality", "50"], "a lossless pack keeps its alpha exact"),
        (["--processed", "nowhere"], "pokedex data prepare"),
    ],
)
def test_bad_options_are_one_line_and_exit_nonzero(
    processed: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    cmd = [POKEDEX, "data", "pack", "--processed", str(processed), "--out", str(tmp_path / "p")]
    done = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
