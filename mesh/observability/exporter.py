"""Serving /metrics, and sampling replica counts into the cost ledger.

The HTTP server is prometheus_client's own (a thread beside the gRPC server's event loop), so a
slow scrape — Ray's pass-through page is large — never holds up a request. The sampler asks the
transport for replica counts every ``period_s``: those counts feed replica-seconds, the replicas
gauge, and the orchestrator's cold-start check (an expert seen at zero replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from prometheus_client import start_http_server

from mesh.observability.metrics import MeshMetrics

log = logging.getLogger(__name__)


class _HasReplicas(Protocol):
    @property
    def replicas(self) -> int: ...


States = Callable[[], Awaitable[Mapping[str, _HasReplicas]]]


@dataclass
class MetricsServer:
    """A running /metrics endpoint."""

    server: Any
    thread: Any
    port: int

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def serve_metrics(metrics: MeshMetrics, host: str, port: int) -> MetricsServer:
    """Serve ``metrics`` on http://host:port/metrics (port 0 picks a free one)."""
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    return MetricsServer(server, thread, int(server.server_port))


class ReplicaSampler:
    """Feeds the ledger and the replicas gauge from ``states`` every ``period_s`` seconds."""

    def __init__(self, metrics: MeshMetrics, states: States, period_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.metrics = metrics
        self.states = states
        self.period_s = period_s
        self.clock = clock
        self._task: asyncio.Task[None] | None = None

    async def sample_once(self) -> None:
        """One sample; a failed read keeps the previous counts (charged until the next one)."""
        try:
            states = await asyncio.wait_for(self.states(), max(self.period_s * 5, 2.0))
        except Exception as e:  # Serve busy or restarting: try next period
            log.warning("cannot read replica counts: %s", e)
            return
        counts = {name: s.replicas for name, s in states.items()}
        self.metrics.ledger.sample(self.clock(), counts)
        self.metrics.set_replicas(counts)

    async def _run(self) -> None:
        while True:
            await self.sample_once()
            await asyncio.sleep(self.period_s)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
