"""Reading a split in the model's class order, and the batched reference forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pokedex.core.bundle import Bundle
from pokedex.core.preprocess import canvases_to_input
from pokedex.errors import PokedexError
from pokedex.evaluation.inference import load_split, predict_logits, run_net
from pokedex.models.net import load_net
from tests.evaluation.conftest import CLASSES, SPLIT_SIZES


def test_split_labels_follow_the_model_class_order(processed: Path) -> None:
    data_labels = np.load(processed / "test_labels.npy")
    images, labels = load_split(processed, "test", ["spark", "blaze"])  # a subset, reordered
    per = SPLIT_SIZES["test"]
    assert images.shape == (2 * per, 128, 128, 4)
    kept = np.isin(data_labels, [CLASSES.index("blaze"), CLASSES.index("spark")])
    expected = np.where(data_labels[kept] == CLASSES.index("spark"), 0, 1)
    assert np.array_equal(labels, expected)
    assert np.array_equal(images, np.load(processed / "test_images.npy")[kept])


def test_split_problems_are_clean_errors(processed: Path, tmp_path: Path) -> None:
    with pytest.raises(PokedexError, match="unknown split"):
        load_split(processed, "holdout", CLASSES)
    with pytest.raises(PokedexError, match="data prepare"):
        load_split(tmp_path, "test", CLASSES)
    with pytest.raises(PokedexError, match="no test image"):
        load_split(processed, "test", ["missingno"])


def test_batched_run_matches_the_plain_forward(bundle: Bundle, processed: Path) -> None:
    net = load_net(bundle)
    images, _ = load_split(processed, "val", bundle.classes)
    out = run_net(net, images, bundle.preprocess, features=True, batch_size=5)  # uneven batches
    reference = predict_logits(net, canvases_to_input(images, bundle.preprocess))
    assert out.species.shape == (len(images), len(CLASSES))
    assert out.types.shape == (len(images), 18)
    assert out.features is not None
    assert out.features.shape == (len(images), 512)
    np.testing.assert_allclose(out.species, reference, rtol=1e-4, atol=1e-4)
    assert run_net(net, images[:3], bundle.preprocess).features is None
