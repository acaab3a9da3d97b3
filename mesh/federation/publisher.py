"""The node's side of the registry: publish signed manifests, heartbeat, re-register.

A node keeps one lease for all its experts. It heartbeats every interval the hub asked for; when
the hub answers that it no longer knows the lease (its registry was lost) the node registers
again, and while the hub is unreachable (restarting) it keeps trying with capped backoff. So a
hub restart needs nothing from partners.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mesh.config import ExpertManifest
from mesh.errors import ConfigError
from mesh.federation.signing import SignedManifest, sign_manifest
from mesh.federation.tls import TlsFiles, channel_credentials, describe_refusal
from mesh.proto.v1 import registry_pb2, registry_pb2_grpc
from mesh.wire import card_from_manifest

log = logging.getLogger(__name__)
CALL_TIMEOUT_S = 5.0


def check_organization(manifests: Sequence[ExpertManifest], organization: str) -> None:
    """A node publishes its own organization's experts only; say which manifest is not."""
    wrong = [(m.name, m.organization) for m in manifests if m.organization != organization]
    if wrong:
        raise ConfigError("mesh node", [(f"manifest '{n}'.organization",
                                         f"is '{o}', not '{organization}'",
                                         "publish only your organization's experts")
                                        for n, o in wrong])


def registry_channel(hub: str, tls: TlsFiles) -> grpc.aio.Channel:
    """A mutual-TLS channel to the hub's registry."""
    return grpc.aio.secure_channel(hub, channel_credentials(tls), [
        ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000)])


async def register(stub: registry_pb2_grpc.RegistryServiceStub, manifest: ExpertManifest,
                   signed: SignedManifest, advertise: str) -> registry_pb2.RegisterResponse:
    """One Register call."""
    request = registry_pb2.RegisterRequest(
        card=card_from_manifest(manifest), node_address=advertise,
        signed_manifest=signed.payload, signature=signed.signature)
    response: registry_pb2.RegisterResponse = await stub.Register(request,
                                                                  timeout=CALL_TIMEOUT_S)
    return response


class Publisher:
    """Keeps a node's experts registered with a hub for as long as ``run`` runs."""

    def __init__(self, hub: str, tls: TlsFiles, key: Ed25519PrivateKey,
                 manifests: Sequence[ExpertManifest], advertise: str) -> None:
        self.hub = hub
        self.advertise = advertise
        self.signed = [(m, sign_manifest(m, key)) for m in manifests]
        self.channel = registry_channel(hub, tls)
        self.stub = registry_pb2_grpc.RegistryServiceStub(self.channel)
        self.lease = ""
        self.interval_s = 1.0
        self.registered = asyncio.Event()

    async def register_all(self) -> None:
        """Register every expert (same lease for all of them)."""
        for manifest, signed in self.signed:
            response = await register(self.stub, manifest, signed, self.advertise)
            self.lease = response.lease_id
            self.interval_s = response.heartbeat_interval_s or 1.0
        log.info("published %s to %s (lease %s…)", ", ".join(m.name for m, _ in self.signed),
                 self.hub, self.lease[:6])
        self.registered.set()

    async def beat(self) -> bool:
        """One heartbeat; False when the hub forgot the lease."""
        response = await self.stub.Heartbeat(registry_pb2.HeartbeatRequest(lease_id=self.lease),
                                             timeout=max(self.interval_s, 1.0))
        return bool(response.known)

    async def run(self) -> None:
        """Register, then heartbeat until cancelled; re-register whenever needed."""
        backoff = 0.2
        while True:
            try:
                if not self.lease:
                    await self.register_all()
                elif not await self.beat():
                    log.warning("the hub forgot this node's lease; registering again")
                    self.lease = ""
                    continue
                backoff = 0.2
                await asyncio.sleep(self.interval_s)
            except grpc.aio.AioRpcError as e:
                log.warning("hub %s: %s", self.hub, describe_refusal(e, self.hub))
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def close(self) -> None:
        """Close the channel to the hub."""
        await self.channel.close()
