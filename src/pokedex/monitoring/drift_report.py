"""The drift report as files: ``drift.html`` (verdict, per-feature tests, histograms) and
``drift.json`` (what ``GET /v1/monitoring/drift`` answers)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from pokedex.errors import PokedexError
from pokedex.io import write_bytes_atomic
from pokedex.monitoring.check import DriftCheck
from pokedex.monitoring.drift import SCALARS, DriftReport
from pokedex.monitoring.features import IMAGE_FEATURES, MODEL_FEATURES
from pokedex.monitoring.feedback import FeedbackCheck, feedback_html

EMBEDDING_MEANING = "leading embedding dimensions, tested jointly (kernel MMD)"
_W, _H, _BINS = 240, 90, 30  # histogram width and height (px), bins
_COLOURS = ("#1f77b4", "#ff7f0e")  # reference, current


def write_report(check: DriftCheck, out: Path, feedback: FeedbackCheck | None = None) -> list[Path]:
    """Write ``drift.html`` (with a Feedback section when ``feedback`` is given) and
    ``drift.json`` into the folder ``out``; returns both paths."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PokedexError(f"{out} exists and is not a folder: choose another --out")
    html_path, json_path = out / "drift.html", out / "drift.json"
    write_bytes_atomic(html_path, render_html(check, feedback).encode("utf-8"))
    write_bytes_atomic(json_path, (check.report.model_dump_json(indent=2) + "\n").encode("utf-8"))
    return [html_path, json_path]


def render_html(check: DriftCheck, feedback: FeedbackCheck | None = None) -> str:
    """A self-contained HTML page (the figures are inline SVG): no network needed to view it."""
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
    figure = _histograms(check) if r.features else "<p>Not enough predictions to compare.</p>"
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
        feedback=feedback_html(feedback) if feedback is not None else "",
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


def _histograms(check: DriftCheck) -> str:
    """One small inline SVG per scalar feature: reference and current densities as steps.

    Plain SVG, no plotting library: the API image (no matplotlib) can write this report.
    """
    drifted = set(check.report.drifted)
    cells = []
    for name in SCALARS:
        ref = check.reference.values[name]
        cur = check.current.values[name]
        cur = cur[np.isfinite(cur)]
        both = np.concatenate([ref, cur])
        lo, hi = float(both.min()), float(both.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1e-6, _BINS + 1)
        heights = [np.histogram(v, edges)[0] / max(len(v), 1) for v in (ref, cur)]
        top = max(float(h.max()) for h in heights) or 1.0
        lines = "".join(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
            f'points="{_steps(h, top)}"/>'
            for h, colour in zip(heights, _COLOURS, strict=True)
        )
        title = html.escape(name) + (" (drift)" if name in drifted else "")
        cells.append(
            f'<figure><svg width="{_W}" height="{_H + 14}" role="img" aria-label="{title}">'
            f'<line x1="0" y1="{_H}" x2="{_W}" y2="{_H}" stroke="#999"/>{lines}'
            f'<text x="0" y="{_H + 12}" font-size="10">{lo:.3g}</text>'
            f'<text x="{_W}" y="{_H + 12}" font-size="10" text-anchor="end">{hi:.3g}</text>'
            f"</svg><figcaption>{title}</figcaption></figure>"
        )
    legend = "".join(
        f'<span style="color:{c}">&#9644; {label}</span> '
        for c, label in zip(_COLOURS, ("reference", "current"), strict=True)
    )
    return f'<p>{legend}</p><div class="hists">{"".join(cells)}</div>'


def _steps(shares: np.ndarray, top: float) -> str:
    """SVG points of a step outline of ``shares`` scaled so ``top`` fills the height."""
    width = _W / len(shares)
    points = [f"0,{_H}"]
    for i, share in enumerate(shares):
        y = _H - (_H - 4) * float(share) / top
        points += [f"{i * width:.1f},{y:.1f}", f"{(i + 1) * width:.1f},{y:.1f}"]
    points.append(f"{_W},{_H}")
    return " ".join(points)


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>pokedex drift report</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; font-size: 0.9em; }}
tr.drift {{ background: #fde2e1; }}
.hists {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; }}
figcaption {{ font-size: 0.85em; text-align: center; }}
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
{feedback}
</body></html>
"""
