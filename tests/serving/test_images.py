"""Uploaded bytes -> model input: the server sees exactly what evaluation sees."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pokedex.core.preprocess import PreprocessSpec, decode, image_to_input, to_canvas
from pokedex.monitoring.features import canvas_stats
from pokedex.serving.errors import ApiError
from pokedex.serving.images import prepare
from tests.conftest import encode, sprite


@pytest.mark.parametrize("size", [64, 48, 128])  # 48: not a whole-number reduction of 128
@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_the_served_input_and_statistics_are_the_evaluation_ones(size: int, fmt: str) -> None:
    spec = PreprocessSpec(size=size, background=(30, 60, 90))
    data = encode(sprite(3, size=(100, 80)), fmt)
    prepared = prepare(data, SimpleNamespace(spec=spec), max_pixels=10**6)  # type: ignore[arg-type]
    image = decode(data)
    np.testing.assert_allclose(prepared.x, image_to_input(image, spec)[0], atol=1e-6)
    stats = canvas_stats(to_canvas(image)[None], spec.background)
    assert (prepared.stats.width, prepared.stats.height) == (100, 80)
    for name, values in stats.items():
        assert getattr(prepared.stats, name) == pytest.approx(float(values[0]), abs=1e-6), name


def test_bytes_that_are_no_image_are_a_415() -> None:
    spec = SimpleNamespace(spec=PreprocessSpec())
    with pytest.raises(ApiError) as err:
        prepare(b"%PDF-1.7", spec, max_pixels=10**6)  # type: ignore[arg-type]
    assert err.value.status == 415
