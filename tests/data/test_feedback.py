"""The feedback round trip on a tiny dataset: verdicts in the store -> `pokedex data feedback
export` -> `pokedex data prepare --feedback` -> tagged train/val rows and the data report."""

from __future__ import annotations

import csv
import hashlib
import json
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import ImageDraw
from typer.testing import CliRunner

from pokedex.cli import app
from pokedex.data.dataset_report import write_report
from pokedex.data.feedback import take_feedback
from pokedex.data.prepare import prepare
from pokedex.store import migrate
from pokedex.store.feedback import FeedbackStore
from pokedex.store.ids import new_prediction_id
from pokedex.store.images import KEPT_KEY, KeptImage, clean_image
from pokedex.store.predlog import PredictionLog
from tests.conftest import SPECIES, MakeRaw, SyntheticRaw, encode, sprite

runner = CliRunner()
Loop = tuple[SyntheticRaw, str, dict[str, Any]]


def _kept(data: bytes, fmt: str = "WEBP", side: int = 512) -> KeptImage:
    return clean_image(data, fmt, max_side=side, max_bytes=10**6, max_pixels=10**7)


def _photo(seed: int, side: int = 512) -> KeptImage:
    return _kept(encode(sprite(seed, rgb=True), "PNG"), "PNG", side)


def _predictions(url: str, items: list[tuple[str, KeptImage | None]]) -> list[Any]:
    """Log one prediction per (top1, kept image); their ids."""
    log = PredictionLog(url, schema=migrate.upgrade)
    log.start()
    ids, done = [], []
    for top1, image in items:
        ids.append(new_prediction_id())
        done.append(Future())
        row = {
            "id": ids[-1], "request_id": "r", "ts": datetime.now(UTC), "model_name": "pokedex",
            "model_version": "v9", "variant": "fp32", "top1": top1, "probability": 0.5,
            "known": True, "latency_ms": 1.0, "image": None, KEPT_KEY: image,
        }  # fmt: skip
        log.record(row, done[-1])
    assert all(f.result(timeout=60) for f in done)
    log.close()
    return ids


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture
def loop(make_raw: MakeRaw, tmp_path: Path) -> tuple[SyntheticRaw, str, dict[str, Any]]:
    """A tiny raw dataset and a store holding every kind of verdict, reviewed."""
    raw = make_raw(species=6, per_species=6)  # abra, bulbasaur, charmander, ditto, eevee, gengar
    url = f"sqlite:///{tmp_path / 'predictions.db'}"
    shipped = raw.path("abra/abra_1.webp").read_bytes()
    edited = sprite(901, rgb=True)
    ImageDraw.Draw(edited).rectangle((0, 0, 3, 3), fill=(0, 0, 0))  # the same photo, marked
    items = {
        "eevee photo": ("abra", _photo(900)),  # the model said abra; users say eevee
        "ditto photo": ("ditto", _photo(901)),
        "ditto again": ("ditto", _kept(encode(edited, "PNG"), "PNG")),  # a near copy
        "ditto twice": ("ditto", _photo(901)),  # same bytes as "ditto photo"
        "gengar photo": ("gengar", _photo(902)),
        "bulbasaur photo": ("bulbasaur", _photo(903)),
        "shipped abra": ("abra", _kept(shipped)),  # a shipped image, said to be charmander
        "conflict a": ("abra", _photo(904)),
        "conflict b": ("abra", _photo(904)),
        "not a pokemon": ("zubat", _photo(905)),
        "unknown species": ("abra", _photo(906)),
        "pending": ("abra", _photo(907)),
        "rejected": ("abra", _photo(908)),
        "no image": ("abra", None),
    }
    ids = dict(zip(items, _predictions(url, list(items.values())), strict=True))
    verdicts = {
        "eevee photo": ("species", "eevee"),
        "ditto photo": ("correct", None),
        "ditto again": ("correct", None),
        "ditto twice": ("correct", None),
        "gengar photo": ("correct", None),
        "bulbasaur photo": ("correct", None),
        "shipped abra": ("species", "charmander"),
        "conflict a": ("species", "ditto"),
        "conflict b": ("species", "eevee"),
        "not a pokemon": ("not_pokemon", None),
        "unknown species": ("species", "raichu"),  # a real species, not in this dataset
        "pending": ("correct", None),
        "rejected": ("correct", None),
        "no image": ("correct", None),
    }
    store = FeedbackStore(url)
    for name, (verdict, species) in verdicts.items():
        store.record(ids[name], verdict, species)
        if name != "pending":
            store.review(ids[name], "rejected" if name == "rejected" else "accepted")
    store.close()
    return raw, url, ids


