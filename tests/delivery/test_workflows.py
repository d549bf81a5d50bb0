"""GitHub Actions workflows: actionlint-clean, schema-valid, and they call commands that exist."""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib

import pytest
from typer.testing import CliRunner

from pokedex.cli import app
from tests.delivery.conftest import IMAGES, REPO, load_yaml, tool

WORKFLOWS = REPO / ".github" / "workflows"
NAMES = ("tests", "docker", "data", "model", "docs")


def _workflow(name: str) -> dict:
    data = load_yaml(WORKFLOWS / f"{name}.yml")
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _runs(workflow: dict) -> list[str]:
    return [s["run"] for job in workflow["jobs"].values() for s in job["steps"] if "run" in s]


def _uses(workflow: dict) -> list[str]:
    steps = [s for job in workflow["jobs"].values() for s in job.get("steps", [])]
    return [s["uses"] for s in steps if "uses" in s]


def test_there_is_one_workflow_per_pipeline() -> None:
    assert sorted(p.stem for p in WORKFLOWS.glob("*.yml")) == sorted(NAMES)


def test_actionlint_passes() -> None:
    result = subprocess.run(
        [tool("actionlint"), "-no-color"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_follow_the_schema() -> None:
    files = [str(p) for p in sorted(WORKFLOWS.glob("*.yml"))]
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *files],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tests_run_on_three_systems_two_pythons_with_a_coverage_floor() -> None:
    workflow = _workflow("tests")
    matrix = workflow["jobs"]["test"]["strategy"]["matrix"]
    assert set(matrix["os"]) == {"ubuntu-latest", "macos-latest", "windows-latest"}
    assert set(matrix["python"]) == {"3.11", "3.12"}
    steps = workflow["jobs"]["test"]["steps"]
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["cache"] == "pip"
    runs = "\n".join(_runs(workflow))
    assert "ruff check" in runs
    assert "pre-commit run --all-files" in runs
    assert "--cov-fail-under=${{ env.COVERAGE_MIN }}" in runs
    assert int(workflow["env"]["COVERAGE_MIN"]) >= 85
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "coverage.xml"
    assert "make lint" in runs  # the same targets as a developer's machine


def test_docker_builds_on_pull_requests_and_pushes_on_main_and_tags() -> None:
    workflow = _workflow("docker")
    assert "pull_request" in workflow["on"]
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["on"]["push"]["tags"] == ["v*"]
    job = workflow["jobs"]["image"]
    assert sorted(job["strategy"]["matrix"]["image"]) == sorted(IMAGES)
    assert job["env"]["PUSH"] == "${{ github.event_name != 'pull_request' }}"
    build = next(s for s in job["steps"] if s.get("uses", "").startswith("docker/build-push"))
    assert build["with"]["file"] == "dockerfiles/${{ matrix.image }}.Dockerfile"
    assert build["with"]["push"] == "${{ env.PUSH == 'true' }}"
    logins = [s for s in job["steps"] if "login-action" in s.get("uses", "")]
    registries = [s["with"]["registry"] for s in logins]
    assert registries == ["ghcr.io", "${{ vars.GCP_REGION }}-docker.pkg.dev"]
    for step in job["steps"]:
        if "login-action" in step.get("uses", "") or "auth" in step.get("uses", ""):
            assert step["if"] == "env.PUSH == 'true'", "no credentials on pull requests"


def test_data_checks_run_when_the_data_specs_change() -> None:
    workflow = _workflow("data")
    paths = workflow["on"]["pull_request"]["paths"]
    assert {"dvc.lock", "dvc.yaml", "params.yaml"} <= set(paths)
    runs = "\n".join(_runs(workflow))
    assert "pokedex data prepare" in runs
    assert "gh pr comment" in runs
    assert workflow["permissions"]["pull-requests"] == "write"


def test_model_gate_runs_on_a_registry_webhook() -> None:
    workflow = _workflow("model")
    assert workflow["on"]["repository_dispatch"]["types"] == ["model-registered"]
    runs = "\n".join(_runs(workflow))
    assert 'pokedex registry promote --model "$MODEL"' in runs
    assert "GITHUB_STEP_SUMMARY" in runs
    # the payload reaches the shell through the environment, never pasted into a script
    assert "client_payload" not in runs


def test_docs_build_strictly_and_deploy_from_main() -> None:
    workflow = _workflow("docs")
    assert "mkdocs build --strict" in "\n".join(_runs(workflow))
    deploy = workflow["jobs"]["deploy"]
    assert deploy["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert any(u.startswith("actions/deploy-pages") for u in _uses(workflow))


def _pokedex_commands() -> list[list[str]]:
    commands = []
    for name in NAMES:
        for script in _runs(_workflow(name)):
            for line in script.splitlines():
                match = re.search(r"\bpokedex ((?:[a-z]+ ?)+)", line)
                if match:
                    commands.append(shlex.split(match.group(1)))
    return commands


@pytest.mark.parametrize("words", _pokedex_commands(), ids=" ".join)
def test_every_pokedex_command_a_workflow_runs_exists(words: list[str]) -> None:
    path = [w for w in words if not w.startswith("-")][:2]
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_extras_a_workflow_installs_exist() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    extras = set(project["optional-dependencies"])
    for name in NAMES:
        for script in _runs(_workflow(name)):
            for group in re.findall(r"\.\[([a-z,]+)\]", script):
                assert set(group.split(",")) <= extras, (name, group)
