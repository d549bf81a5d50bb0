"""Model: which model serves, how good it is, what it confuses, and how fast the API answers."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from pokedex.serving.schemas import ModelInfo
from pokedex.ui import session
from pokedex.ui.api import ApiError
from pokedex.ui.latency import route_latency

_HEADLINE = {
    "test/acc_top1": "Test top-1",
    "test/acc_top5": "Test top-5",
    "photos/acc_top1": "Photos top-1",
}


def render() -> None:
    """The page."""
    st.title("Model", anchor=False)
    client = session.api()
    info = session.model_info(client)
    st.markdown(
        f"Serving **{info.name}** version `{info.version}` ({info.variant} ONNX): "
        f"{info.num_classes:,} species, {info.input_size}×{info.input_size} px input, "
        f"loaded {info.loaded_at:%Y-%m-%d %H:%M} UTC. "
        f"[API documentation]({session.settings().docs_url})"
    )
    _headline(info)
    _latency()
    left, right = st.columns(2, gap="large")
    with left:
        st.subheader("Metrics", anchor=False)
        _metrics(info)
    with right:
        st.subheader("Most confused species", anchor=False)
        st.caption("Test-split mistakes between two species, both directions counted.")
        _confusions(info)


def _headline(info: ModelInfo) -> None:
    figures = [
        (label, info.metrics[key]) for key, label in _HEADLINE.items() if key in info.metrics
    ]
    if info.open_set is not None:
        figures.append(("Open-set threshold", info.open_set.threshold))
    for column, (label, value) in zip(st.columns(max(1, len(figures))), figures, strict=False):
        shown = f"{value:.1%}" if "top" in label else f"{value:.3g}"
        column.metric(label, shown)


def _latency() -> None:
    st.subheader("Latency", anchor=False)
    try:
        latency = route_latency(session.api().metrics())
    except ApiError as exc:
        st.warning(f"The API's latency figures are unavailable: {exc}")
        return
    last = st.session_state.get("last_latency_ms")
    if latency is None:
        st.caption("No predictions served yet since the API started.")
    else:
        p50, p95, mean, count = st.columns(4)
        p50.metric("p50", f"{latency.p50_ms:.0f} ms")
        p95.metric("p95", f"{latency.p95_ms:.0f} ms")
        mean.metric("mean", f"{latency.mean_ms:.0f} ms")
        count.metric("predictions", f"{latency.count:,}")
        st.caption(
            "POST /v1/predict as the API measures it, since it started "
            "(p50/p95 interpolated within histogram buckets)."
        )
    if last is not None:
        st.caption(f"Your last prediction took {last:.0f} ms inside the API.")


def _metrics(info: ModelInfo) -> None:
    if not info.metrics:
        st.caption("The bundle records no metrics.")
        return
    rows = [{"metric": k, "value": _format(k, v)} for k, v in sorted(info.metrics.items())]
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


def _format(key: str, value: float) -> str:
    if "acc" in key or "f1" in key:
        return f"{value:.1%}"
    return f"{value:,.4g}"


def _confusions(info: ModelInfo) -> None:
    if not info.confused_pairs:
        st.caption(
            "No confusion figures in this bundle: `pokedex evaluate` stores them when it "
            "calibrates the model."
        )
        return
    names = {s.name: s.display_name for s in session.species_index(session.api())}
    rows = []
    for p in info.confused_pairs:
        a, b = names.get(p.a, p.a), names.get(p.b, p.b)
        rows.append(
            {
                "species": f"{a} ↔ {b}",
                "mistakes": p.total,
                "which way": f"{p.a_as_b} {a} taken for {b}, {p.b_as_a} the other way",
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")


render()
