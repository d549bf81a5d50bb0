"""The drift report as files: ``drift.html`` (verdict, per-feature tests, histograms) and
``drift.json`` (what ``GET /v1/monitoring/drift`` answers)."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import numpy as np

from pokedex.errors import PokedexError
from pokedex.io import write_bytes_atomic
from pokedex.monitoring.check import DriftCheck
from pokedex.monitoring.drift import SCALARS, DriftReport
from pokedex.monitoring.features import IMAGE_FEATURES, MODEL_FEATURES

EMBEDDING_MEANING = "leading embedding dimensions, tested jointly (kernel MMD)"


def write_report(check: DriftCheck, out: Path) -> list[Path]:
    """Write ``drift.html`` and ``drift.json`` into the folder ``out``; returns both paths."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PokedexError(f"{out} exists and is not a folder: choose another --out")
    html_path, json_path = out / "drift.html", out / "drift.json"
    write_bytes_atomic(html_path, render_html(check).encode("utf-8"))
    write_bytes_atomic(json_path, (check.report.model_dump_json(indent=2) + "\n").encode("utf-8"))
    return [html_path, json_path]


def render_html(check: DriftCheck) -> str:
    """A self-contained HTML page (the figure is inlined): no network needed to view it."""
    r = check.report
    meaning = {**IMAGE_FEATURES, **MODEL_FEATURES, "embedding": EMBEDDING_MEANING}
    rows = "\n".join(
        "<tr{cls}><td>{name}</td><td>{meaning}</td><td>{test}</td><td>{stat:.4g}</td>"
        "<td>{p:.3g}</td><td>{psi}</td><td>{ref}</td><td>{cur}</td><td>{verdict}</td></tr>".format(
            cls=' class="drift"' if f.drifted else "",
            name=html.escape(f.name),
            meaning=html.escape(meaning.get(f.name, "")),
            test=f.test.upper(),
            stat=f.statistic,
            p=f.p_value,
            psi="" if f.psi is None else f"{f.psi:.3f}",
            ref=_num(f.reference_mean),
            cur=_num(f.current_mean),
            verdict="drift" if f.drifted else "ok",
        )
        for f in r.features
    )
    span = (
        f"{r.window_start:%Y-%m-%d %H:%M:%S} to {r.window_end:%Y-%m-%d %H:%M:%S} UTC"
        if r.window_start and r.window_end
        else "no predictions"
    )
    t = r.thresholds
    figure = (
        f'<img alt="reference vs current distributions" src="data:image/png;base64,'
        f'{_histograms_png(check)}">'
        if r.features
        else "<p>Not enough predictions to compare.</p>"
    )
    return _PAGE.format(
        verdict=html.escape(r.verdict.replace("_", " ")),
        verdict_class=r.verdict,
        model=html.escape(r.model),
        window=html.escape(r.window),
        predictions=r.predictions,
        span=html.escape(span),
        split=html.escape(r.reference_split),
        reference_images=r.reference_images,
        drifted=html.escape(", ".join(r.drifted) or "none"),
        alpha=t.alpha,
        per_test=t.per_test_alpha,
        psi=t.psi,
        min_samples=t.min_samples,
        checked=f"{r.checked_at:%Y-%m-%d %H:%M:%S} UTC",
        rows=rows,
        figure=figure,
    )


def summary_lines(report: DriftReport) -> list[str]:
    """The verdict and one line per feature, for a terminal."""
    lines = [
        f"{report.verdict.upper()}: {report.model}, window {report.window} "
        f"({report.predictions} predictions) vs {report.reference_images} "
        f"{report.reference_split} images; drifted: {', '.join(report.drifted) or 'none'}"
    ]
    for f in report.features:
        psi = "" if f.psi is None else f"  PSI {f.psi:.3f}"
        mark = "DRIFT" if f.drifted else "ok"
        lines.append(
            f"  {f.name:<15} {f.test.upper():<3} {f.statistic:9.4g}  p {f.p_value:.2g}{psi}  {mark}"
        )
    return lines


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def _histograms_png(check: DriftCheck) -> str:
    # the object API (no pyplot) and step outlines: a drift report must not cost seconds here
    from matplotlib.figure import Figure

    drifted = set(check.report.drifted)
    cols = 4
    rows = -(-len(SCALARS) // cols)
    fig = Figure(figsize=(3.2 * cols, 2.4 * rows), dpi=80)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, name in zip(axes.flat, SCALARS, strict=False):
        ref = check.reference.values[name]
        cur = check.current.values[name]
        cur = cur[np.isfinite(cur)]
        both = np.concatenate([ref, cur])
        lo, hi = float(both.min()), float(both.max())
        bins = np.linspace(lo, hi if hi > lo else lo + 1e-6, 30)
        ax.hist(ref, bins=bins, density=True, histtype="step", label="reference")
        ax.hist(cur, bins=bins, density=True, histtype="step", label="current")
        ax.set_title(name + (" (drift)" if name in drifted else ""), fontsize=9)
        ax.tick_params(labelsize=7)
        ax.set_yticks([])
    for ax in list(axes.flat)[len(SCALARS) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7)
    fig.subplots_adjust(left=0.03, right=0.98, top=0.92, bottom=0.08, wspace=0.15, hspace=0.45)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return base64.b64encode(buf.getvalue()).decode("ascii")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pokedex drift report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; font-size: 0.9em; }}
tr.drift {{ background: #fde2e1; }}
.verdict {{ font-size: 1.4em; font-weight: bold; }}
.drift .verdict, .verdict.drift {{ color: #b3261e; }}
.verdict.no_drift {{ color: #1b6e20; }}
.verdict.insufficient_data {{ color: #8a6d00; }}
</style></head><body>
<h1>Drift report</h1>
<p class="verdict {verdict_class}">{verdict}</p>
<p>Model <b>{model}</b>; window <b>{window}</b>: {predictions} predictions, {span};
reference: {reference_images} images of the {split} split. Drifted: <b>{drifted}</b>.</p>
<p>Rule: a feature drifts when its test's p-value is below {per_test:.3g} (family-wise
&alpha; = {alpha} over all tests, Bonferroni) and, for scalar features, its PSI is at least
{psi}; at least {min_samples} predictions are needed. Checked {checked}.</p>
<table><tr><th>feature</th><th>meaning</th><th>test</th><th>statistic</th><th>p-value</th>
<th>PSI</th><th>reference mean</th><th>current mean</th><th>result</th></tr>
{rows}
</table>
{figure}
</body></html>
"""
