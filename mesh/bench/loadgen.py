"""A closed-loop load generator over grpc.aio: ``concurrency`` callers, ``requests`` calls in all.

asyncio rather than threads: on a 2-core machine a thread pool of sync gRPC stubs spends its
time fighting over the GIL, which would be charged to whatever is being measured.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

Call = Callable[[], Awaitable[Any]]


@dataclass(frozen=True)
class Stats:
    """Latency and throughput of one measurement (the JSON shape of one cell)."""

    p50_ms: float
    p99_ms: float
    rps: float

    def as_dict(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in asdict(self).items()}


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of already sorted values.

    Nearest-rank never invents a value between two samples, so p99 of a small run is a latency
    that really happened (the maximum for fewer than 100 samples).
    """
    if not sorted_values:
        raise ValueError("no samples")
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def run_load(call: Call, requests: int, concurrency: int) -> Stats:
    """Issue ``requests`` calls with ``concurrency`` in flight; any failed call aborts the run.

    A bench that drops failures would report the latency of errors, so the first exception
    propagates with the number of calls that had succeeded.
    """
    if requests < 1 or concurrency < 1:
        raise ValueError("requests and concurrency must be at least 1")
    latencies: list[float] = []
    remaining = requests

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    try:
        await asyncio.gather(*(caller() for _ in range(min(concurrency, requests))))
    except Exception as e:
        raise RuntimeError(f"call failed after {len(latencies)} good ones: {e}") from e
    wall = time.perf_counter() - start
    latencies.sort()
    return Stats(
        p50_ms=percentile(latencies, 50) * 1000,
        p99_ms=percentile(latencies, 99) * 1000,
        rps=len(latencies) / wall,
    )
