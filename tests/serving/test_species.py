"""The species answer's dex facts, old catalogs without them, and the species picture route."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pokedex.data.gallery import build_gallery
from pokedex.dex.catalog import load_catalog
from pokedex.serving.app import create_app
from pokedex.serving.settings import Settings
from tests.dex.facts import add_charizard_facts
from tests.serving.conftest import CLASSES, MakeSettings

ROOT = Path(__file__).resolve().parents[2]
# the test chart on fire/flying: x4 rock; x2 water, electric, ice; x1/2 fire; x0 ground
CHARIZARD_MULTIPLIERS = [
    {"type": "rock", "multiplier": 4.0},
    {"type": "water", "multiplier": 2.0},
    {"type": "electric", "multiplier": 2.0},
    {"type": "ice", "multiplier": 2.0},
    {"type": "fire", "multiplier": 0.5},
    {"type": "ground", "multiplier": 0.0},
]


def _client(settings: Settings) -> TestClient:
    """A client over a fully started app; use it as a context manager."""
    return TestClient(create_app(settings))


@pytest.fixture
def dex_bundle(model_root: Path, tmp_path: Path) -> Path:
    """Bundle v1 whose catalog carries size, abilities and an evolution line for charizard."""
    return add_charizard_facts(shutil.copytree(model_root / "v1", tmp_path / "bundle"))


@pytest.fixture
def gallery(tmp_path: Path) -> Path:
    """A gallery built by `build_gallery` from a tiny processed folder (two images a species)."""
    processed = tmp_path / "processed"
    processed.mkdir()
    (processed / "classes.json").write_text(json.dumps(CLASSES))
    rows = ["path,sha256,species,label,split,width,height,mode,has_alpha"]
    images = np.zeros((2 * len(CLASSES), 128, 128, 4), dtype=np.uint8)  # (N, 128, 128, 4)
    for label, name in enumerate(CLASSES):
        for k in range(2):
            rows.append(f"{name}/{name}_{k}.png,x,{name},{label},train,128,128,RGBA,1")
            images[2 * label + k, 32:96, 32:96] = (40 * label, 200, 30 * k, 255)
    (processed / "manifest.csv").write_text("\n".join(rows) + "\n")
    np.save(processed / "train_images.npy", images)
    return build_gallery(processed)


def test_species_answer_carries_the_dex_facts(
    make_settings: MakeSettings, dex_bundle: Path
) -> None:
    with _client(make_settings(model=str(dex_bundle))) as client:
        body = client.get("/v1/species/charizard").json()
    assert (body["height_m"], body["weight_kg"]) == (1.7, 90.5)
    assert body["abilities"] == [
        {"name": "Blaze", "hidden": False},
        {"name": "Solar Power", "hidden": True},
    ]
    assert [(s["name"], s["evolves_from"], s["how"]) for s in body["evolution"]] == [
        ("charmander", None, None),
        ("charmeleon", "charmander", "level 16"),
        ("charizard", "charmeleon", "level 36"),
    ]
    assert body["multipliers"] == CHARIZARD_MULTIPLIERS
    assert body["weaknesses"] == CHARIZARD_MULTIPLIERS[:4]  # the old field is unchanged


def test_an_old_catalog_answers_without_the_new_facts(
    make_settings: MakeSettings, model_root: Path, tmp_path: Path
) -> None:
    bundle = shutil.copytree(model_root / "v1", tmp_path / "old")
    data = json.loads((bundle / "catalog.json").read_text())
    for entry in data["species"].values():
        for field in ("height_m", "weight_kg", "abilities", "evolution"):
            entry.pop(field)
    (bundle / "catalog.json").write_text(json.dumps({"version": 1, "species": data["species"]}))
    with _client(make_settings(model=str(bundle))) as client:
        body = client.get("/v1/species/charizard").json()
    facts = [body[k] for k in ("height_m", "weight_kg", "abilities", "evolution")]
    assert facts == [None, None, [], []]
    assert body["multipliers"] == CHARIZARD_MULTIPLIERS  # from the bundle's type chart


def test_the_committed_release_catalog_still_loads() -> None:
    path = ROOT / "models" / "release" / "catalog.json"
    if not path.is_file():
        pytest.skip("no release bundle in this checkout")
    catalog = load_catalog(path)
    assert len(catalog) == 1000
    assert all(s.types for s in catalog.values())


def test_species_image_is_a_cacheable_webp(make_settings: MakeSettings, gallery: Path) -> None:
    with _client(make_settings(gallery=str(gallery))) as client:
        response = client.get("/v1/species/pikachu/image")
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/webp"
        assert response.headers["cache-control"] == "public, max-age=86400"
        image = Image.open(io.BytesIO(response.content))
        assert (image.format, image.size, image.mode) == ("WEBP", (96, 96), "RGBA")
        etag = response.headers["etag"]
        again = client.get("/v1/species/pikachu/image", headers={"If-None-Match": etag})
        assert (again.status_code, again.content) == (304, b"")
        # names fold like the species route's: "Mr. Mime" is mr-mime
        assert client.get("/v1/species/Mr. Mime/image").content != response.content
        assert client.get("/v1/species/Mr. Mime/image").status_code == 200


def test_species_image_404s_name_the_reason(
    make_settings: MakeSettings, gallery: Path, tmp_path: Path
) -> None:
    with _client(make_settings(gallery=str(gallery))) as client:
        response = client.get("/v1/species/missingno/image")
        assert response.status_code == 404
        assert response.json() == {"detail": "no picture of 'missingno' in the species gallery"}
    for folder in (str(tmp_path / "nowhere"), ""):
        with _client(make_settings(gallery=folder)) as client:
            response = client.get("/v1/species/pikachu/image")
            assert response.status_code == 404
            assert "pokedex data gallery" in response.json()["detail"]


@pytest.mark.parametrize(
    "path",
    [
        "/v1/species/manifest.json/image",
        "/v1/species/pikachu.webp/image",
        "/v1/species/../secret.txt/image",
        "/v1/species/..%2Fsecret.txt/image",
        "/v1/species/%2e%2e%2f%2e%2e%2fsecret.txt/image",
        "/v1/species/..%5Csecret.txt/image",
        "/v1/species/%2e%2e/image",
    ],
)
def test_species_image_never_serves_another_file(
    make_settings: MakeSettings, gallery: Path, path: str
) -> None:
    (gallery.parent / "secret.txt").write_text("not for you")
    with _client(make_settings(gallery=str(gallery))) as client:
        response = client.get(path)
    assert response.status_code == 404
    assert b"not for you" not in response.content
    assert b'"version"' not in response.content  # nor the manifest


def test_a_manifest_naming_a_path_is_refused(make_settings: MakeSettings, gallery: Path) -> None:
    (gallery.parent / "secret.webp").write_bytes(b"not for you")
    manifest = json.loads((gallery / "manifest.json").read_text())
    manifest["species"]["pikachu"]["file"] = "../secret.webp"
    (gallery / "manifest.json").write_text(json.dumps(manifest))
    with _client(make_settings(gallery=str(gallery))) as client:
        response = client.get("/v1/species/pikachu/image")
    assert response.status_code == 500
    assert response.json() == {"detail": "the species gallery is unreadable: rebuild it"}
