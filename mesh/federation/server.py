"""A mesh gRPC server on a mutual-TLS port: ``grpcutil.server.start_server`` (health,
reflection, error interceptor, ``(server, port)`` back) with the mesh CA's credentials and the
peer-role check."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import grpc
from grpc_health.v1 import health

from mesh.federation.tls import PeerCheckInterceptor, TlsFiles, server_credentials
from mesh.grpcutil.server import start_server


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
    return await start_server(
        add_servicers, service_names, host, port, max_message_bytes,
        credentials=server_credentials(tls),
        interceptors=[PeerCheckInterceptor(allowed_roles)],
    )
