"""The training data module's species subsets: labels follow the kept species, by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pokedex.core.preprocess import PreprocessSpec
from pokedex.data.datamodule import PackedDataModule
from pokedex.dex.catalog import STATS, Species, save_catalog
from pokedex.errors import PokedexError

# packed (alphabetical) order; generation of each
SPECIES = {"abra": 1, "bidoof": 4, "chikorita": 2, "ditto": 1, "eevee": 1, "froakie": 6}


@pytest.fixture
def processed(tmp_path: Path) -> Path:
    """Two images per species and split; each image's red channel is its packed label."""
    names = list(SPECIES)
    (tmp_path / "classes.json").write_text(json.dumps(names))
    labels = np.repeat(np.arange(len(names)), 2).astype(np.int16)
    images = np.zeros((len(labels), 128, 128, 4), dtype=np.uint8)
    images[..., 0] = labels[:, None, None]
    for split in ("train", "val", "test"):
        np.save(tmp_path / f"{split}_images.npy", images)
        np.save(tmp_path / f"{split}_labels.npy", labels)
    catalog = {
        name: Species(name=name, display_name=name.title(), national_number=i + 1,
                      pokeapi_id=i + 1, types=("normal",), stats=dict.fromkeys(STATS, 50),
                      generation=generation)
        for i, (name, generation) in enumerate(SPECIES.items())
    }  # fmt: skip
    save_catalog(catalog, tmp_path / "catalog.json")
    return tmp_path


def _module(processed: Path, **kwargs: object) -> PackedDataModule:
    dm = PackedDataModule(processed, PreprocessSpec(size=64), **kwargs)  # type: ignore[arg-type]
    dm.setup("fit")
    return dm


def test_generations_keep_only_their_species_and_relabel_them(processed: Path) -> None:
    dm = _module(processed, generations=[1])
    assert dm.classes == ["abra", "ditto", "eevee"]
    data = dm.data["train"]
    packed = data.images[:, 0, 0, 0].astype(int)  # the label each image was packed with
    assert [dm.classes[i] for i in data.labels] == [list(SPECIES)[p] for p in packed]
    assert sorted(set(data.labels.tolist())) == [0, 1, 2]
    assert dm.eval_inputs["test"][1].tolist() == [0, 0, 1, 1, 2, 2]


def test_max_classes_applies_after_the_generation_filter(processed: Path) -> None:
    assert _module(processed, generations=[1, 2], max_classes=2).classes == ["abra", "chikorita"]
    assert _module(processed, max_classes=2).classes == ["abra", "bidoof"]


def test_an_empty_or_uncatalogued_subset_is_a_clear_error(processed: Path) -> None:
    with pytest.raises(PokedexError, match=r"no species of generations \[9\]"):
        _module(processed, generations=[9])
    (processed / "catalog.json").unlink()
    with pytest.raises(PokedexError, match="needs the species catalog"):
        _module(processed, generations=[1])
