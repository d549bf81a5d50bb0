"""`pokedex predict`: the JSON-lines contract and clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pokedex.cli import app
from pokedex.core.bundle import read_bundle
from tests.conftest import encode, sprite

runner = CliRunner()


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.png").write_bytes(encode(sprite(1), "PNG"))
    (folder / "nested" / "b.webp").write_bytes(encode(sprite(2)))
    (folder / "notes.txt").write_text("not an image, and not listed")
    return folder


def test_json_lines_follow_the_contract(smoke_bundle: Path, images: Path) -> None:
    result = runner.invoke(
        app, ["predict", str(images), "--model", str(smoke_bundle), "--json", "--top-k", "3"]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    classes = read_bundle(smoke_bundle).classes
    assert [Path(r["path"]).name for r in records] == ["a.png", "b.webp"]
    for r in records:
        assert len(r["species"]) == 3
        probs = [s["probability"] for s in r["species"]]
        assert probs == sorted(probs, reverse=True)
        assert 0 < sum(probs) <= 1.0 + 1e-6
        assert all(s["name"] in classes for s in r["species"])
        assert isinstance(r["types"], list)


def test_model_from_the_environment(
    smoke_bundle: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POKEDEX_MODEL", str(smoke_bundle))
    result = runner.invoke(app, ["predict", str(images / "a.png")])
    assert result.exit_code == 0
    assert result.stdout.startswith(str(images / "a.png") + ": ")


def test_a_corrupt_image_is_reported_and_the_rest_still_predicted(
    smoke_bundle: Path, images: Path
) -> None:
    (images / "broken.png").write_bytes(encode(sprite(3), "PNG")[:200])
    result = runner.invoke(app, ["predict", str(images), "--model", str(smoke_bundle), "--json"])
    assert result.exit_code == 3
    records = {Path(r["path"]).name: r for r in map(json.loads, result.stdout.splitlines())}
    assert "error" in records["broken.png"]
    assert "species" in records["a.png"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.png"], "no such file"),
        (["--top-k", "0"], "--top-k"),
        (["--model", "nowhere"], "not found"),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(
    smoke_bundle: Path, images: Path, args: list[str], message: str
) -> None:
    base = ["predict", str(images / "a.png"), "--model", str(smoke_bundle)]
    result = runner.invoke(
        app,
        [*base, *args]
        if args[0].startswith("--")
        else ["predict", *args, "--model", str(smoke_bundle)],
    )
    assert result.exit_code != 0
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1
