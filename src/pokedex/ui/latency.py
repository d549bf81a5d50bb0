"""The API's own latency figures, read from its Prometheus histogram."""

from __future__ import annotations

import math
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

HISTOGRAM = "pokedex_http_request_duration_seconds"


@dataclass(frozen=True)
class Latency:
    """Successful requests to one route since the API started."""

    count: int
    mean_ms: float
    p50_ms: float
    p95_ms: float


def route_latency(metrics_text: str, route: str = "/v1/predict") -> Latency | None:
    """Count, mean and estimated p50/p95 of 2xx answers on ``route``; None before any."""
    buckets: dict[float, float] = {}
    total = count = 0.0
    for family in text_string_to_metric_families(metrics_text):
        if family.name != HISTOGRAM:
            continue
        for sample in family.samples:
            labels = sample.labels
            if labels.get("route") != route or not labels.get("status", "").startswith("2"):
                continue
            if sample.name.endswith("_bucket"):
                le = float(labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
            elif sample.name.endswith("_sum"):
                total += sample.value
            elif sample.name.endswith("_count"):
                count += sample.value
    if not count:
        return None
    cumulative = sorted(buckets.items())  # (upper bound s, requests at or below it)
    return Latency(
        count=int(count),
        mean_ms=1000 * total / count,
        p50_ms=1000 * quantile(cumulative, 0.5),
        p95_ms=1000 * quantile(cumulative, 0.95),
    )


def quantile(cumulative: list[tuple[float, float]], q: float) -> float:
    """Prometheus' ``histogram_quantile``: linear inside the bucket that holds rank q*N."""
    total = cumulative[-1][1]
    rank = q * total
    lower, below = 0.0, 0.0
    for upper, seen in cumulative:
        if seen >= rank:
            if math.isinf(upper):
                return lower  # beyond the last finite bound: report that bound
            span = seen - below
            return lower + (upper - lower) * ((rank - below) / span if span else 1.0)
        lower, below = upper, seen
    return lower
