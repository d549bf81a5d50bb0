"""`pokedex drift`: the verdict on the terminal, drift.html and drift.json on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from pokedex.cli import app
from pokedex.serving.app import create_app
from tests.monitoring.conftest import WINDOW, Shift, dark, unchanged
from tests.monitoring.test_api import _drift, _send, _settings
from tests.serving.conftest import write_bundle

runner = CliRunner()


def _log(bundle: Path, db: Path, shift: Shift) -> Path:
    """A prediction log holding WINDOW served predictions of shifted sprites."""
    with TestClient(create_app(_settings(bundle, db))) as client:
        _send(client, range(4000, 4000 + WINDOW), shift)
        _drift(client, WINDOW)  # returns once every row is written
    return db


@pytest.fixture(scope="module")
def logs(profiled_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("logs")
    return {
        "dark": _log(profiled_bundle, root / "dark.db", dark),
        "plain": _log(profiled_bundle, root / "plain.db", unchanged),
    }


def _run(bundle: Path, db: Path, out: Path, *extra: str) -> tuple[int, str]:
    args = ["drift", "--model", str(bundle), "--db", f"sqlite:///{db}", "--out", str(out)]
    result = runner.invoke(app, [*args, *extra])
    return result.exit_code, result.output


def test_drift_is_reported_with_the_features(
    profiled_bundle: Path, logs: dict[str, Path], tmp_path: Path
) -> None:
    code, output = _run(profiled_bundle, logs["dark"], tmp_path / "r")
    assert code == 0, output
    assert output.startswith("DRIFT: pokedex-test@v1")
    assert f"({WINDOW} predictions)" in output
    assert "brightness" in output.splitlines()[0]
    report = json.loads((tmp_path / "r" / "drift.json").read_text())
    assert report["verdict"] == "drift"
    assert "brightness" in report["drifted"]
    page = (tmp_path / "r" / "drift.html").read_text()
    assert '<tr class="drift"><td>brightness</td>' in page
    assert page.count("<svg") == 7  # one histogram per scalar feature, inline


def test_fail_on_drift_sets_the_exit_code(
    profiled_bundle: Path, logs: dict[str, Path], tmp_path: Path
) -> None:
    assert _run(profiled_bundle, logs["dark"], tmp_path / "a", "--fail-on-drift")[0] == 1
    code, output = _run(profiled_bundle, logs["plain"], tmp_path / "b", "--fail-on-drift")
    assert code == 0, output
    assert output.startswith("NO_DRIFT")


def test_a_time_window(profiled_bundle: Path, logs: dict[str, Path], tmp_path: Path) -> None:
    code, output = _run(profiled_bundle, logs["plain"], tmp_path / "r", "--window", "2h")
    assert code == 0, output
    assert json.loads((tmp_path / "r" / "drift.json").read_text())["predictions"] == WINDOW


def test_errors_say_what_to_fix(
    profiled_bundle: Path, logs: dict[str, Path], tmp_path: Path
) -> None:
    code, output = _run(profiled_bundle, tmp_path / "missing.db", tmp_path / "r")
    assert code == 1
    assert "no prediction log at" in output
    plain = write_bundle(tmp_path / "plain")
    code, output = _run(plain, logs["plain"], tmp_path / "r")
    assert code == 1
    assert "pokedex drift profile" in output
    code, output = _run(profiled_bundle, logs["plain"], tmp_path / "r", "--window", "soon")
    assert code == 2
    assert "window 'soon'" in output
    assert "Traceback" not in output
    assert not (tmp_path / "r").exists()
