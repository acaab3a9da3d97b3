"""Quota arithmetic on one process with a fake clock: the token bucket, concurrency leases and
their expiry, scopes that do not share counters."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.errors import QuotaExceeded
from mesh.tenants import Limits, QuotaLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limiter(tmp_path: Path, clock: Clock) -> Iterator[QuotaLimiter]:
    q = QuotaLimiter(tmp_path / "quota.sqlite3", clock=clock)
    yield q
    q.close()


def _admitted(limiter: QuotaLimiter, limits: Limits, n: int, scope: str = "*") -> int:
    count = 0
    for _ in range(n):
        try:
            limiter.acquire("t", limits, scope=scope)
            count += 1
        except QuotaExceeded:
            pass
    return count


def test_unlimited_needs_no_lease(limiter: QuotaLimiter) -> None:
    assert limiter.acquire("t", Limits()) is None
    limiter.release(None)


def test_bucket_starts_full_then_refills_at_rps(limiter: QuotaLimiter, clock: Clock) -> None:
    limits = Limits(rps=2, burst=5)
    assert _admitted(limiter, limits, 10) == 5
    clock.now += 1.0
    assert _admitted(limiter, limits, 10) == 2
    clock.now += 0.25
    with pytest.raises(QuotaExceeded) as e:
        limiter.acquire("t", limits)
    assert e.value.retry_after_s == pytest.approx(0.25)  # half a token missing at 2/s
    assert "tenant 't'" in str(e.value) and "rps=2" in str(e.value) and "burst=5" in str(e.value)
    assert dict(e.value.trailers())["retry-after-ms"] == "250"
    clock.now += 100.0  # a long quiet spell refills to the burst, no more
    assert _admitted(limiter, limits, 10) == 5


def test_clock_stepping_back_refills_nothing(limiter: QuotaLimiter, clock: Clock) -> None:
    limits = Limits(rps=1, burst=1)
    limiter.acquire("t", limits)
    clock.now -= 30.0
    assert _admitted(limiter, limits, 3) == 0


def test_concurrency_leases_release_and_expire(limiter: QuotaLimiter, clock: Clock) -> None:
    limits = Limits(concurrent=2)
    a = limiter.acquire("t", limits, lease_s=10)
    b = limiter.acquire("t", limits, lease_s=10)
    with pytest.raises(QuotaExceeded, match="concurrent=2") as e:
        limiter.acquire("t", limits)
    assert 0.05 <= e.value.retry_after_s <= 0.25
    assert limiter.in_flight("t") == 2
    limiter.release(a)
    limiter.release(a)  # twice is harmless
    c = limiter.acquire("t", limits, lease_s=10)
    assert b is not None and c is not None and limiter.in_flight("t") == 2
    clock.now += 10.5  # the holder crashed: its leases lapse
    assert limiter.in_flight("t") == 0
    assert _admitted(limiter, limits, 5) == 2


def test_a_refusal_for_concurrency_spends_no_rate_token(limiter: QuotaLimiter) -> None:
    limits = Limits(rps=1, burst=2, concurrent=1)
    lease = limiter.acquire("t", limits)
    with pytest.raises(QuotaExceeded, match="concurren"):
        limiter.acquire("t", limits)
    limiter.release(lease)
    assert limiter.acquire("t", limits) is not None  # the second token is still there


def test_scopes_and_tenants_have_their_own_counters(limiter: QuotaLimiter) -> None:
    limits = Limits(rps=1, burst=1, concurrent=1)
    assert limiter.acquire("t", limits) is not None
    assert limiter.acquire("t", limits, scope="expert-a") is not None
    assert limiter.acquire("t", limits, scope="expert-b") is not None
    assert limiter.acquire("u", limits) is not None
    with pytest.raises(QuotaExceeded, match="expert 'expert-a'"):
        limiter.acquire("t", Limits(rps=1, burst=1), scope="expert-a")


def test_two_limiters_on_one_file_share_the_bucket(tmp_path: Path, clock: Clock) -> None:
    a = QuotaLimiter(tmp_path / "q.sqlite3", clock=clock)
    b = QuotaLimiter(tmp_path / "q.sqlite3", clock=clock)
    try:
        limits = Limits(rps=1, burst=4)
        assert _admitted(a, limits, 3) + _admitted(b, limits, 3) == 4
    finally:
        a.close()
        b.close()
