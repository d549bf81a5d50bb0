"""The embedding explorer: a UMAP of penultimate features as interactive HTML and as a PNG."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from pokedex.dex.colours import TYPE_COLOURS, UNKNOWN_COLOUR
from pokedex.errors import PokedexError

UNKNOWN = "unknown"
MIN_POINTS = 8  # UMAP needs a neighbourhood to embed


def project(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D UMAP ``(N, 2)`` of features ``(N, D)``; fixed seed, so reruns give the same picture."""
    if len(features) < MIN_POINTS:
        raise PokedexError(f"an embedding needs at least {MIN_POINTS} images, got {len(features)}")
    try:
        import umap
    except ImportError as exc:
        raise PokedexError("--embeddings needs `pip install umap-learn plotly`") from exc
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=min(15, len(features) - 1),
        min_dist=0.1,
        # penultimate features of a softmax classifier differ by angle more than by norm
        metric="cosine",
        random_state=seed,
        n_jobs=1,  # a seeded UMAP runs on one thread anyway; saying so silences its warning
    )
    return np.asarray(reducer.fit_transform(features), dtype=np.float32)


def _primary(types: Sequence[str]) -> str:
    return types[0] if types else UNKNOWN


def embeddings_html(
    xy: np.ndarray, species: list[str], types: list[Sequence[str]], predicted: list[str]
) -> str:
    """Interactive scatter: one trace per primary type; hover shows species, types, prediction."""
    try:
        import plotly.graph_objects as go
    except ImportError as exc:
        raise PokedexError("--embeddings needs `pip install umap-learn plotly`") from exc
    primary = np.array([_primary(t) for t in types])
    fig = go.Figure()
    for type_ in [*TYPE_COLOURS, UNKNOWN]:
        idx = np.flatnonzero(primary == type_)
        if not len(idx):
            continue
        hover = [
            f"<b>{species[i]}</b><br>{'/'.join(types[i]) or UNKNOWN}<br>predicted: {predicted[i]}"
            for i in idx
        ]
        fig.add_trace(
            go.Scattergl(
                x=xy[idx, 0],
                y=xy[idx, 1],
                mode="markers",
                name=type_,
                text=hover,
                hovertemplate="%{text}<extra></extra>",
                marker={
                    "size": 5,
                    "color": TYPE_COLOURS.get(type_, UNKNOWN_COLOUR),
                    "opacity": 0.8,
                },
            )
        )
    fig.update_layout(
        title="Penultimate features (UMAP), coloured by primary type",
        xaxis={"visible": False},
        yaxis={"visible": False},
        legend_title_text="primary type",
        template="plotly_white",
        width=1000,
        height=750,
    )
    # plotly.js from its CDN: the file stays ~100 KB instead of ~4.5 MB per evaluation
    return fig.to_html(include_plotlyjs="cdn", full_html=True)


def embeddings_record(
    xy: np.ndarray,
    species: list[str],
    types: list[Sequence[str]],
    predicted: list[str],
    split: str,
) -> dict[str, Any]:
    """The projection as JSON columns (the API's ``EmbeddingMap``), rounded to keep it small."""
    return {
        "split": split,
        "x": [round(float(v), 4) for v in xy[:, 0]],
        "y": [round(float(v), 4) for v in xy[:, 1]],
        "species": species,
        "predicted": predicted,
        "types": [list(t) for t in types],
    }


def embeddings_png(xy: np.ndarray, types: list[Sequence[str]]) -> bytes:
    """The same scatter as a static PNG."""
    from matplotlib.figure import Figure

    primary = np.array([_primary(t) for t in types])
    fig = Figure(figsize=(9, 7), layout="constrained")
    ax = fig.subplots()
    size = float(np.clip(20_000 / max(1, len(xy)), 6, 40))  # few points: bigger dots
    for type_ in [*TYPE_COLOURS, UNKNOWN]:
        idx = np.flatnonzero(primary == type_)
        if len(idx):
            ax.scatter(
                xy[idx, 0],
                xy[idx, 1],
                s=size,
                alpha=0.8,
                label=type_,
                color=TYPE_COLOURS.get(type_, UNKNOWN_COLOUR),
                linewidths=0,
            )
    ax.set(xticks=[], yticks=[], title="Penultimate features (UMAP), coloured by primary type")
    ax.legend(
        loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, markerscale=2, frameon=False
    )
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    return buf.getvalue()
