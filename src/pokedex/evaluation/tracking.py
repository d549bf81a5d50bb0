"""Evaluation results to the tracker: the MLflow run recorded in the bundle."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from pokedex.core.bundle import Bundle

log = logging.getLogger(__name__)


def scalar_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers of an evaluation as flat ``name -> float`` (for trackers and gates)."""
    flat = {k: metrics[k] for k in ("acc_top1", "acc_top5", "acc_macro", "types_f1")}
    cal, osr = metrics["calibration"], metrics["open_set"]
    flat |= {
        k: cal[k] for k in ("temperature", "ece_before", "ece_after", "nll_before", "nll_after")
    }
    flat |= {f"open_set_{k}": osr[k] for k in ("threshold", "false_accept", "false_reject")}
    flat |= {f"photos_{k}": v for k, v in metrics.get("photos", {}).items() if k != "n"}
    return {k: float(v) for k, v in flat.items() if v is not None}


def log_evaluation(bundle: Bundle, metrics: dict[str, Any], out: Path) -> None:
    """Log an evaluation's numbers and files to the MLflow run that trained the bundle, when
    the bundle names one and the tracking store is reachable; otherwise skip with an info log."""
    run_id = bundle.meta.get("run", {}).get("mlflow_run_id")
    if not run_id:
        log.info("the bundle records no MLflow run: evaluation not logged to a tracker")
        return
    uri = os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"
    # a missing sqlite file would be created empty by MLflow: treat it as unreachable instead
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        log.info("MLflow store %s does not exist: evaluation not logged", uri)
        return
    try:
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        client.get_run(run_id)
    except Exception as exc:  # any tracker failure only costs the logging, not the evaluation
        log.info("MLflow run %s not reachable at %s (%s): evaluation not logged", run_id, uri, exc)
        return
    prefix, now = f"eval/{metrics['split']}", int(time.time() * 1000)
    try:
        client.log_batch(
            run_id,
            metrics=[
                Metric(f"{prefix}/{k}", v, now, 0) for k, v in scalar_metrics(metrics).items()
            ],
        )
        client.log_artifacts(run_id, str(out), artifact_path=f"evaluation/{metrics['split']}")
    except Exception as exc:
        log.warning("logging the evaluation to MLflow run %s failed: %s", run_id, exc)
        return
    log.info("logged the evaluation to MLflow run %s", run_id)
