"""Learning curves of a run, drawn from what its logger recorded."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

History = dict[str, list[tuple[int, float]]]  # metric -> [(step, value)]
CURVES = (("train/loss", "val/loss"), ("val/acc_top1", "val/acc_top5", "photos/acc_top1"))


def mlflow_history(tracking_uri: str, run_id: str) -> History:
    """Every metric of an MLflow run, ordered by step."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    keys = client.get_run(run_id).data.metrics
    return {
        k: sorted((m.step, m.value) for m in client.get_metric_history(run_id, k)) for k in keys
    }


def csv_history(path: Path) -> History:
    """Every metric of a Lightning CSVLogger ``metrics.csv``."""
    history: History = defaultdict(list)
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            for key, value in row.items():
                if key not in ("epoch", "step") and value:
                    history[key].append((int(row["step"]), float(value)))
    return dict(history)


def plot_history(history: History, out: Path, title: str = "") -> Path:
    """Loss and accuracy against optimizer step, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, keys in zip(axes, CURVES, strict=True):
        for key in keys:
            if history.get(key):
                steps, values = zip(*history[key], strict=True)
                ax.plot(steps, values, label=key, marker="o" if len(steps) < 40 else None)
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        ax.legend()
    axes[0].set_ylabel("loss")
    axes[0].set_yscale("log")  # early eval losses are orders of magnitude above the rest
    axes[1].set_ylabel("accuracy")
    return _save(fig, out, title)


def plot_comparison(
    histories: dict[str, History],
    out: Path,
    keys: tuple[str, ...] = ("val/acc_top1", "photos/acc_top1"),
    title: str = "",
) -> Path:
    """One panel per metric in ``keys``, one line per run, against the fraction of each run
    done (runs of equal CPU time but different step counts line up)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        for name, history in histories.items():
            if history.get(key):
                steps, values = zip(*history[key], strict=True)
                ax.plot([s / steps[-1] for s in steps], values, label=name)
        ax.set_xlabel("fraction of the run")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, out, title)


def _save(fig: Any, out: Path, title: str) -> Path:
    """Title, lay out and write ``fig`` as a byte-stable PNG, then free it."""
    import matplotlib.pyplot as plt

    fig.suptitle(title)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return out
