"""Circuit breaker and retry budget, on a fake clock."""

from __future__ import annotations

from mesh.federation.breaker import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    RetryBudget,
    RetryPolicy,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_consecutive_failures_and_leaves_routing() -> None:
    clock = Clock()
    b = CircuitBreaker(BreakerPolicy(failure_threshold=3, open_s=1.0), clock)
    b.failure()
    b.failure()
    assert b.routable() and b.allow()
    b.failure()
    assert b.state is BreakerState.OPEN and not b.routable() and not b.allow()


def test_a_success_resets_the_count() -> None:
    b = CircuitBreaker(BreakerPolicy(failure_threshold=2), Clock())
    b.failure()
    b.success()
    b.failure()
    assert b.state is BreakerState.CLOSED


def test_half_open_lets_exactly_one_probe_through() -> None:
    clock = Clock()
    b = CircuitBreaker(BreakerPolicy(failure_threshold=1, open_s=1.0), clock)
    b.failure()
    clock.now += 1.0
    assert b.wants_probe() and not b.routable()
    assert b.allow()  # the probe
    assert not b.allow()  # everyone else waits for its verdict
    b.success()
    assert b.routable() and b.state is BreakerState.CLOSED


def test_failed_probe_doubles_the_ban_up_to_the_cap() -> None:
    clock = Clock()
    b = CircuitBreaker(BreakerPolicy(failure_threshold=1, open_s=1.0, max_open_s=3.0), clock)
    b.failure()
    bans = []
    for _ in range(4):
        clock.now += b.ban_s
        assert b.allow()
        b.failure()
        bans.append(b.ban_s)
    assert bans == [2.0, 3.0, 3.0, 3.0]
    clock.now += 2.9
    assert not b.allow()


def test_trip_opens_a_closed_breaker() -> None:
    b = CircuitBreaker(BreakerPolicy(), Clock())
    b.trip()
    assert not b.routable()


def test_retry_budget_caps_retries_to_a_share_of_requests() -> None:
    clock = Clock()
    budget = RetryBudget(RetryPolicy(budget_ratio=0.1, min_per_s=0.0, window_s=10.0), clock)
    for _ in range(100):
        budget.record_request()
    granted = sum(budget.try_retry() for _ in range(50))
    assert granted == 10


def test_retry_budget_refills_as_the_window_moves() -> None:
    clock = Clock()
    budget = RetryBudget(RetryPolicy(budget_ratio=0.0, min_per_s=0.2, window_s=10.0), clock)
    assert sum(budget.try_retry() for _ in range(5)) == 2
    clock.now += 25.0
    assert budget.try_retry()
