"""Latency figures read back from the API's own Prometheus histogram."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest

from pokedex.serving.prometheus import Metrics
from pokedex.ui.latency import quantile, route_latency


def _text(observations: dict[tuple[str, str], list[float]]) -> str:
    metrics = Metrics()
    for (route, status), values in observations.items():
        for seconds in values:
            metrics.request_latency.labels(route=route, method="POST", status=status).observe(
                seconds
            )
    return generate_latest(metrics.registry).decode()


def test_only_successes_on_the_route_count() -> None:
    text = _text(
        {
            ("/v1/predict", "200"): [0.02] * 10,
            ("/v1/predict", "413"): [9.0] * 50,
            ("/v1/species/{name}", "200"): [7.0] * 50,
        }
    )
    latency = route_latency(text)
    assert latency is not None
    assert latency.count == 10
    assert latency.mean_ms == pytest.approx(20.0)
    # all ten in the (10 ms, 25 ms] bucket: the median is interpolated to its middle
    assert latency.p50_ms == pytest.approx(17.5)
    assert latency.p95_ms == pytest.approx(10 + 15 * 0.95)


def test_no_prediction_yet_is_none() -> None:
    assert route_latency(_text({("/v1/model", "200"): [0.1]})) is None
    assert route_latency("") is None


def test_quantile_matches_prometheus_histogram_quantile() -> None:
    cumulative = [(0.1, 10.0), (0.5, 30.0), (1.0, 40.0), (float("inf"), 40.0)]
    assert quantile(cumulative, 0.25) == pytest.approx(0.1)  # rank 10: the first bound
    assert quantile(cumulative, 0.5) == pytest.approx(0.1 + 0.4 * 10 / 20)
    assert quantile(cumulative, 0.9) == pytest.approx(0.5 + 0.5 * 6 / 10)
    # ranks beyond the last finite bound are reported as that bound
    assert quantile([(0.1, 1.0), (float("inf"), 10.0)], 0.99) == pytest.approx(0.1)