def test_export_then_prepare_round_trip(loop: Loop, tmp_path: Path) -> None:
    raw, url, ids = loop
    out = tmp_path / "feedback"
    result = runner.invoke(app, ["data", "feedback", "export", "--db", url, "--out", str(out)])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output.strip().splitlines()[-1])
    # 11 accepted verdicts with an image; "ditto twice" shares its file with "ditto photo";
    # the two conflicting ones are quarantined
    assert printed["verdicts"] == 11
    assert printed["quarantined"] == 1
    assert printed["not_pokemon"] == 1
    rows = _rows(out / "manifest.csv")
    assert len(rows) == 8
    by_pid = {r["prediction_id"]: r for r in rows}
    eevee = by_pid[str(ids["eevee photo"])]
    assert (eevee["species"], eevee["verdict"], eevee["model_version"]) == (
        "eevee",
        "species",
        "v9",
    )
    assert eevee["path"] == f"eevee/{eevee['sha256']}.webp"
    assert datetime.fromisoformat(eevee["verdict_time"]).tzinfo is not None
    for row in rows:  # every file is where the manifest says, with its hash
        assert hashlib.sha256((out / row["path"]).read_bytes()).hexdigest() == row["sha256"]
    twice = [r for r in rows if r["species"] == "ditto" and r["verdicts"] == "2"]
    assert len(twice) == 1
    [conflict] = _rows(out / "quarantine.csv")
    assert "conflicting verdicts on one image: ditto (1), eevee (1)" in conflict["reason"]
    assert str(ids["pending"]) not in by_pid
    assert str(ids["rejected"]) not in by_pid

    processed = tmp_path / "processed"
    summary = prepare(raw.raw, processed, workers=1, feedback=out).summary
    manifest = _rows(processed / "manifest.csv")
    tagged = [r for r in manifest if r["source"] == "feedback"]
    # eevee, ditto (two near copies of one picture), gengar, bulbasaur; the shipped copy,
    # the unknown species and the not-a-Pokémon picture stay out
    assert sorted(r["species"] for r in tagged) == [
        "bulbasaur",
        "ditto",
        "ditto",
        "eevee",
        "gengar",
    ]
    assert {r["split"] for r in tagged} <= {"train", "val"}  # never test
    ditto = {r["split"] for r in tagged if r["species"] == "ditto"}
    assert len(ditto) == 1  # one picture, one split
    for seed in range(10):  # whatever the seed: ungrouped, they would part 1 time in 2
        taken = take_feedback(out, list(SPECIES[:6]), [], [], seed=seed, val_share=0.5)
        splits = {s for s, sp in zip(taken.splits, taken.species, strict=True) if sp == "ditto"}
        assert len(splits) == 1, seed
    assert all(r["path"].startswith("feedback/") for r in tagged)
    block = summary["feedback"]
    assert block["added"]["train"] + block["added"]["val"] == 5
    assert block["not_pokemon"] == 1
    reasons = {q["path"].split("/")[1]: q["reason"] for q in block["quarantined"]}
    assert "a correction never overrides it" in reasons["charmander"]
    assert "not one of the dataset's classes" in reasons["raichu"]
    assert (processed / "quarantine" / "feedback" / "charmander").is_dir()

    # the shipped images keep their splits; the packed arrays hold every row
    alone = tmp_path / "alone"
    plain = prepare(raw.raw, alone, workers=1).summary
    shipped = {r["path"]: r["split"] for r in _rows(alone / "manifest.csv")}
    assert {r["path"]: r["split"] for r in manifest if r["source"] == "dataset"} == shipped
    assert "source" not in _rows(alone / "manifest.csv")[0]  # no feedback: the manifest as before
    assert plain["data_version"] != summary["data_version"]
    for split in ("train", "val", "test"):
        assert len(np.load(processed / f"{split}_labels.npy")) == sum(
            r["split"] == split for r in manifest
        )

    gallery = json.loads((processed / "gallery" / "manifest.json").read_text())
    assert not any(e["source"].startswith("feedback/") for e in gallery["species"].values())

    report = write_report(processed, tmp_path / "report").read_text(encoding="utf-8")
    assert "## Feedback" in report
    assert "a correction never overrides it" in report


