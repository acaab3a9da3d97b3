"""Mutual TLS for hub <-> node gRPC: credentials from files, and who the peer is.

Both sides require a certificate from the mesh CA in the handshake, so a peer without one never
reaches a handler (its client sees UNAVAILABLE with a handshake error; ``describe_refusal``
turns that into words). Past the handshake, ``PeerCheckInterceptor`` reads the peer's
organization and role from its certificate and refuses the wrong role with PERMISSION_DENIED;
handlers that care about the organization (the registry) read ``peer_identity``.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from mesh.errors import ConfigError
from mesh.federation.ca import Identity, identity_of
from mesh.federation.errors import PermissionDenied, Unauthenticated

OPEN_SERVICES = ("/grpc.health.v1.", "/grpc.reflection.")
"""Services any authenticated peer may call whatever its role (probes, debugging)."""


@dataclass(frozen=True)
class TlsFiles:
    """This party's certificate and key, and the mesh CA's certificate (PEM files)."""

    cert: Path
    key: Path
    ca: Path

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(cert, key, ca) bytes; ConfigError naming a missing file."""
        out = []
        for field, path in (("tls-cert", self.cert), ("tls-key", self.key), ("tls-ca", self.ca)):
            try:
                out.append(Path(path).read_bytes())
            except OSError as e:
                raise ConfigError(str(path), [(field, f"cannot be read ({e.strerror})",
                                               "pass the files from `mesh ca issue`")]) from None
        return out[0], out[1], out[2]

    def identity(self) -> Identity:
        """Who our own certificate speaks for."""
        return identity_of(self.read()[0])


def server_credentials(tls: TlsFiles) -> grpc.ServerCredentials:
    """Server side: our certificate, and clients must present one from the mesh CA."""
    cert, key, ca = tls.read()
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca,
                                       require_client_auth=True)


def channel_credentials(tls: TlsFiles) -> grpc.ChannelCredentials:
    """Client side: trust only the mesh CA, and present our certificate."""
    cert, key, ca = tls.read()
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key,
                                        certificate_chain=cert)


def peer_identity(context: grpc.aio.ServicerContext) -> Identity:
    """The caller's organization and role from its verified certificate; Unauthenticated when
    the call came without one (a plaintext port)."""
    auth = context.auth_context()
    pem = auth.get("x509_pem_cert")
    if not pem:
        raise Unauthenticated("this call needs a client certificate from the mesh CA")
    return identity_of(pem[0])


def _accepts_tcp(address: str, timeout_s: float = 1.0) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


def describe_refusal(err: grpc.RpcError, address: str) -> str:
    """Say what a failed mTLS call most likely means, for people reading CLI output.

    A certificate the peer refuses fails the TLS handshake, which gRPC reports as UNAVAILABLE
    like a peer that is down; a peer that still accepts TCP connections was not down, so the
    refusal is named for what it is.
    """
    details = (err.details() or "") if hasattr(err, "details") else ""
    code = err.code() if hasattr(err, "code") else None
    if code == grpc.StatusCode.UNAVAILABLE and _accepts_tcp(address):
        return ("UNAUTHENTICATED: the peer accepts connections but the TLS handshake failed: "
                "it refused our certificate, or we refused its (are both from this mesh's CA, "
                f"and unexpired?) [{details}]")
    return f"{code.name if code else 'ERROR'}: {details}"


class PeerCheckInterceptor(grpc.aio.ServerInterceptor):
    """Refuses calls from peers whose certificate role is not allowed (PERMISSION_DENIED)."""

    def __init__(self, allowed_roles: tuple[str, ...]) -> None:
        self.allowed_roles = allowed_roles

    async def _check(self, context: grpc.aio.ServicerContext) -> None:
        try:
            who = peer_identity(context)
        except Unauthenticated as e:
            await context.abort(e.code, str(e))
        if who.role not in self.allowed_roles:
            err = PermissionDenied(f"a '{who.role}' certificate of '{who.organization}' may not "
                                   f"call this service (allowed: {', '.join(self.allowed_roles)})")
            await context.abort(err.code, str(err))

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(OPEN_SERVICES):
            return handler
        check = self._check
        if handler.unary_unary is not None:
            inner_uu = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await check(context)
                return await inner_uu(request, context)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        if handler.unary_stream is not None:
            inner_us = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext
                                   ) -> AsyncIterator[Any]:
                await check(context)
                async for item in inner_us(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(
                unary_stream, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
        return handler
