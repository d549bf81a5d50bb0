"""GCP files: Cloud Build, Cloud Run services, the Vertex AI job and the alert policies."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pokedex.cli import app
from pokedex.serving.settings import Settings
from pokedex.ui.settings import UiSettings
from tests.conftest import write_raw
from tests.delivery.conftest import (
    REPO,
    Dockerfile,
    api_env_names,
    load_yaml,
    needs_posix,
    tool,
)

GCP = REPO / "deploy" / "gcp"
ALERTS = REPO / "monitoring" / "prometheus" / "alerts.yml"
RULE_NAMES = {
    "PokedexHigh5xxRate",
    "PokedexHighP99Latency",
    "PokedexNotReady",
    "PokedexDriftDetected",
    "PokedexLowFeedbackAccuracy",
    "PokedexLowMeanConfidence",
}
_PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")


def _placeholders(path: Path) -> tuple[set[str], set[str]]:
    """(placeholders used in the body, placeholders the header's envsubst line fills)."""
    text = path.read_text()
    header = "\n".join(line for line in text.splitlines() if line.startswith("#"))
    body = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    filled = re.search(r"envsubst '([^']+)'", header)
    assert filled, f"{path.name}: the header must show the envsubst command"
    return set(_PLACEHOLDER.findall(body)), set(_PLACEHOLDER.findall(filled.group(1)))


def _help(*words: str) -> None:
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, (words, result.output)


def test_cloudbuild_follows_its_schema_and_builds_our_images() -> None:
    path = REPO / "cloudbuild.yaml"
    result = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.cloudbuild", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    build = load_yaml(path)
    tagged = []
    for step in build["steps"]:
        assert step["args"][0] == "build"
        (dockerfile,) = [a.split("=", 1)[1] for a in step["args"] if a.startswith("--file=")]
        assert (REPO / dockerfile).is_file()
        assert step["args"][-1] == "."
        tagged += [a.split("=", 1)[1] for a in step["args"] if a.startswith("--tag=")]
    assert {s["id"] for s in build["steps"]} == {"api", "ui", "train"}
    assert sorted(build["images"]) == sorted(tagged)
    for image in tagged:
        # the project comes from Cloud Build, never from the repository
        assert image.startswith("${_REGION}-docker.pkg.dev/$PROJECT_ID/${_REPOSITORY}/pokedex-")


UI_ENV = {f"POKEDEX_{name.upper()}" for name in UiSettings.model_fields}


@pytest.mark.parametrize(("service", "names"), [("api", api_env_names()), ("ui", UI_ENV)])
def test_cloud_run_service(service: str, names: set[str]) -> None:
    path = GCP / "cloudrun" / f"{service}.yaml"
    used, filled = _placeholders(path)
    assert used == filled, f"{path.name}: placeholders {used} vs envsubst {filled}"
    spec = load_yaml(path)
    assert (spec["apiVersion"], spec["kind"]) == ("serving.knative.dev/v1", "Service")
    template = spec["spec"]["template"]
    scale = template["metadata"]["annotations"]
    low = int(scale["autoscaling.knative.dev/minScale"])
    high = int(scale["autoscaling.knative.dev/maxScale"])
    assert 0 <= low <= high
    (container,) = template["spec"]["containers"]
    assert container["image"].endswith(f"/pokedex-{service}:${{TAG}}")
    dockerfile = Dockerfile.load(service)
    (port,) = container["ports"]
    assert str(port["containerPort"]) in dockerfile.all("EXPOSE", "runtime")
    assert re.fullmatch(r"\d+(\.\d+)?", container["resources"]["limits"]["cpu"])
    assert re.fullmatch(r"\d+[MG]i", container["resources"]["limits"]["memory"])
    assert 1 <= template["spec"]["containerConcurrency"] <= 1000
    for variable in container["env"]:
        assert variable["name"] in names, f"the {service} reads no {variable['name']}"
        if "valueFrom" in variable:
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["key"] == "latest" or ref["key"].isdigit()
        else:
            assert "password" not in str(variable["value"]).lower()
    # the probes hit the same endpoint as the image's HEALTHCHECK (run by test_entrypoints)
    healthcheck = " ".join(dockerfile.healthcheck())
    assert container["startupProbe"]["httpGet"]["path"] in healthcheck


def test_api_probe_paths_are_routes_of_the_app() -> None:
    from pokedex.serving.app import create_app

    spec = load_yaml(GCP / "cloudrun" / "api.yaml")
    (container,) = spec["spec"]["template"]["spec"]["containers"]
    paths = set(create_app(Settings()).openapi()["paths"])
    for probe in ("startupProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in paths
    batch = next(e for e in container["env"] if e["name"] == "POKEDEX_MAX_BATCH_SIZE")
    assert spec["spec"]["template"]["spec"]["containerConcurrency"] <= Settings().max_queue
    assert int(batch["value"]) == spec["spec"]["template"]["spec"]["containerConcurrency"]


def _vertex() -> dict:
    return load_yaml(GCP / "vertex" / "train-gpu.yaml")


def test_vertex_job_runs_the_gpu_preset_on_the_train_image() -> None:
    path = GCP / "vertex" / "train-gpu.yaml"
    used, filled = _placeholders(path)
    assert used == filled
    (pool,) = _vertex()["workerPoolSpecs"]
    assert pool["machineSpec"]["acceleratorCount"] >= 1
    container = pool["containerSpec"]
    assert container["imageUri"].endswith("/pokedex-train:${TAG}")
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["POKEDEX_DATA_SOURCE"].startswith("gs://")
    assert _vertex()["baseOutputDirectory"]["outputUriPrefix"].startswith("gs://")
    from pokedex.jobs.train import compose_config

    config = compose_config(container["args"])
    assert config.name == "gpu"
    assert config.trainer.accelerator == "gpu"
    for line in container["command"][2].splitlines():
        words = line.split()
        if words and words[0] == "pokedex":
            _help(*[w for w in words[1:3] if not w.startswith(("-", '"'))])


@needs_posix
@pytest.mark.slow
def test_vertex_job_script_fetches_prepares_trains_and_registers(tmp_path: Path) -> None:
    """The job's command, with the smoke preset, in a folder laid out like the train image."""
    container = _vertex()["workerPoolSpecs"][0]["containerSpec"]
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    raw = write_raw(tmp_path / "source", species=6, per_species=6)
    # the job's variables point at GCS and the MLflow server: here, local stand-ins (the
    # synthetic data has no PokéAPI tables, so POKEDEX_METADATA stays unset)
    job_env = {e["name"] for e in container["env"]}
    assert job_env == {"POKEDEX_DATA_SOURCE", "POKEDEX_METADATA", "MLFLOW_TRACKING_URI"}
    env = Dockerfile.load("train").local_env(
        app_dir,
        POKEDEX_DATA_SOURCE=str(raw.raw),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    result = subprocess.run(
        [*container["command"], "experiment=smoke"],
        cwd=app_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (app_dir / "data" / "processed" / "summary.json").is_file()
    assert (app_dir / "models" / "candidate" / "bundle.json").is_file()
    assert "registered pokedex version 1" in result.stdout


def test_alert_policies_mirror_the_prometheus_rules() -> None:
    if not ALERTS.is_file():
        pytest.skip("monitoring/prometheus/alerts.yml is not written yet")
    rules = {r["alert"]: r for g in load_yaml(ALERTS)["groups"] for r in g["rules"] if "alert" in r}
    assert set(rules) == RULE_NAMES
    result = subprocess.run(
        [sys.executable, "scripts/alert_policies.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    policies = {}
    for path in (GCP / "monitoring").glob("*.yaml"):
        policy = load_yaml(path)
        policies[policy["displayName"]] = policy
    assert set(policies) == RULE_NAMES
    for name, policy in policies.items():
        (condition,) = policy["conditions"]
        promql = condition["conditionPrometheusQueryLanguage"]
        assert promql["query"] == " ".join(rules[name]["expr"].split())
        assert promql["alertRule"] == name
        assert policy["severity"] in {"CRITICAL", "ERROR", "WARNING"}
        assert re.fullmatch(r"\d+s", promql["duration"])
        json.dumps(policy)  # plain data: what the Monitoring API accepts
