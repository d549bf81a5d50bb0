"""An augmentation ablation on a borrowed GPU, within one time budget (scripts/gpu_ablation.sh).

The recipe as given, then the same recipe with one change at a time, every arm on the same
shorter one-cycle schedule, sized once from a probe (`gpurun.probe`) so that all arms end their
annealing inside the budget. Each arm is scored on the test split and, when the run has
``real_photos`` (POKEDEX_REAL_PHOTOS), on the photo set, which selects. What comes back is small:
``ablation.json`` (every arm's overrides, schedule and figures) and ``ablation_curves.png``.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from pokedex.errors import PokedexError
from pokedex.jobs.gpurun import (
    MARGIN_S,
    SLOWDOWN,
    device_name,
    probe,
    size_epochs,
    sized_overrides,
    train_timed,
)

log = logging.getLogger(__name__)

RESULTS = "ablation.json"
CURVES = "ablation_curves.png"
SELECTS = "photos/acc_top1"  # real photos are what the recipe aims at; the test split guards
# Each arm changes one thing against the recipe of `experiment=photo` (augment=photo, colour
# jitter, greyscale, blur and JPEG on; perspective off): what is on goes off, what is off goes on.
ARMS: dict[str, list[str]] = {
    "base": [],
    "no_colour": [f"augment.{k}=0" for k in ("brightness", "contrast", "saturation", "hue")],
    "no_greyscale": ["augment.grayscale=0"],
    "no_blur": ["augment.blur=0"],
    "no_jpeg": ["augment.jpeg=0"],
    "perspective": ["augment.perspective=0.3", "augment.perspective_distortion=0.3"],
}
FIGURES = ("test/acc_top1", "test/acc_top5", "photos/acc_top1", "photos/acc_top5")


def parse_arms(text: str | None) -> list[str]:
    """The arm names of a comma-separated list; all of :data:`ARMS` when none is given."""
    return [a.strip() for a in text.split(",") if a.strip()] if text else list(ARMS)


def check_arms(names: list[str], overrides: list[str]) -> dict[str, list[str]]:
    """The arms' overrides, each composed and its augmentation built before any training, so a
    mistyped arm or a change the base already has fails now rather than after the probe."""
    from pokedex.data.augment import AugmentConfig
    from pokedex.jobs.train import compose_config

    unknown = [n for n in names if n not in ARMS]
    if unknown or not names:
        raise PokedexError(f"unknown ablation arm(s) {unknown}: choose among {', '.join(ARMS)}")
    if "base" not in names:
        raise PokedexError("the arms must include base: every change is read against it")
    augments = {}
    for name in names:
        cfg = compose_config([*overrides, *ARMS[name]])
        augments[name] = AugmentConfig(**OmegaConf.to_container(cfg.augment))  # type: ignore[arg-type]
    same = [n for n in names if n != "base" and augments[n] == augments["base"]]
    if same:
        raise PokedexError(f"arm(s) {same} change nothing against these overrides: leave them out")
    return {name: ARMS[name] for name in names}


def noise(p: float, n: float) -> float:
    """The smallest difference between two arms' accuracies (p on n images each) that counts:
    twice the standard error of a difference of two independent binomial estimates."""
    return 2 * math.sqrt(2 * p * (1 - p) / n) if n > 0 else float("inf")


def ablate(
    budget_s: float,
    overrides: list[str],
    out: Path,
    arms: list[str],
    max_epochs: int | None = None,
) -> dict[str, Any]:
    """Probe once, size one schedule for every arm (at most ``max_epochs``), train and score
    each; write ``out``."""
    started = time.perf_counter()
    if max_epochs is not None and max_epochs < 2:
        raise PokedexError(f"--max-epochs {max_epochs}: a one-cycle schedule needs at least 2")
    plan = check_arms(arms, overrides)
    epoch_s, fixed = probe(overrides)
    spent = time.perf_counter() - started
    n = len(plan)
    # the arms in turn as one long run: n times the fixed costs and the epochs, one margin
    try:
        epochs = size_epochs(budget_s - spent, n * epoch_s, n * fixed + MARGIN_S, slowdown=SLOWDOWN)
    except PokedexError as exc:
        raise PokedexError(f"{n} arms in turn, after a probe of {spent:.0f} s: {exc}") from None
    epochs = min(epochs, max_epochs or epochs)
    log.info("probe: %.2f s per epoch; %d epochs for each of %d arms", epoch_s, epochs, n)
    rows, histories = [], {}
    for i, (name, changes) in enumerate(plan.items()):
        # a hard stop that leaves the arms still to come what they need at the probe's pace and
        # this one 20 s to test and score: a slow arm may use the slack, not their time
        left = budget_s - (time.perf_counter() - started)
        cap = max(10, left - (n - i - 1) * (fixed + epochs * epoch_s) - 20)
        arm_overrides = [*overrides, *changes, f"name=ablation-{name}"]
        row: dict[str, Any] = {"arm": name, "changes": changes, "epochs_planned": epochs}
        try:
            result, clock, train_s = train_timed([*arm_overrides, *sized_overrides(epochs, cap)])
        except Exception as exc:  # one failed arm must not lose the others' figures
            log.exception("arm %s failed", name)
            rows.append({**row, "error": f"{type(exc).__name__}: {exc}"})
            continue
        m = result.metrics
        rows.append(
            {
                **row,
                "epochs_run": int(m.get("epochs", 0)),
                "train_s": round(train_s, 1),
                "epoch_s": round(statistics.median(clock.seconds), 3) if clock.seconds else None,
                **{k: m[k] for k in (*FIGURES, "test/types_f1", "photos/n") if k in m},
            }
        )
        if (result.run_dir / "metrics.csv").is_file():
            from pokedex.jobs.curves import csv_history

            histories[name] = csv_history(result.run_dir / "metrics.csv")
    report = {
        "budget_s": budget_s,
        "device": device_name(),
        "overrides": overrides,
        "probe_epoch_s": round(epoch_s, 3),
        "fixed_s": round(fixed, 1),
        "epochs": epochs,
        "max_epochs": max_epochs,
        "selects": SELECTS,
        "arms": _compare(rows),
        "total_s": round(time.perf_counter() - started, 1),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / RESULTS).write_text(json.dumps(report, indent=2) + "\n")
    if histories:
        from pokedex.jobs.curves import plot_comparison

        title = f"ablation: {epochs} epochs per arm"
        plot_comparison(histories, out / CURVES, title=title)
    failed = [r["arm"] for r in rows if "error" in r]
    if failed:
        raise PokedexError(f"arm(s) {failed} failed (see the log); the others are in {out}")
    return report


def _compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each arm's difference from base on every figure, and whether the selecting one is beyond
    the noise of one seed on that many photos."""
    base = next((r for r in rows if r["arm"] == "base" and "error" not in r), None)
    if base is None:
        return rows
    for row in rows:
        if "error" in row or row is base:
            continue
        for key in FIGURES:
            if key in row and key in base:
                row[f"delta/{key}"] = round(row[key] - base[key], 4)
        if SELECTS in row and SELECTS in base:
            counts = abs(row[SELECTS] - base[SELECTS]) > noise(base[SELECTS], base["photos/n"])
            row["beyond_noise"] = counts
    return rows


