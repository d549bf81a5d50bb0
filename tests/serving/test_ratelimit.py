"""The per-client token buckets: burst, refill, independent clients, bounded memory."""

from __future__ import annotations

from pokedex.serving.ratelimit import RateLimiter, retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(per_minute=60, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    wait = limiter.take("a")
    assert 0.9 < wait <= 1.0  # one token a second
    assert retry_after(wait) == "1"
    assert limiter.take("b") == 0  # another client has its own bucket
    clock.now += 1.0
    assert limiter.take("a") == 0
    assert limiter.take("a") > 0
    clock.now += 3600
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]  # refilled up to the burst only
    assert limiter.take("a") > 0


def test_the_table_of_clients_is_bounded() -> None:
    limiter = RateLimiter(per_minute=1, burst=1, max_clients=100, clock=Clock())
    for i in range(10_000):
        limiter.take(f"10.0.{i // 256}.{i % 256}")
    assert len(limiter) == 100
