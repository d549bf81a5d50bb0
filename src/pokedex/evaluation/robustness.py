"""`pokedex evaluate --robustness`: top-1 under controlled shifts at five severities each.

Runs the bundle's PyTorch network (the reference path, as `pokedex evaluate`) on a split, clean
and under every shift of :mod:`pokedex.evaluation.shifts`. Writes one folder, replaced whole:
    robustness.json  robustness.md (the table)  robustness.png (accuracy vs severity per shift)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from pokedex.core.bundle import Bundle
from pokedex.errors import PokedexError
from pokedex.evaluation.metrics import accuracy
from pokedex.evaluation.shifts import SEVERITIES, SHIFTS
from pokedex.io import atomic_path, check_replaceable, write_bytes_atomic, write_json_atomic

log = logging.getLogger(__name__)

OUTPUTS = frozenset({"robustness.json", "robustness.md", "robustness.png"})
CHUNK = 256  # images shifted and run at a time: a shifted copy of a whole split never exists


def check_choices(shifts: Sequence[str] | None, severities: Sequence[int] | None) -> None:
    """PokedexError naming the valid values when a shift or severity is unknown."""
    unknown = sorted(set(shifts or ()) - set(SHIFTS))
    if unknown:
        raise PokedexError(f"unknown shift {', '.join(unknown)}: use {', '.join(SHIFTS)}")
    bad = sorted(set(severities or ()) - set(SEVERITIES))
    if bad:
        raise PokedexError(f"severity {bad[0]} out of range: use 1 to {len(SEVERITIES)}")


def robustness(
    bundle: Bundle,
    processed: Path,
    out: Path,
    *,
    split: str = "test",
    shifts: Sequence[str] | None = None,
    severities: Sequence[int] | None = None,
    images: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Top-1 of the bundle's network on ``split``, clean and shifted; writes the folder ``out``.

    ``images`` evaluates a seeded subset (the same images for every shift), for a quick run.
    """
    import torch

    from pokedex.evaluation.inference import load_split, run_net
    from pokedex.models.net import load_net

    check_choices(shifts, severities)
    names = list(shifts or SHIFTS)
    levels = sorted(set(severities or SEVERITIES))
    out = Path(out)
    check_replaceable(out, OUTPUTS.__contains__)
    start = time.perf_counter()
    canvases, labels = load_split(Path(processed), split, bundle.classes)
    if images is not None:
        if images < 1:
            raise PokedexError(f"--images must be at least 1, not {images}")
        idx = np.sort(np.random.default_rng(seed).permutation(len(labels))[:images])
        canvases, labels = np.asarray(canvases[idx]), labels[idx]
    net = load_net(bundle).to(memory_format=torch.channels_last)
    spec = bundle.preprocess
    log.info(
        "robustness of %s on %d %s images: %d shifts x %d severities",
        bundle.name,
        len(labels),
        split,
        len(names),
        len(levels),
    )

    def top1(transform: Callable[[np.ndarray], np.ndarray]) -> float:
        logits = [
            run_net(net, transform(np.asarray(canvases[i : i + CHUNK])), spec).species
            for i in range(0, len(labels), CHUNK)
        ]
        return accuracy(np.concatenate(logits), labels)["acc_top1"]

    clean = top1(lambda c: c)
    results: dict[str, Any] = {}
    for name in names:
        shift = SHIFTS[name]
        accs = [
            top1(partial(shift.apply, severity=s, background=spec.background, seed=seed))
            for s in levels
        ]
        results[name] = {
            "description": shift.description,
            "levels": [shift.levels[s - 1] for s in levels],
            "acc_top1": accs,
        }
        log.info("%s: %s", name, " ".join(f"{a:.3f}" for a in accs))
    mean = float(np.mean([a for r in results.values() for a in r["acc_top1"]]))
    report = {
        "model": bundle.name,
        "split": split,
        "images": len(labels),
        "seed": seed,
        "severities": levels,
        "clean_top1": clean,
        "mean_shifted_top1": mean,
        "relative_robustness": mean / clean if clean > 0 else None,
        "shifts": results,
        "seconds": round(time.perf_counter() - start, 1),
    }
    with atomic_path(out) as tmp:
        tmp.mkdir(parents=True)
        write_json_atomic(tmp / "robustness.json", report)
        (tmp / "robustness.md").write_text(render_table(report), encoding="utf-8")
        write_bytes_atomic(tmp / "robustness.png", robustness_png(report))
    return report


def render_table(report: dict[str, Any]) -> str:
    """Markdown: one row per shift, top-1 (%) per severity, and the parameter values."""
    levels = report["severities"]
    head = ["shift", *(f"severity {s}" for s in levels), "mean", "parameter (per severity)"]
    lines = [
        f"# Robustness of {report['model']}",
        "",
        f"Top-1 on {report['images']} {report['split']} images (seed {report['seed']}): "
        f"clean **{100 * report['clean_top1']:.1f}%**, mean over shifts "
        f"**{100 * report['mean_shifted_top1']:.1f}%**"
        + (
            f" ({100 * report['relative_robustness']:.0f}% of clean)."
            if report["relative_robustness"] is not None
            else "."
        ),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, r in report["shifts"].items():
        cells = [f"{100 * a:.1f}" for a in r["acc_top1"]]
        params = ", ".join(f"{v:g}" for v in r["levels"])
        mean = 100 * float(np.mean(r["acc_top1"]))
        lines.append(
            f"| {name} | {' | '.join(cells)} | {mean:.1f} | {r['description']}: {params} |"
        )
    lines += ["", "![accuracy vs severity](robustness.png)", ""]
    return "\n".join(lines)


def robustness_png(report: dict[str, Any]) -> bytes:
    """Top-1 vs severity, one line per shift, the clean accuracy dashed."""
    import io

    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    levels = report["severities"]
    for i, (name, r) in enumerate(report["shifts"].items()):
        # 11 shifts, 10 default colours: the marker tells the ones sharing a colour apart
        marker = "osD^v<>pPX*h"[i % 12]
        ax.plot(levels, [100 * a for a in r["acc_top1"]], marker=marker, label=name)
    ax.axhline(100 * report["clean_top1"], color="black", linestyle="--", label="clean")
    ax.set_xlabel("severity")
    ax.set_ylabel("top-1 (%)")
    ax.set_xticks(levels)
    ax.set_ylim(0, 100)
    ax.set_title(f"{report['model']}: top-1 under shift ({report['images']} images)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