def format_table(report: dict[str, Any]) -> str:
    """The arms as a markdown table, the selecting column last, with the noise threshold."""

    def pct(row: dict[str, Any], key: str) -> str:
        if key not in row:
            return "–"
        delta = row.get(f"delta/{key}")
        return f"{100 * row[key]:.1f}" + ("" if delta is None else f" ({100 * delta:+.1f})")

    lines = [
        f"{report['epochs']} epochs per arm on {report['device']}; "
        f"overrides {' '.join(report['overrides']) or '(none)'}",
        "",
        "| arm | change | epochs | train s | test top-1 | test top-5 | photos top-5 "
        "| photos top-1 | beyond noise |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["arms"]:
        if "error" in r:
            lines.append(f"| {r['arm']} | {' '.join(r['changes'])} | failed: {r['error']} |")
            continue
        verdict = {True: "yes", False: "no"}.get(r.get("beyond_noise"), "")
        lines.append(
            f"| {r['arm']} | {' '.join(r['changes']) or 'the recipe'} | {r['epochs_run']} "
            f"| {r['train_s']:.0f} | {pct(r, 'test/acc_top1')} | {pct(r, 'test/acc_top5')} "
            f"| {pct(r, 'photos/acc_top5')} | {pct(r, SELECTS)} | {verdict} |"
        )
    base = next((r for r in report["arms"] if r["arm"] == "base" and SELECTS in r), None)
    if base is not None:
        threshold = 100 * noise(base[SELECTS], base["photos/n"])
        lines += [
            "",
            f"A photo top-1 difference counts beyond {threshold:.1f} points (2 standard errors "
            f"of a difference on {base['photos/n']:.0f} photos).",
        ]
    return "\n".join(lines)
