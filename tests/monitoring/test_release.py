"""The release model on real data: test-split images do not drift from its reference (built on
val), and shifted test images drift on the features the shift moves.

Needs the prepared dataset (data/processed) and the release bundle with its ONNX model and drift
reference; skipped where they are absent (a clean CI checkout has no prepared data).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pokedex.core.bundle import read_bundle
from pokedex.core.predictor import OnnxPredictor, default_variant
from pokedex.evaluation.shifts import SHIFTS
from pokedex.monitoring.drift import DriftReport, compare
from pokedex.monitoring.profile import REFERENCE_FILE, observe, read_profile

ROOT = Path(__file__).resolve().parents[2]
RELEASE = ROOT / "models" / "release"
TEST_IMAGES = ROOT / "data" / "processed" / "test_images.npy"
WINDOW = 500

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (TEST_IMAGES.is_file() and (RELEASE / REFERENCE_FILE).is_file()),
        reason="needs data/processed (pokedex data prepare) and a profiled release bundle",
    ),
]


@pytest.fixture(scope="module")
def release() -> tuple[OnnxPredictor, np.ndarray]:
    """The release model's predictor, as served (the release commits only its served variant;
    fp32 ONNX is rebuilt by `pokedex export`), and a seeded window of test-split canvases."""
    images = np.load(TEST_IMAGES, mmap_mode="r")
    idx = np.sort(np.random.default_rng(0).permutation(len(images))[:WINDOW])
    variant = default_variant(read_bundle(RELEASE))
    return OnnxPredictor(RELEASE, variant=variant, threads=2), np.asarray(images[idx])


def _check(predictor: OnnxPredictor, canvases: np.ndarray) -> DriftReport:
    bundle = read_bundle(RELEASE)
    profile = read_profile(bundle)
    assert profile is not None
    return compare(
        profile.observations,
        observe(predictor, canvases),
        model=bundle.name,
        window=str(WINDOW),
        reference_split=profile.split,
    )


def test_the_test_split_does_not_drift(release: tuple[OnnxPredictor, np.ndarray]) -> None:
    report = _check(*release)
    assert report.verdict == "no_drift", [f for f in report.features if f.drifted]


@pytest.mark.parametrize(
    ("shift", "severity", "moved"),
    [
        ("brightness", 3, {"brightness"}),
        ("blur", 4, {"sharpness"}),
        ("background_noise", 5, {"alpha_coverage", "colourfulness"}),
    ],
)
def test_shifted_test_images_drift_on_the_right_features(
    release: tuple[OnnxPredictor, np.ndarray], shift: str, severity: int, moved: set[str]
) -> None:
    predictor, canvases = release
    shifted = SHIFTS[shift].apply(canvases, severity, predictor.spec.background)
    report = _check(predictor, shifted)
    assert report.verdict == "drift"
    assert moved <= set(report.drifted), report.drifted