def test_pending_verdicts_only_on_request_and_since(loop: Loop, tmp_path: Path) -> None:
    _, url, ids = loop
    out = tmp_path / "all"
    args = ["data", "feedback", "export", "--db", url, "--out", str(out), "--include-pending"]
    assert runner.invoke(app, args).exit_code == 0
    assert str(ids["pending"]) in {r["prediction_id"] for r in _rows(out / "manifest.csv")}
    later = runner.invoke(app, [*args, "--since", "2999-01-01"])
    assert later.exit_code == 0, later.output
    assert _rows(out / "manifest.csv") == []
    bad = runner.invoke(app, [*args, "--since", "yesterday"])
    assert bad.exit_code == 2
    assert "--since 'yesterday'" in bad.output


def test_an_export_never_replaces_a_foreign_folder(loop: Loop, tmp_path: Path) -> None:
    _, url, _ = loop
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    result = runner.invoke(app, ["data", "feedback", "export", "--db", url, "--out", str(foreign)])
    assert result.exit_code == 1
    assert "holds other files" in result.output
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_prepare_refuses_a_folder_that_is_not_an_export(make_raw: MakeRaw, tmp_path: Path) -> None:
    from pokedex.errors import PokedexError

    raw = make_raw(species=3, per_species=4)
    with pytest.raises(PokedexError, match="not a feedback export"):
        prepare(raw.raw, tmp_path / "p", workers=1, feedback=tmp_path)


def test_no_store_yet_gives_an_empty_export_and_the_same_data(
    make_raw: MakeRaw, tmp_path: Path
) -> None:
    # `dvc repro` from a clean checkout: no prediction store exists, none is created
    db = tmp_path / "none.db"
    out = tmp_path / "feedback"
    result = runner.invoke(
        app, ["data", "feedback", "export", "--db", f"sqlite:///{db}", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert not db.exists()
    assert _rows(out / "manifest.csv") == []
    raw = make_raw(species=3, per_species=4)
    with_empty = prepare(raw.raw, tmp_path / "a", workers=1, feedback=out).summary
    without = prepare(raw.raw, tmp_path / "b", workers=1).summary
    assert with_empty["data_version"] == without["data_version"]
    assert with_empty["feedback"]["added"] == {"train": 0, "val": 0}


def test_list_and_review_from_the_command_line(loop: Loop) -> None:
    _, url, ids = loop
    pending = runner.invoke(app, ["data", "feedback", "list", "--db", url])
    assert pending.exit_code == 0, pending.output
    [line] = pending.output.strip().splitlines()  # only "pending" is unreviewed
    assert line.startswith(str(ids["pending"]))
    assert "abra" in line
    assert "-> correct" in line
    done = runner.invoke(
        app, ["data", "feedback", "review", str(ids["pending"]), "--reject", "--db", url]
    )
    assert done.output.strip() == f"{ids['pending']}: rejected"
    assert runner.invoke(app, ["data", "feedback", "list", "--db", url]).output == ""
    every = runner.invoke(app, ["data", "feedback", "list", "--review", "all", "--db", url])
    assert len(every.output.strip().splitlines()) == 14
    assert "no image" in every.output  # the verdict whose picture was not kept
    bad = runner.invoke(app, ["data", "feedback", "review", "not-an-id", "--db", url])
    assert bad.exit_code == 2
    unknown = runner.invoke(
        app, ["data", "feedback", "review", str(new_prediction_id()), "--db", url]
    )
    assert unknown.exit_code == 1
    assert "no verdict on prediction" in unknown.output
