"""Drift tests: recent served predictions against the reference profile of the same model.

Each scalar feature (image statistics, confidence, embedding norm) gets a two-sample
Kolmogorov-Smirnov test and a Population Stability Index; the leading embedding dimensions get
a kernel two-sample test (MMD, RBF kernel, permutation p-value). A feature drifts when its test
rejects at ``ALPHA`` divided by the number of tests (Bonferroni, so a check of in-distribution
traffic raises a false alarm at most 1% of the time) and, for scalars, its PSI is at least
``PSI_THRESHOLD`` (so a large window does not flag a shift too small to matter). The verdict is
"drift" when any feature drifts. Numpy and scipy only: the API runs this.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field
from scipy import stats

from pokedex.monitoring.features import EMBEDDING, IMAGE_FEATURES, MODEL_FEATURES

ALPHA = 0.01  # family-wise false-alarm rate of one check
PSI_THRESHOLD = 0.2  # the usual "significant shift" line (0.1-0.2 moderate, > 0.2 major)
PSI_BINS = 10  # reference deciles, plus bins below and above the reference's range
PSI_EPS = 1e-4  # floor of a bin share, so an empty bin has a finite weight
MIN_SAMPLES = 30  # fewer predictions than this give "insufficient_data"
MMD_SAMPLES = 300  # per side: the kernel test subsamples (cost grows with the square)
MMD_PERMUTATIONS = 2000  # the smallest p-value is 1/2001, below ALPHA / tests
SCALARS = (*IMAGE_FEATURES, *MODEL_FEATURES)
TESTS = len(SCALARS) + 1


@dataclass
class Observations:
    """Feature values of a set of images: the reference, or a window of served predictions."""

    values: dict[str, np.ndarray]  # scalar feature -> (N,)
    embedding: np.ndarray  # (N, D) leading embedding dimensions
    start: datetime | None = None  # time of the first and last prediction (served windows)
    end: datetime | None = None

    def __len__(self) -> int:
        return max((len(v) for v in self.values.values()), default=0)


class FeatureDrift(BaseModel):
    """The test of one feature."""

    name: str
    kind: Literal["image", "model"]
    test: Literal["ks", "mmd"]
    statistic: float = Field(description="KS distance, or the squared MMD for the embedding")
    p_value: float
    psi: float | None = Field(None, description="Population Stability Index (scalars)")
    drifted: bool
    reference_mean: float | None = None
    current_mean: float | None = None


class Thresholds(BaseModel):
    """The decision rule, as applied."""

    alpha: float = ALPHA
    per_test_alpha: float = ALPHA / TESTS
    psi: float = PSI_THRESHOLD
    min_samples: int = MIN_SAMPLES


class DriftReport(BaseModel):
    """``GET /v1/monitoring/drift`` and ``pokedex drift``: the verdict and every feature's test."""

    verdict: Literal["drift", "no_drift", "insufficient_data"]
    model: str = Field(description="the model whose predictions and reference were compared")
    window: str = Field(description="last N predictions, or a duration such as 1h")
    predictions: int
    window_start: datetime | None = None
    window_end: datetime | None = None
    reference_split: str
    reference_images: int
    drifted: list[str]
    features: list[FeatureDrift]
    thresholds: Thresholds = Field(default_factory=Thresholds)
    checked_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population Stability Index of ``current`` against ``reference`` on reference quantiles.

    Bins: below the reference minimum, at it, between consecutive deciles, above the maximum,
    so mass moving outside the reference's range counts even for a constant reference.
    """
    cuts = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))

    def shares(x: np.ndarray) -> np.ndarray:
        idx = np.where(x < cuts[0], 0, np.searchsorted(cuts, x, side="left") + 1)
        counts = np.bincount(idx, minlength=len(cuts) + 2)
        return np.maximum(counts / len(x), PSI_EPS)

    r, c = shares(reference), shares(current)
    return float(np.sum((c - r) * np.log(c / r)))


def mmd_test(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    permutations: int = MMD_PERMUTATIONS,
    seed: int = 0,
) -> tuple[float, float]:
    """Squared MMD of two samples ``(m, D)`` and ``(n, D)`` and its permutation p-value.

    RBF kernel on features standardized by the reference, bandwidth by the median heuristic.
    """
    scale = reference.std(axis=0)
    scale[scale == 0] = 1.0
    z = np.concatenate([reference, current]) / scale  # (m + n, D)
    sq = np.sum(z**2, axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0.0)  # (m + n, m + n)
    median = np.median(dist[np.triu_indices(len(z), k=1)])
    kernel = np.exp(-dist / (median if median > 0 else 1.0))
    m, n = len(reference), len(current)
    w = np.concatenate([np.full(m, 1 / m), np.full(n, -1 / n)])  # (m + n,)
    observed = float(w @ kernel @ w)
    rng = np.random.default_rng(seed)
    exceed, done = 0, 0
    while done < permutations:  # in chunks: (m + n, k) permuted weight columns at a time
        k = min(500, permutations - done)
        perm = np.stack([rng.permutation(w) for _ in range(k)], axis=1)
        values = np.einsum("ip,ip->p", perm, kernel @ perm)
        exceed += int(np.sum(values >= observed - 1e-12))
        done += k
    return observed, (1 + exceed) / (1 + permutations)


def _subsample(x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    return x if len(x) <= n else x[np.sort(rng.choice(len(x), n, replace=False))]


def _mean(x: np.ndarray) -> float | None:
    return float(x.mean()) if len(x) else None


def compare(
    reference: Observations,
    current: Observations,
    *,
    model: str,
    window: str,
    reference_split: str,
    seed: int = 0,
) -> DriftReport:
    """Test every feature of ``current`` against ``reference`` and give the verdict."""
    thresholds = Thresholds()
    base = {
        "model": model,
        "window": window,
        "predictions": len(current),
        "window_start": current.start,
        "window_end": current.end,
        "reference_split": reference_split,
        "reference_images": len(reference),
        "thresholds": thresholds,
    }
    if len(current) < MIN_SAMPLES:
        return DriftReport(verdict="insufficient_data", drifted=[], features=[], **base)
    features = [
        _scalar_drift(name, reference.values[name], current.values[name], thresholds)
        for name in SCALARS
    ]
    features.append(_embedding_drift(reference.embedding, current.embedding, thresholds, seed))
    drifted = [f.name for f in features if f.drifted]
    verdict = "drift" if drifted else "no_drift"
    return DriftReport(verdict=verdict, drifted=drifted, features=features, **base)


def _embedding_drift(
    reference: np.ndarray, current: np.ndarray, thresholds: Thresholds, seed: int
) -> FeatureDrift:
    if len(current) < thresholds.min_samples:
        return FeatureDrift(
            name=EMBEDDING, kind="model", test="mmd", statistic=0.0, p_value=1.0, drifted=False
        )
    rng = np.random.default_rng(seed)
    statistic, p_value = mmd_test(
        _subsample(reference, MMD_SAMPLES, rng), _subsample(current, MMD_SAMPLES, rng), seed=seed
    )
    return FeatureDrift(
        name=EMBEDDING,
        kind="model",
        test="mmd",
        statistic=statistic,
        p_value=p_value,
        drifted=p_value < thresholds.per_test_alpha,
    )


def _scalar_drift(
    name: str, reference: np.ndarray, current: np.ndarray, thresholds: Thresholds
) -> FeatureDrift:
    current = current[np.isfinite(current)]  # rows logged before a feature existed hold NULL
    kind: Literal["image", "model"] = "image" if name in IMAGE_FEATURES else "model"
    if len(current) < thresholds.min_samples:
        return FeatureDrift(
            name=name, kind=kind, test="ks", statistic=0.0, p_value=1.0, drifted=False
        )
    result = stats.ks_2samp(reference, current)
    index = psi(reference, current)
    p_value = float(result.pvalue)
    return FeatureDrift(
        name=name,
        kind=kind,
        test="ks",
        statistic=float(result.statistic),
        p_value=p_value,
        psi=index,
        drifted=p_value < thresholds.per_test_alpha and index >= thresholds.psi,
        reference_mean=_mean(reference),
        current_mean=_mean(current),
    )
