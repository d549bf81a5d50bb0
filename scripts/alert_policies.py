"""Cloud Monitoring alert policies that mirror the Prometheus rules: deploy/gcp/monitoring/*.yaml.

Each rule of monitoring/prometheus/alerts.yml becomes one policy with a PromQL condition (the
same expression, ``for`` duration and labels), evaluated by Cloud Monitoring on the metrics that
Google Cloud Managed Service for Prometheus collects from the API. Import one with
``gcloud alpha monitoring policies create --policy-from-file=deploy/gcp/monitoring/<name>.yaml``.

    python scripts/alert_policies.py           # rewrite the policy files
    python scripts/alert_policies.py --check   # exit 1 when they differ from the rules
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "monitoring" / "prometheus" / "alerts.yml"
OUT = ROOT / "deploy" / "gcp" / "monitoring"
SEVERITY = {"page": "CRITICAL", "critical": "CRITICAL", "ticket": "WARNING", "warning": "WARNING"}
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")


def seconds(duration: str) -> int:
    """A Prometheus duration (``5m``, ``1h30m``) in whole seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return round(sum(int(n) * _UNITS[u] for n, u in parts))


def file_name(alert: str) -> str:
    """``PokedexHigh5xxRate`` -> ``pokedex-high5xx-rate.yaml``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "-", alert).lower() + ".yaml"


def rules(path: Path = RULES) -> list[dict[str, Any]]:
    """Every alerting rule of a Prometheus rule file."""
    groups = yaml.safe_load(path.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def policy(rule: dict[str, Any]) -> dict[str, Any]:
    """The AlertPolicy (Cloud Monitoring API v3, as YAML) for one rule."""
    labels = {str(k): str(v) for k, v in (rule.get("labels") or {}).items()}
    annotations = rule.get("annotations") or {}
    # the summary and the runbook link; descriptions use Prometheus templates, which Cloud
    # Monitoring would show verbatim
    text = str(annotations.get("summary", rule["alert"]))
    if "runbook" in annotations:
        text += f"\n\nRunbook: {annotations['runbook']}"
    condition: dict[str, Any] = {
        "query": " ".join(str(rule["expr"]).split()),
        "duration": f"{seconds(str(rule.get('for', '0s')))}s",
        "evaluationInterval": "60s",
        "alertRule": rule["alert"],
    }
    if labels:
        condition["labels"] = labels
    return {
        "displayName": rule["alert"],
        "documentation": {
            "content": text,
            "mimeType": "text/markdown",
        },
        "userLabels": {"app": "pokedex", **{k: v.lower() for k, v in labels.items()}},
        "severity": SEVERITY.get(labels.get("severity", "").lower(), "ERROR"),
        "combiner": "OR",
        "conditions": [
            {"displayName": rule["alert"], "conditionPrometheusQueryLanguage": condition}
        ],
        "alertStrategy": {"autoClose": "1800s"},
    }


def render(rule: dict[str, Any]) -> str:
    """The policy file's text."""
    head = (
        f"# Generated from monitoring/prometheus/alerts.yml ({rule['alert']}) by\n"
        "# scripts/alert_policies.py; import with\n"
        "#   gcloud alpha monitoring policies create \\\n"
        f"#     --policy-from-file=deploy/gcp/monitoring/{file_name(rule['alert'])}\n"
    )
    return head + yaml.safe_dump(policy(rule), sort_keys=False, allow_unicode=True, width=100)


def wanted() -> dict[Path, str]:
    """Each policy file and the text it should hold."""
    return {OUT / file_name(rule["alert"]): render(rule) for rule in rules()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="Only compare; exit 1 if stale.")
    args = parser.parse_args()
    files = wanted()
    stale = [p for p, text in files.items() if not p.is_file() or p.read_text() != text]
    extra = sorted(set(OUT.glob("*.yaml")) - set(files))
    if args.check:
        for path in [*stale, *extra]:
            print(f"stale alert policy {path.name}: run `python scripts/alert_policies.py`")
        return int(bool(stale or extra))
    OUT.mkdir(parents=True, exist_ok=True)
    for path in extra:
        path.unlink()
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
