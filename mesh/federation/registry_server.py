"""The RegistryService servicer: validate, convert, call ``Registry``; and its mTLS server.

Only node certificates may call it (``PeerCheckInterceptor``); which organization may publish
what is the registry's decision, made from the caller's certificate.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health

from mesh.errors import InvalidInput
from mesh.federation.registry import Entry, EventKind, Registry
from mesh.federation.server import start_tls_server
from mesh.federation.signing import SignedManifest
from mesh.federation.tls import TlsFiles, peer_identity
from mesh.proto.v1 import registry_pb2, registry_pb2_grpc
from mesh.wire import card_from_manifest

SERVICE_NAME = registry_pb2.DESCRIPTOR.services_by_name["RegistryService"].full_name
_KINDS = {
    EventKind.UPSERT: registry_pb2.EVENT_KIND_UPSERT,
    EventKind.REMOVE: registry_pb2.EVENT_KIND_REMOVE,
    EventKind.HEALTH: registry_pb2.EVENT_KIND_HEALTH,
}


def entry_to_wire(e: Entry) -> registry_pb2.RegistryEntry:
    """A registry entry as the proto message."""
    return registry_pb2.RegistryEntry(card=card_from_manifest(e.manifest),
                                      node_address=e.node_address,
                                      last_heartbeat=e.last_heartbeat, healthy=e.healthy)


class RegistryServicer(registry_pb2_grpc.RegistryServiceServicer):
    """RegistryService over one ``Registry``."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def Register(self, request: registry_pb2.RegisterRequest,
                       context: grpc.aio.ServicerContext) -> registry_pb2.RegisterResponse:
        if not request.signed_manifest:
            raise InvalidInput("signed_manifest", "is empty; send the signed manifest")
        peer = peer_identity(context)
        signed = SignedManifest(request.signed_manifest, request.signature)
        # request.card is not read: the hub derives the card from the signed manifest, so
        # nothing unsigned can change what the router and operators see.
        lease, interval = self.registry.register(signed, request.node_address, peer)
        return registry_pb2.RegisterResponse(lease_id=lease, heartbeat_interval_s=interval)

    async def Deregister(self, request: registry_pb2.DeregisterRequest,
                         context: grpc.aio.ServicerContext) -> registry_pb2.DeregisterResponse:
        self.registry.deregister(request.expert, request.lease_id, peer_identity(context))
        return registry_pb2.DeregisterResponse()

    async def Heartbeat(self, request: registry_pb2.HeartbeatRequest,
                        context: grpc.aio.ServicerContext) -> registry_pb2.HeartbeatResponse:
        known = self.registry.heartbeat(request.lease_id, peer_identity(context))
        return registry_pb2.HeartbeatResponse(known=known)

    async def List(self, request: registry_pb2.ListRequest,
                   context: grpc.aio.ServicerContext) -> registry_pb2.ListResponse:
        return registry_pb2.ListResponse(
            entries=[entry_to_wire(e) for e in self.registry.listing()])

    async def Watch(self, request: registry_pb2.WatchRequest,
                    context: grpc.aio.ServicerContext) -> AsyncIterator[registry_pb2.RegistryEvent]:
        queue = self.registry.subscribe()
        try:
            for e in self.registry.listing():
                yield registry_pb2.RegistryEvent(kind=registry_pb2.EVENT_KIND_UPSERT,
                                                 entry=entry_to_wire(e))
            while True:
                event = await queue.get()
                yield registry_pb2.RegistryEvent(kind=_KINDS[event.kind],
                                                 entry=entry_to_wire(event.entry))
        finally:
            self.registry.unsubscribe(queue)


async def serve_registry(registry: Registry, tls: TlsFiles, host: str = "127.0.0.1",
                         port: int = 0) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Start RegistryService on a mutual-TLS port that only node certificates may call."""
    servicer = RegistryServicer(registry)
    return await start_tls_server(
        [lambda s: registry_pb2_grpc.add_RegistryServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME], tls, allowed_roles=("node",), host=host, port=port,
    )
