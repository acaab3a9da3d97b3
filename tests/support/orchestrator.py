"""A real orchestrator gRPC server on a free loopback port, run in a background thread so a
test drives it with the ordinary synchronous gRPC client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc

from mesh.config import ExpertManifest, OrchestratorConfig
from mesh.experts.transport import ExpertTransport
from mesh.orchestrator.server import serve_orchestrator
from mesh.orchestrator.service import Orchestrator
from mesh.orchestrator.sessions import SessionStore
from mesh.proto.v1 import orchestrator_pb2_grpc


@contextmanager
def orchestrator_stub(
    manifests: Sequence[ExpertManifest], transport: ExpertTransport, state: Path
) -> Iterator[orchestrator_pb2_grpc.OrchestratorServiceStub]:
    """Serve an Orchestrator over ``transport`` and yield a stub connected to it."""
    sessions = SessionStore(state / "sessions.sqlite3")
    orchestrator = Orchestrator(manifests, transport, sessions, OrchestratorConfig(port=0))
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        holder["server"] = loop.run_until_complete(serve_orchestrator(orchestrator))
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(60), "orchestrator did not start"
    server = holder["server"]
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")  # type: ignore[attr-defined]
    try:
        yield orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
    finally:
        channel.close()
        stop = server.stop()  # type: ignore[attr-defined]
        asyncio.run_coroutine_threadsafe(stop, loop).result(15)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(15)
