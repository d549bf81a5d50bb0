"""What `pokedex evaluate` writes: markdown report, per-species CSV, reliability diagram."""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from pokedex.evaluation.calibration import Reliability

WORST_SHOWN = 15  # species listed in the report's "hardest species" table
WEAK_REJECTION = 0.5  # false-accept rate above which the report warns
DPI = 100


def per_species_csv(rows: list[dict[str, Any]]) -> str:
    """The per-species rows as CSV text, hardest species first."""
    buf = io.StringIO()
    fields = ["species", "n", "acc_top1", "acc_top5", "most_confused_with", "times"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: (r["acc_top1"], r["species"])):
        writer.writerow(
            {**row, "acc_top1": f"{row['acc_top1']:.4f}", "acc_top5": f"{row['acc_top5']:.4f}"}
        )
    return buf.getvalue()


def reliability_png(before: Reliability, after: Reliability, temperature: float) -> bytes:
    """Reliability diagram before and after temperature scaling, as PNG bytes.

    Top: accuracy per confidence bin against the diagonal; bottom: the share of predictions
    in each bin, so a bar built on three images reads as such.
    """
    from matplotlib.figure import Figure  # the object API needs no global backend or pyplot state

    fig = Figure(figsize=(9, 5.2), layout="constrained")
    axes = fig.subplots(2, 2, sharex=True, height_ratios=(3, 1))
    panels = ((before, "before (T = 1)"), (after, f"after (T = {temperature:.3g})"))
    for col, (rel, title) in enumerate(panels):
        top, bottom = axes[0, col], axes[1, col]
        width = rel.edges[1] - rel.edges[0]
        centres = rel.edges[:-1] + width / 2
        filled = rel.count > 0
        x, acc, conf = centres[filled], rel.accuracy[filled], rel.confidence[filled]
        top.bar(x, acc, width=width * 0.95, color="#4c72b0", label="accuracy")
        # the gap spans accuracy..confidence either way: hatched, so it never hides the bar
        top.bar(
            x,
            np.abs(conf - acc),
            bottom=np.minimum(acc, conf),
            width=width * 0.95,
            facecolor="none",
            edgecolor="#c44e52",
            hatch="///",
            linewidth=0.8,
            label="gap to mean confidence",
        )
        top.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
        top.set(xlim=(0, 1), ylim=(0, 1), title=f"{title}: ECE {rel.ece:.2%}")
        bottom.bar(centres, rel.count / max(1, rel.count.sum()), width=width * 0.95, color="grey")
        bottom.set(xlabel="confidence (top-1 probability)", ylim=(0, 1))
    axes[0, 0].set_ylabel("accuracy")
    axes[1, 0].set_ylabel("share")
    axes[0, 0].legend(loc="upper left", fontsize=8)
    buf = io.BytesIO()
    # no Software metadata: the same numbers give byte-identical files across versions
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _table(rows: list[list[Any]]) -> str:
    head, *body = [[str(cell).replace("|", "\\|") for cell in row] for row in rows]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def render_report(metrics: dict[str, Any], rows: list[dict[str, Any]], figures: list[str]) -> str:
    """The markdown report for one evaluation."""
    m = metrics
    cal, osr = m["calibration"], m["open_set"]
    sections = [
        f"# Evaluation of `{m['model']}` on the {m['split']} split\n\n"
        f"{int(m['n'])} images of {m['species']} species; data version `{m['data_version']}`.",
        "## Accuracy\n\n"
        + _table(
            [
                ["metric", "value"],
                ["top-1", _pct(m["acc_top1"])],
                ["top-5", _pct(m["acc_top5"])],
                ["macro top-1 (mean over species)", _pct(m["acc_macro"])],
                ["types F1 (micro, 18 labels)", _pct(m.get("types_f1"))],
            ]
        ),
        "## Calibration\n\n"
        f"Temperature {cal['temperature']:.4g} "
        f"({'fitted on val by NLL' if cal['fitted'] else 'as stored in the bundle'}); "
        f"expected calibration error over {cal['bins']} bins:\n\n"
        + _table(
            [
                ["", "ECE", "NLL"],
                ["before (T = 1)", _pct(cal["ece_before"]), f"{cal['nll_before']:.4f}"],
                ["after", _pct(cal["ece_after"]), f"{cal['nll_after']:.4f}"],
            ]
        )
        + "\n\n![reliability diagram](reliability.png)",
        _open_set_section(osr),
    ]
    if "photos" in m:
        p = m["photos"]
        sections.append(
            f"## Real photos\n\n{int(p['n'])} labelled photos: top-1 {_pct(p['acc_top1'])}, "
            f"top-5 {_pct(p['acc_top5'])}, macro {_pct(p['acc_macro'])}; "
            f"{_pct(p['accepted'])} of them pass the open-set threshold."
        )
    pairs = [["species A", "species B", "A taken for B", "B taken for A", "total"]]
    pairs += [[p["a"], p["b"], p["a_as_b"], p["b_as_a"], p["total"]] for p in m["confused_pairs"]]
    sections.append(
        f"## Most confused pairs\n\n{_table(pairs) if len(pairs) > 1 else 'No mistakes.'}"
    )
    worst = sorted(rows, key=lambda r: (r["acc_top1"], r["species"]))[:WORST_SHOWN]
    hard = [["species", "images", "top-1", "top-5", "most often taken for"]]
    hard += [
        [
            r["species"],
            r["n"],
            _pct(r["acc_top1"]),
            _pct(r["acc_top5"]),
            r["most_confused_with"] or "-",
        ]
        for r in worst
    ]
    sections.append(
        f"## Hardest species\n\nAll species are in `per_species.csv`.\n\n{_table(hard)}"
    )
    if "embeddings.png" in figures:
        sections.append(
            "## Embeddings\n\nUMAP of the penultimate features, coloured by primary type "
            "([interactive](embeddings.html)).\n\n![embeddings](embeddings.png)"
        )
    return "\n\n".join(sections) + "\n"


def _open_set_section(osr: dict[str, Any]) -> str:
    rows = [["score", "threshold", "val false accept", "val AUROC"]]
    for kind, c in osr["candidates"].items():
        rows.append(
            [kind, f"{c['threshold']:.4g}", _pct(c["val_false_accept"]), f"{c['val_auroc']:.3f}"]
        )
    kinds = [["generated kind", "false accept"]]
    kinds += [[k, _pct(v)] for k, v in osr["false_accept_by_kind"].items()]
    warning = ""
    if osr["false_accept"] > WEAK_REJECTION:
        warning = (
            f"\n\n**Rejection is weak for this model**: {_pct(osr['false_accept'])} of the "
            "generated non-Pokémon pass the threshold, so `known: false` will rarely fire. "
            "AUROC near 0.5 means the score does not tell sprites from those images at all."
        )
    return (
        "## Open-set rejection\n\n"
        f"Score `{osr['score']}` (the candidate that let fewest generated unknowns through on "
        f"val), threshold {osr['threshold']:.4g}, chosen to accept {osr['accept_target']:.0%} "
        "of val sprites. Measured on held-out sets:\n\n"
        + _table(
            [
                ["", "rate"],
                [f"false reject ({osr['n_known']} test sprites)", _pct(osr["false_reject"])],
                [
                    f"false accept ({osr['n_unknown']} generated non-Pokémon)",
                    _pct(osr["false_accept"]),
                ],
            ]
        )
        + warning
        + "\n\n"
        + _table(rows)
        + "\n\n"
        + _table(kinds)
    )
