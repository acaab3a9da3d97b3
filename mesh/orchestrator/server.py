"""Running the orchestrator: a gRPC server around an ``Orchestrator``, until told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health

from mesh.grpcutil.server import start_server, stop_server
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

    async def stop(self) -> None:
        await stop_server(self.server, self.health, self.grace_s)


async def serve_orchestrator(orchestrator: Orchestrator) -> RunningOrchestrator:
    """Start the Orchestrator gRPC server on the configured host and port."""
    cfg = orchestrator.config
    servicer = OrchestratorServicer(orchestrator)
    server, port, health_servicer = await start_server(
        [lambda s: orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME],
        host=cfg.host,
        port=cfg.port,
        max_message_bytes=cfg.max_message_bytes,
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
