"""Cost accounting: replica-seconds per expert and organization, requests, cost per request.

Cost here is what the cluster reserved, not what a replica happened to use: a replica holds its
``num_cpus``/``num_gpus`` whether it is busy or not, so replica-seconds are the honest unit and
an expert at zero replicas costs nothing. The ledger integrates replica counts sampled over
time (each count is taken to hold until the next sample), keeps CPU and GPU experts apart (a
GPU replica-second costs far more), and divides by requests answered for cost per request.
Pure and clock-free: the caller passes timestamps, so tests drive it with made-up times.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from mesh.config import ExpertManifest


@dataclass(frozen=True)
class ExpertPrice:
    """What one replica of an expert reserves, and whose it is."""

    organization: str
    num_cpus: float
    num_gpus: float

    @property
    def device(self) -> str:
        return "gpu" if self.num_gpus > 0 else "cpu"


@dataclass(frozen=True)
class CostRow:
    """One expert's account."""

    expert: str
    organization: str
    device: str
    replicas: int
    replica_seconds: float
    requests: int

    @property
    def cost_per_request(self) -> float:
        """Replica-seconds per request answered (0 with no requests)."""
        return self.replica_seconds / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class OrgCost:
    """One organization's replica-seconds, CPU and GPU apart."""

    organization: str
    cpu_replica_seconds: float
    gpu_replica_seconds: float
    requests: int


def prices(manifests: list[ExpertManifest]) -> dict[str, ExpertPrice]:
    """Each expert version's price (by key, name@version) from its manifest's resources."""
    return {
        m.key: ExpertPrice(m.organization, m.resources.num_cpus, m.resources.num_gpus)
        for m in manifests
    }


class CostLedger:
    """Replica-seconds and requests per expert; thread-safe (the sampler, the request path and
    the metrics scrape touch it from different threads)."""

    def __init__(self, price: Mapping[str, ExpertPrice]) -> None:
        self._price = dict(price)
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._requests: dict[str, int] = {}
        self._replicas: dict[str, int] = {}
        self._answered: dict[str, float] = {}
        self._last: float | None = None

    def set_prices(self, price: Mapping[str, ExpertPrice]) -> None:
        """Experts joined or left (partners publishing): keep their history, price new ones."""
        with self._lock:
            self._price.update(price)

    def organization(self, expert: str) -> str:
        p = self._price.get(expert)
        return p.organization if p else ""

    def sample(self, now: float, replicas: Mapping[str, int]) -> None:
        """Replicas running at ``now`` (seconds, monotonic). The counts of the previous sample
        are charged for the time since it; the new counts start being charged now."""
        with self._lock:
            if self._last is not None and now > self._last:
                dt = now - self._last
                for expert, n in self._replicas.items():
                    self._seconds[expert] = self._seconds.get(expert, 0.0) + n * dt
            self._last = now if self._last is None else max(now, self._last)
            self._replicas.update(replicas)

    def replicas(self, expert: str) -> int | None:
        """Replicas at the last sample; None before the first sample that named it."""
        with self._lock:
            return self._replicas.get(expert)

    def answered(self, expert: str, now: float) -> None:
        """An answer came from ``expert`` at ``now``: it has a replica, whatever the last
        sample said."""
        with self._lock:
            self._answered[expert] = now

    def is_cold(self, expert: str) -> bool:
        """True when a call now would wait for a replica to start: the last sample saw zero
        replicas and no answer came from the expert since. (The answer check keeps the calls
        queued behind a cold start, answered right after it, from all counting as cold.)"""
        with self._lock:
            if self._replicas.get(expert) != 0 or self._last is None:
                return False
            return self._answered.get(expert, float("-inf")) <= self._last

    def count_request(self, expert: str) -> None:
        with self._lock:
            self._requests[expert] = self._requests.get(expert, 0) + 1

    def rows(self) -> list[CostRow]:
        """Every expert known by price or by sample, sorted by name."""
        with self._lock:
            names = sorted(set(self._price) | set(self._replicas) | set(self._requests))
            out = []
            for name in names:
                p = self._price.get(name, ExpertPrice("", 0.0, 0.0))
                out.append(CostRow(name, p.organization, p.device, self._replicas.get(name, 0),
                                   self._seconds.get(name, 0.0), self._requests.get(name, 0)))
            return out

    def row(self, expert: str) -> CostRow | None:
        return next((r for r in self.rows() if r.expert == expert), None)

    def by_organization(self) -> list[OrgCost]:
        """Replica-seconds per organization, CPU and GPU apart, sorted by name."""
        totals: dict[str, list[float]] = {}
        for r in self.rows():
            t = totals.setdefault(r.organization, [0.0, 0.0, 0.0])
            t[0 if r.device == "cpu" else 1] += r.replica_seconds
            t[2] += r.requests
        return [OrgCost(org, t[0], t[1], int(t[2])) for org, t in sorted(totals.items())]
