"""A mesh gRPC server on a mutual-TLS port: like ``grpcutil.server.start_server`` (health,
reflection, error interceptor, ``(server, port)`` back), plus the peer-role check.

Kept separate because grpcutil's factory binds plaintext ports only; see the report for folding
a ``credentials`` parameter into it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from mesh.federation.tls import PeerCheckInterceptor, TlsFiles, server_credentials
from mesh.grpcutil.errors import ErrorInterceptor


async def start_tls_server(
    add_servicers: Sequence[Callable[[grpc.aio.Server], None]],
    service_names: Sequence[str],
    tls: TlsFiles,
    allowed_roles: tuple[str, ...],
    host: str = "127.0.0.1",
    port: int = 0,
    max_message_bytes: int = 16 * 1024 * 1024,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Start an aio server whose only port requires a client certificate from the mesh CA and
    whose services (health and reflection aside) accept only peers in ``allowed_roles``."""
    server = grpc.aio.server(
        interceptors=[ErrorInterceptor(), PeerCheckInterceptor(allowed_roles)],
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
    bound = server.add_secure_port(f"{host}:{port}", server_credentials(tls))
    if bound == 0:
        raise OSError(f"cannot bind {host}:{port} (in use?); pick another port")
    await server.start()
    for name in [*service_names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, bound, health_servicer
