"""Accuracy-by-feedback: the gauges after verdicts, and the Feedback section of `pokedex drift`."""

from __future__ import annotations

import math
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from pokedex.cli import app
from pokedex.serving.app import create_app
from tests.conftest import encode, sprite
from tests.monitoring.test_api import _settings

runner = CliRunner()


def _gauge(client: TestClient, name: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    raise AssertionError(f"{name} not exported")


def test_verdicts_move_the_gauges_and_reach_the_drift_report(
    profiled_bundle: Path, tmp_path: Path
) -> None:
    db = tmp_path / "p.db"
    with TestClient(create_app(_settings(profiled_bundle, db, feedback_window="3"))) as client:
        assert math.isnan(_gauge(client, "pokedex_feedback_accuracy_ratio"))
        answers = [
            client.post("/v1/predict", files={"file": encode(sprite(i), "PNG")}).json()
            for i in range(4)
        ]
        top1 = answers[0]["species"][0]["name"]
        second = answers[1]["species"]
        other = next(s["name"] for s in second if s["name"] != second[0]["name"])
        verdicts = ["correct", other, "not_pokemon", "correct"]
        for answer, verdict in zip(answers, verdicts, strict=True):
            sent = client.post(
                "/v1/feedback", json={"prediction_id": answer["id"], "verdict": verdict}
            )
            assert sent.status_code == 201, sent.text
        # the window holds the last 3 verdicts: wrong species, not_pokemon (the model said
        # known), correct -> 1 of 3 agree
        assert _gauge(client, "pokedex_feedback_window_verdicts") == 3
        assert _gauge(client, "pokedex_feedback_accuracy_ratio") == 1 / 3
        assert _gauge(client, "pokedex_feedback_verdicts_total") >= 1
        assert top1  # a served species

    out = tmp_path / "report"
    args = ["drift", "--model", str(profiled_bundle), "--db", f"sqlite:///{db}", "--out", str(out)]
    result = runner.invoke(app, [*args, "--window", "2h"])
    assert result.exit_code == 0, result.output
    assert "FEEDBACK: 50.0% of 4 verdicts agree with the model" in result.output
    assert "correct 2, species 1, not_pokemon 1" in result.output
    page = (out / "drift.html").read_text()
    assert '<h2 id="feedback">Feedback</h2>' in page
    assert "<td>not_pokemon</td><td>1</td>" in page


def test_a_log_without_feedback_says_so(profiled_bundle: Path, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, inspect

    from pokedex.monitoring.feedback import check_feedback, feedback_lines
    from pokedex.monitoring.window import parse_window
    from pokedex.store.predlog import metadata

    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    metadata.create_all(engine)  # a log from before migrations: no feedback table
    check = check_feedback(engine, parse_window("500"))
    assert check.accuracy is None
    assert feedback_lines(check) == ["FEEDBACK: no verdicts in window 500"]
    assert "feedback" not in set(inspect(engine).get_table_names())  # reading created nothing
