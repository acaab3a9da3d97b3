"""Building a mesh gRPC server: loopback by default, health and reflection always on,
graceful stop, and ``(server, port)`` back so tests can bind port 0."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mesh.grpcutil.errors import ErrorInterceptor


def deadline_s(context: grpc.aio.ServicerContext) -> float | None:
    """Seconds left of the client's deadline, or None when the client set none."""
    remaining = context.time_remaining()
    return remaining if remaining is not None and remaining < 1e9 else None


async def start_server(
    add_servicers: Sequence[Callable[[grpc.aio.Server], None]],
    service_names: Sequence[str],
    host: str = "127.0.0.1",
    port: int = 0,
    max_message_bytes: int = 16 * 1024 * 1024,
    credentials: grpc.ServerCredentials | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Start an aio server with the given servicers, health checking and reflection.

    ``credentials`` binds a TLS port (mutual TLS for federation) instead of a plaintext one;
    ``interceptors`` run after the error interceptor (e.g. the peer-role check).
    Returns the server, the bound port, and the health servicer (set NOT_SERVING on drain).
    """
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor(), *interceptors],
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    for add in add_servicers:
        add(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME],
        server,
    )
    address = f"{host}:{port}"
    bound = (
        server.add_secure_port(address, credentials) if credentials is not None
        else server.add_insecure_port(address)
    )
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port} (in use?); pick another port")
    await server.start()
    for name in [*service_names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, bound, health_servicer


async def stop_server(
    server: grpc.aio.Server, health_servicer: health.aio.HealthServicer, grace_s: float
) -> None:
    """Stop taking new calls (health NOT_SERVING), let in-flight ones finish for ``grace_s``."""
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace_s)
