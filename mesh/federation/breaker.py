"""Circuit breaker and retry budget for calls to partner nodes: pure logic, injectable clock.

Breaker, one per node: CLOSED lets calls through and counts consecutive failures; after
``failure_threshold`` it OPENs (the node's experts leave routing) for a ban that doubles on every
failed probe up to ``max_open_s``. When the ban ends it is HALF_OPEN: exactly one probe may go
(a health check or a real call); success closes it, failure re-opens it with the longer ban.

Retry budget: retries may add at most ``ratio`` of recent first attempts (plus a small floor per
second), so a dying node is not hit with a retry storm when every request fails.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass


class BreakerState(enum.Enum):
    """Where a breaker stands."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When to open and for how long."""

    failure_threshold: int = 3
    """Consecutive failures that open the breaker."""
    open_s: float = 0.5
    """First ban, seconds."""
    max_open_s: float = 8.0
    """Longest ban, seconds (bans double on each failed probe)."""


class CircuitBreaker:
    """Breaker of one node."""

    def __init__(self, policy: BreakerPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or BreakerPolicy()
        self.clock = clock
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.ban_s = self.policy.open_s
        self.opened_at = 0.0
        self._probe_out = False

    def _refresh(self) -> None:
        if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.ban_s:
            self.state = BreakerState.HALF_OPEN
            self._probe_out = False

    def routable(self) -> bool:
        """True when the router may choose the node's experts (only when CLOSED)."""
        self._refresh()
        return self.state is BreakerState.CLOSED

    def allow(self) -> bool:
        """May a call go now? In HALF_OPEN, only the first caller (the probe) gets True."""
        self._refresh()
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and not self._probe_out:
            self._probe_out = True
            return True
        return False

    def wants_probe(self) -> bool:
        """True when the ban is over and nobody is probing yet (for a background prober)."""
        self._refresh()
        return self.state is BreakerState.HALF_OPEN and not self._probe_out

    def success(self) -> None:
        """A call or probe succeeded: close and forget the failures."""
        self.state = BreakerState.CLOSED
        self.failures = 0
        self.ban_s = self.policy.open_s
        self._probe_out = False

    def failure(self) -> None:
        """A call or probe failed because the node did not answer."""
        self._refresh()
        if self.state is BreakerState.HALF_OPEN:
            self.ban_s = min(self.ban_s * 2, self.policy.max_open_s)
            self._open()
            return
        self.failures += 1
        if self.state is BreakerState.CLOSED and self.failures >= self.policy.failure_threshold:
            self._open()

    def trip(self) -> None:
        """Open now (the registry says the node stopped heartbeating)."""
        if self.state is BreakerState.CLOSED:
            self._open()

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self.opened_at = self.clock()
        self._probe_out = False


@dataclass(frozen=True)
class RetryPolicy:
    """When a failed call to a node is tried again."""

    max_attempts: int = 2
    """Attempts per call, the first included."""
    budget_ratio: float = 0.2
    """Retries allowed per first attempt, over the last ``window_s``."""
    min_per_s: float = 1.0
    """Retries always allowed per second, so a quiet hub can still retry."""
    window_s: float = 10.0
    """How far back the budget looks."""
    backoff_s: float = 0.05
    """Wait before a retry (kept short: the request's deadline is the real bound)."""


class RetryBudget:
    """Counts first attempts and retries over a sliding window (two buckets, cheap)."""

    def __init__(self, policy: RetryPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self._start = clock()
        self._requests = 0.0
        self._retries = 0.0

    def _roll(self) -> None:
        elapsed = self.clock() - self._start
        if elapsed > self.policy.window_s:
            # Halve what is counted each window: recent traffic weighs most.
            windows = int(elapsed // self.policy.window_s)
            factor = 0.5 ** windows
            self._requests *= factor
            self._retries *= factor
            self._start += windows * self.policy.window_s

    def record_request(self) -> None:
        """A first attempt went out."""
        self._roll()
        self._requests += 1

    def try_retry(self) -> bool:
        """Spend one retry if the budget has one."""
        self._roll()
        allowed = (self.policy.budget_ratio * self._requests
                   + self.policy.min_per_s * self.policy.window_s)
        if self._retries + 1 > allowed:
            return False
        self._retries += 1
        return True
