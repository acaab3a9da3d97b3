"""Running the orchestrator: a gRPC server around an ``Orchestrator``, until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health

from mesh.grpcutil.server import start_server, stop_server
from mesh.observability.exporter import MetricsServer, ReplicaSampler, serve_metrics
from mesh.observability.metrics import BreakerCollector, breaker_nodes
from mesh.orchestrator.service import Orchestrator
from mesh.orchestrator.servicer import SERVICE_NAME, OrchestratorServicer
from mesh.proto.v1 import orchestrator_pb2_grpc

log = logging.getLogger(__name__)


@dataclass
class RunningOrchestrator:
    """A started server: its port, and how to stop it gracefully."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    grace_s: float
    observability: Observability | None = None

    async def stop(self) -> None:
        await stop_server(self.server, self.health, self.grace_s)
        if self.observability is not None:
            await self.observability.stop()


@dataclass
class Observability:
    """The orchestrator's /metrics endpoint and the replica sampler behind its cost figures."""

    sampler: ReplicaSampler
    http: MetricsServer | None = None

    @property
    def port(self) -> int | None:
        return self.http.port if self.http is not None else None

    async def stop(self) -> None:
        await self.sampler.stop()
        if self.http is not None:
            await asyncio.to_thread(self.http.stop)


async def start_observability(orchestrator: Orchestrator, ray_metrics: bool) -> Observability:
    """Start sampling replicas and, unless ``metrics_port`` is None, serve /metrics on the
    orchestrator's host. ``ray_metrics`` passes Ray Serve's ``ray_serve_*`` series through
    (the orchestrator must have joined the cluster as a driver)."""
    cfg = orchestrator.config
    metrics = orchestrator.metrics
    metrics.add_collector(BreakerCollector(breaker_nodes(orchestrator.transport)))
    if ray_metrics:
        from mesh.observability.ray_metrics import RayServeCollector

        metrics.add_collector(RayServeCollector())
    sampler = ReplicaSampler(metrics, orchestrator.transport.states, cfg.metrics_sample_s)
    await sampler.sample_once()
    sampler.start()
    http = None
    if cfg.metrics_port is not None:
        http = await asyncio.to_thread(serve_metrics, metrics, cfg.host, cfg.metrics_port)
        log.info("metrics on http://%s:%d/metrics", cfg.host, http.port)
    return Observability(sampler, http)


async def serve_orchestrator(orchestrator: Orchestrator,
                             credentials: grpc.ServerCredentials | None = None
                             ) -> RunningOrchestrator:
    """Start the Orchestrator gRPC server on the configured host and port; ``credentials``
    (mutual TLS, from the config's tls_* files) make clients present a certificate."""
    cfg = orchestrator.config
    servicer = OrchestratorServicer(orchestrator)
    server, port, health_servicer = await start_server(
        [lambda s: orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME],
        host=cfg.host,
        port=cfg.port,
        max_message_bytes=cfg.max_message_bytes,
        credentials=credentials,
    )
    log.info("orchestrator serving on %s:%d", cfg.host, port)
    return RunningOrchestrator(server, port, health_servicer, cfg.grace_s)


async def run_until_signalled(running: RunningOrchestrator) -> None:
    """Serve until SIGTERM or SIGINT, then drain in-flight requests and stop."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining (grace %.1f s)", running.grace_s)
    await running.stop()
