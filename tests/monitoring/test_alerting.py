"""Alerting files: Prometheus config and rules (promtool), and the Grafana dashboard.

Every metric the rules and panels query must be one the API exports, so a renamed metric
breaks this test instead of silently emptying a panel or muting an alert.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pokedex.serving.prometheus import Metrics

ROOT = Path(__file__).resolve().parents[2] / "monitoring"
PROMETHEUS = ROOT / "prometheus"
GRAFANA = ROOT / "grafana"
RULES = ("PokedexHigh5xxRate", "PokedexHighP99Latency", "PokedexNotReady",
         "PokedexDriftDetected", "PokedexLowMeanConfidence",
         "PokedexLowFeedbackAccuracy")  # fmt: skip
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian: apt-get install prometheus)"
)
_METRIC = re.compile(r"\b(pokedex_[a-z0-9_]+)")


def exported_names() -> set[str]:
    """Every sample name the API's registry can expose (counters end in _total, and so on)."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "info": ("_info",),
        "gauge": ("",),
    }
    return {
        family.name + suffix
        for family in Metrics().registry.collect()
        for suffix in suffixes[family.type]
    }


def _promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    assert PROMTOOL is not None
    result = subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@needs_promtool
def test_prometheus_config_and_rules_are_valid() -> None:
    assert "1 rule files found" in _promtool("check", "config", "prometheus.yml")
    assert f"{len(RULES)} rules found" in _promtool("check", "rules", "alerts.yml")


@needs_promtool
def test_every_rule_passes_its_unit_tests() -> None:
    assert "SUCCESS" in _promtool("test", "rules", "alerts_test.yml")


@needs_promtool
def test_the_rule_tests_can_fail(tmp_path: Path) -> None:
    # the same tests against rules with the 5xx threshold moved must fail
    rules = (PROMETHEUS / "alerts.yml").read_text().replace("> 0.01", "> 0.05")
    (tmp_path / "alerts.yml").write_text(rules)
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path)
    result = subprocess.run(
        [str(PROMTOOL), "test", "rules", "alerts_test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "PokedexHigh5xxRate" in result.stdout + result.stderr


def _rules() -> dict[str, dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_every_alert_exists_and_has_a_runbook_entry() -> None:
    rules = _rules()
    assert set(rules) == set(RULES)
    runbook = (Path(__file__).resolve().parents[2] / "docs" / "monitoring.md").read_text()
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in ("page", "ticket")
        anchor = rule["annotations"]["runbook"].split("#")[1]
        assert anchor == name.lower()
        assert f"### {name}" in runbook


def test_every_alert_is_unit_tested_firing_and_silent() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]
    checks = [c for t in tests for c in t["alert_rule_test"]]
    for name in RULES:
        own = [c for c in checks if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in own), f"{name} never tested firing"
        assert any(not c["exp_alerts"] for c in own), f"{name} never tested silent"


def test_rules_query_only_exported_metrics() -> None:
    exported = exported_names()
    used = {m for rule in _rules().values() for m in _METRIC.findall(rule["expr"])}
    assert used, "no pokedex metric in the rules"
    assert used <= exported, used - exported


def test_scrape_config_targets_the_api() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    assert job["job_name"] == "pokedex-api"
    assert job["metrics_path"] == "/metrics"
    assert job["static_configs"][0]["targets"] == ["api:8000"]
    assert config["rule_files"] == ["alerts.yml"]
    assert all('job="pokedex-api"' in r["expr"] for r in _rules().values() if "up{" in r["expr"])


def _dashboard() -> dict:
    return json.loads((GRAFANA / "dashboards" / "pokedex.json").read_text(encoding="utf-8"))


def test_the_dashboard_is_well_formed() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "pokedex"
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    uid = datasource["datasources"][0]["uid"]
    for panel in panels:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip()
            assert target["datasource"]["uid"] == uid
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/pokedex.yml").read_text())
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"


def test_the_dashboard_shows_the_service_and_the_model() -> None:
    exprs = " ".join(t["expr"] for p in _dashboard()["panels"] for t in p.get("targets", []))
    used = set(_METRIC.findall(exprs))
    assert used <= exported_names(), used - exported_names()
    wanted = {
        "pokedex_http_requests_total",  # service
        "pokedex_http_request_duration_seconds_bucket",
        "pokedex_model_ready",
        "pokedex_queue_depth_images",
        "pokedex_prediction_confidence_ratio_sum",  # model
        "pokedex_predictions_by_species_total",
        "pokedex_drift_detected",
        "pokedex_drift_feature_psi",
    }
    assert wanted <= used, wanted - used
