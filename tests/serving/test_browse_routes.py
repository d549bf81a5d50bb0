"""What the UI browses: species search, the model's confusions and its stored embedding map."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from pokedex.core.bundle import EMBEDDINGS_FILE
from pokedex.dex.catalog import Species
from pokedex.errors import PokedexError
from pokedex.serving.app import create_app
from pokedex.serving.model import load_model
from tests.serving.conftest import SPECIES, MakeSettings

PAIRS = [
    {"a": "gengar", "b": "mr-mime", "a_as_b": 3, "b_as_a": 1, "total": 4},
    {"a": "bulbasaur", "b": "pikachu", "a_as_b": 0, "b_as_a": 2, "total": 2},
]


def _bundle(src: Path, dst: Path, embeddings: object = None, **meta: object) -> Path:
    shutil.copytree(src, dst)
    data = json.loads((dst / "bundle.json").read_text())
    (dst / "bundle.json").write_text(json.dumps({**data, **meta}))
    if embeddings is not None:
        (dst / EMBEDDINGS_FILE).write_text(json.dumps(embeddings))
    return dst


def _points(n: int = 6) -> dict[str, object]:
    names = [s[0] for s in SPECIES][:n]
    return {
        "split": "test",
        "x": [float(i) for i in range(n)],
        "y": [float(-i) for i in range(n)],
        "species": names,
        "predicted": names[::-1],
        "types": [list(s[3]) for s in SPECIES][:n],
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("char", ["charizard"]),
        ("CHARIZARD", ["charizard"]),
        ("Mr. Mime", ["mr-mime"]),
        ("mime", ["mr-mime"]),
        ("25", ["pikachu"]),
        ("#025", []),  # numbers match whole: "025" is not 25
        ("ge", ["geodude", "gengar"]),
        ("zzz", []),
    ],
)
def test_search_by_name_or_number(client: TestClient, query: str, expected: list[str]) -> None:
    response = client.get("/v1/species", params={"q": query})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [item["name"] for item in body["items"]] == expected
    assert body["total"] == len(expected)


def test_empty_query_lists_everything_in_dex_order_up_to_the_limit(client: TestClient) -> None:
    everything = client.get("/v1/species", params={"limit": 100}).json()
    numbers = [item["national_number"] for item in everything["items"]]
    assert numbers == sorted(s[2] for s in SPECIES)
    assert everything["items"][1] == {
        "name": "charizard",
        "display_name": "Charizard",
        "national_number": 6,
        "types": ["fire", "flying"],
    }
    page = client.get("/v1/species", params={"limit": 2}).json()
    assert page["total"] == len(SPECIES)
    assert page["items"] == everything["items"][:2]


@pytest.mark.parametrize("params", [{"q": "x" * 101}, {"limit": 0}, {"limit": 2001}])
def test_search_rejects_bad_parameters(client: TestClient, params: dict[str, object]) -> None:
    response = client.get("/v1/species", params=params)
    assert response.status_code == 422
    assert "detail" in response.json()


def test_name_prefixes_rank_before_other_matches(model_root: Path) -> None:
    model = load_model(str(model_root / "v1"))
    stats = dict.fromkeys(("hp", "attack", "defense", "special-attack"), 50)
    stats |= {"special-defense": 50, "speed": 50}

    def species(name: str, number: int) -> Species:
        return Species(
            name=name,
            display_name=name.title(),
            national_number=number,
            pokeapi_id=number,
            types=("normal",),
            stats=stats,
            generation=1,
        )

    catalog = {
        s.name: s for s in (species("ekans", 23), species("seel", 86), species("eevee", 133))
    }
    total, hits = dataclasses.replace(model, catalog=catalog).search("e", limit=2)
    assert total == 3
    assert [s.name for s in hits] == ["ekans", "eevee"]  # seel (86) contains "e" but ranks last


def test_model_info_carries_background_and_confusions(
    make_settings: MakeSettings, model_root: Path, tmp_path: Path
) -> None:
    bundle = _bundle(model_root / "v1", tmp_path / "b", confused_pairs=PAIRS)
    with TestClient(create_app(make_settings(model=str(bundle)))) as client:
        body = client.get("/v1/model").json()
    assert body["background"] == [255, 255, 255]
    assert body["confused_pairs"] == PAIRS


def test_model_info_serves_the_open_set_error_rates(
    make_settings: MakeSettings, model_root: Path, tmp_path: Path
) -> None:
    rule = {"score": "msp", "threshold": 0.4, "false_accept": 0.017, "false_reject": 0.038}
    bundle = _bundle(model_root / "v1", tmp_path / "b", open_set=rule)
    with TestClient(create_app(make_settings(model=str(bundle)))) as client:
        served = client.get("/v1/model").json()["open_set"]
    assert served["false_accept"] == 0.017
    assert served["false_reject"] == 0.038


def test_model_info_open_set_rates_are_absent_from_older_bundles(
    make_settings: MakeSettings, model_root: Path, tmp_path: Path
) -> None:
    bundle = _bundle(model_root / "v1", tmp_path / "b", open_set={"score": "msp", "threshold": 0.4})
    with TestClient(create_app(make_settings(model=str(bundle)))) as client:
        served = client.get("/v1/model").json()["open_set"]
    assert served["false_accept"] is None
    assert served["false_reject"] is None


def test_model_info_without_confusions_is_an_empty_list(client: TestClient) -> None:
    assert client.get("/v1/model").json()["confused_pairs"] == []


def test_bad_confusions_fail_the_load(model_root: Path, tmp_path: Path) -> None:
    bundle = _bundle(model_root / "v1", tmp_path / "b", confused_pairs=[{"a": "gengar"}])
    with pytest.raises(PokedexError, match="confused_pairs"):
        load_model(str(bundle))


def test_embedding_map_is_served_from_the_bundle(
    make_settings: MakeSettings, model_root: Path, tmp_path: Path
) -> None:
    bundle = _bundle(model_root / "v1", tmp_path / "b", embeddings=_points())
    with TestClient(create_app(make_settings(model=str(bundle)))) as client:
        response = client.get("/v1/model/embeddings")
    assert response.status_code == 200, response.text
    assert response.json() == _points()


def test_missing_embedding_map_is_a_404_that_says_how_to_make_one(client: TestClient) -> None:
    response = client.get("/v1/model/embeddings")
    assert response.status_code == 404
    assert "pokedex evaluate --embeddings" in response.json()["detail"]


@pytest.mark.parametrize(
    "broken",
    [
        {**_points(), "x": [0.0]},  # ragged columns
        {"split": "test", "x": []},  # missing columns
        ["not", "a", "map"],
    ],
)
def test_broken_embedding_map_fails_the_load(
    model_root: Path, tmp_path: Path, broken: object
) -> None:
    bundle = _bundle(model_root / "v1", tmp_path / "b", embeddings=broken)
    with pytest.raises(PokedexError, match=EMBEDDINGS_FILE):
        load_model(str(bundle))
