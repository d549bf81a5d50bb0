"""core/bundle.py: the one reader of a bundle's species catalog."""

from __future__ import annotations

from pathlib import Path

from pokedex.core.bundle import CATALOG_FILE, Bundle, read_catalog
from pokedex.dex.catalog import STATS as STAT_NAMES
from pokedex.dex.catalog import Species, save_catalog

STATS = dict(zip(STAT_NAMES, (78, 84, 78, 109, 85, 100), strict=True))


def _bundle(path: Path) -> Bundle:
    path.mkdir()
    return Bundle(path=path, meta={}, classes=["charizard"])


def test_a_bundle_without_catalog_reads_as_empty(tmp_path: Path) -> None:
    assert read_catalog(_bundle(tmp_path / "bundle")) == {}


def test_the_catalog_is_read_back_as_written(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "bundle")
    charizard = Species(
        name="charizard",
        display_name="Charizard",
        national_number=6,
        pokeapi_id=6,
        types=("fire", "flying"),
        stats=STATS,
        generation=1,
    )
    save_catalog({"charizard": charizard}, bundle.path / CATALOG_FILE)

    catalog = read_catalog(bundle)

    assert list(catalog) == ["charizard"]
    assert catalog["charizard"].types == ("fire", "flying")
