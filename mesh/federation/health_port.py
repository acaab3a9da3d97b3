"""A plaintext port that serves only grpc.health.v1, mirroring a TLS server's health.

Kubernetes' gRPC probes cannot present a client certificate, so a server whose only port wants
one is probed here instead (Helm's ``healthPort``). The health servicer object is shared with
the main server: both ports always report the same status, draining included.
"""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2_grpc


async def serve_health_port(health_servicer: health.aio.HealthServicer, host: str,
                            port: int) -> tuple[grpc.aio.Server, int]:
    """Start the health-only server; returns it and its bound port."""
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind the health port {host}:{port} (in use?)")
    await server.start()
    return server, bound
