"""The drift tests on their own: no drift in distribution, drift on the features a shift moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pokedex.core.bundle import read_bundle
from pokedex.core.predictor import OnnxPredictor
from pokedex.monitoring.drift import (
    MIN_SAMPLES,
    PSI_THRESHOLD,
    SCALARS,
    DriftReport,
    Observations,
    compare,
    mmd_test,
    psi,
)
from pokedex.monitoring.profile import observe, read_profile
from tests.monitoring.conftest import (
    WINDOW,
    Shift,
    blurred,
    canvases,
    dark,
    photo_background,
    unchanged,
)


def test_psi_is_zero_for_the_same_sample_and_large_for_a_moved_one() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=5000)
    assert psi(ref, ref) == pytest.approx(0.0, abs=1e-9)
    assert psi(ref, rng.normal(size=5000)) < 0.05
    assert psi(ref, rng.normal(1.0, 1.0, size=5000)) > PSI_THRESHOLD


def test_psi_sees_mass_leaving_a_constant_reference() -> None:
    ref = np.ones(1000)  # e.g. alpha coverage of opaque pictures
    assert psi(ref, np.ones(200)) == pytest.approx(0.0, abs=1e-9)
    assert psi(ref, np.full(200, 0.4)) > PSI_THRESHOLD
    assert psi(ref, np.full(200, 1.5)) > PSI_THRESHOLD


def test_mmd_separates_moved_embeddings_only() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(300, 8))
    _, p_same = mmd_test(ref, rng.normal(size=(100, 8)), permutations=500)
    stat, p_moved = mmd_test(ref, rng.normal(0.5, 1.0, size=(100, 8)), permutations=500)
    assert p_same > 0.01
    assert p_moved == pytest.approx(1 / 501)  # no permutation comes close
    assert stat > 0


def _window(values: dict[str, np.ndarray], embedding: np.ndarray) -> Observations:
    return Observations(values=values, embedding=embedding)


def test_too_few_predictions_is_no_verdict() -> None:
    rng = np.random.default_rng(2)
    ref = _window({n: rng.normal(size=500) for n in SCALARS}, rng.normal(size=(500, 8)))
    few = MIN_SAMPLES - 1
    current = _window({n: rng.normal(5, 1, size=few) for n in SCALARS}, rng.normal(size=(few, 8)))
    report = compare(ref, current, model="m@1", window="500", reference_split="val")
    assert report.verdict == "insufficient_data"
    assert report.predictions == few
    assert report.features == []


def _check(bundle: Path, shift: Shift, seeds: range) -> DriftReport:
    profile = read_profile(read_bundle(bundle))
    assert profile is not None
    predictor = OnnxPredictor(bundle, variant="fp32", threads=1)
    current = observe(predictor, canvases(seeds, shift))
    return compare(
        profile.observations,
        current,
        model=profile.model,
        window=str(WINDOW),
        reference_split="val",
    )


@pytest.mark.parametrize("start", [1000, 2000])
def test_in_distribution_sprites_do_not_drift(profiled_bundle: Path, start: int) -> None:
    report = _check(profiled_bundle, unchanged, range(start, start + WINDOW))
    assert report.verdict == "no_drift", [f for f in report.features if f.drifted]
    assert {f.name for f in report.features} == {*SCALARS, "embedding"}


@pytest.mark.parametrize(
    ("shift", "moved", "unmoved"),
    [
        (dark, {"brightness", "contrast"}, {"alpha_coverage"}),
        (blurred, {"sharpness"}, {"brightness", "alpha_coverage"}),
        (photo_background, {"alpha_coverage", "colourfulness"}, set()),
    ],
    ids=["dark", "blurred", "photo-background"],
)
def test_shifted_sprites_drift_on_the_features_they_move(
    profiled_bundle: Path, shift: Shift, moved: set[str], unmoved: set[str]
) -> None:
    report = _check(profiled_bundle, shift, range(3000, 3000 + WINDOW))
    assert report.verdict == "drift"
    assert moved <= set(report.drifted)
    assert not unmoved & set(report.drifted)
    by_name = {f.name: f for f in report.features}
    for name in moved:
        assert by_name[name].psi is not None
        assert by_name[name].psi >= PSI_THRESHOLD
        assert by_name[name].p_value < report.thresholds.per_test_alpha
