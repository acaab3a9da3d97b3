"""Hub <-> node over real gRPC with mutual TLS on loopback, in one process: the registry's
refusals (unsigned, forged, re-namespaced, wrong certificate), the node's face reached by the
hub's remote transport (deadline carried on the wire), and a federated orchestrator routing to
a published partner expert, dropping it on revocation and when its node stops."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest

from mesh.config import ExpertManifest, FederationConfig, load_manifest
from mesh.errors import ExpertDeadlineExceeded
from mesh.experts.transport import ExpertState, LocalTransport
from mesh.federation.bootstrap import Party, make_ca, make_party
from mesh.federation.hub import FederationHub
from mesh.federation.keys import load_signing_key
from mesh.federation.publisher import Publisher
from mesh.federation.registry import Registry
from mesh.federation.registry_server import serve_registry
from mesh.federation.remote import RemoteTransport
from mesh.federation.server import start_tls_server
from mesh.federation.signing import SignedManifest, canonical_payload, sign_manifest
from mesh.federation.store import RegistryStore
from mesh.federation.tls import TlsFiles, channel_credentials
from mesh.federation.trust import TrustFile, TrustList, load_trust, save_trust
from mesh.orchestrator.service import AskCommand, Orchestrator
from mesh.orchestrator.sessions import SessionStore
from mesh.proto.v1 import expert_pb2, expert_pb2_grpc, registry_pb2, registry_pb2_grpc
from mesh.serving.node import SERVICE_NAME, ExpertNodeServicer
from mesh.types import ExpertInput, ExpertOutput

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "mesh" / "demo" / "manifests"
AGRI, HOSPITAL = "prairie-agri-institute", "lakeside-hospital"
QUESTION = "Which barley variety yields best at Morris?"


class Pki:
    def __init__(self, root: Path) -> None:
        ca = make_ca(root / "ca")
        self.hub = make_party(ca, root / "hub", "hub-org", "hub")
        self.agri = make_party(ca, root / "agri", AGRI, "node")
        self.hospital = make_party(ca, root / "hospital", HOSPITAL, "node")
        self.rogue = make_party(make_ca(root / "rogue-ca"), root / "rogue", AGRI, "node")
        self.trust_path = root / "trust.yaml"
        trust = TrustList()
        for p in (self.agri, self.hospital):
            trust = trust.with_organization(p.organization, p.public_key.read_text().strip())
        save_trust(self.trust_path, trust)

    def sign(self, m: ExpertManifest, party: Party) -> SignedManifest:
        return sign_manifest(m, load_signing_key(party.signing_key))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def crop(demo_artifacts: Path) -> ExpertManifest:
    return load_manifest(MANIFESTS / "crop-yield.yaml")


def run(coro: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 60))


def _register(tls: TlsFiles | None, port: int, signed: SignedManifest,
              address: str = "127.0.0.1:7001") -> Awaitable[registry_pb2.RegisterResponse]:
    async def call() -> registry_pb2.RegisterResponse:
        target = f"127.0.0.1:{port}"
        channel = (grpc.aio.secure_channel(target, channel_credentials(tls)) if tls
                   else grpc.aio.insecure_channel(target))
        async with channel:
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            response: registry_pb2.RegisterResponse = await stub.Register(
                registry_pb2.RegisterRequest(node_address=address,
                                             signed_manifest=signed.payload,
                                             signature=signed.signature), timeout=5)
            return response
    return call()


async def _code(call: Awaitable[object]) -> grpc.StatusCode:
    with pytest.raises(grpc.aio.AioRpcError) as e:
        await call
    code: grpc.StatusCode = e.value.code()
    return code


def test_registry_accepts_only_signed_manifests_from_their_own_organization(
        pki: Pki, crop: ExpertManifest, tmp_path: Path) -> None:
    async def body() -> None:
        registry = Registry(RegistryStore(tmp_path / "r.sqlite3"), TrustFile(pki.trust_path))
        server, port, _ = await serve_registry(registry, pki.hub.tls)
        try:
            good = pki.sign(crop, pki.agri)
            ok = await _register(pki.agri.tls, port, good)
            assert ok.lease_id and ok.heartbeat_interval_s == 1.0
            unsigned = SignedManifest(good.payload, b"")
            assert await _code(_register(pki.agri.tls, port, unsigned)) == \
                grpc.StatusCode.UNAUTHENTICATED
            data = json.loads(good.payload)
            data["examples"].append("What is the capital of France?")
            forged = SignedManifest(canonical_payload(data), good.signature)
            assert await _code(_register(pki.agri.tls, port, forged)) == \
                grpc.StatusCode.UNAUTHENTICATED
            renamed = pki.sign(crop.model_copy(update={"organization": HOSPITAL}), pki.agri)
            assert await _code(_register(pki.agri.tls, port, renamed)) == \
                grpc.StatusCode.UNAUTHENTICATED
            hospitals = crop.model_copy(update={"name": "crop-b", "organization": HOSPITAL})
            replayed = pki.sign(hospitals, pki.hospital)  # right signature, wrong certificate
            assert await _code(_register(pki.agri.tls, port, replayed)) == \
                grpc.StatusCode.PERMISSION_DENIED
            assert await _code(_register(pki.hub.tls, port, good)) == \
                grpc.StatusCode.PERMISSION_DENIED  # a hub certificate is not a node's
            # No certificate from this mesh's CA: refused in the handshake, never registered.
            assert await _code(_register(pki.rogue.tls, port, good)) == \
                grpc.StatusCode.UNAVAILABLE
            assert await _code(_register(None, port, good)) == grpc.StatusCode.UNAVAILABLE
            assert [e.manifest.name for e in registry.listing()] == ["crop-yield"]
            async with grpc.aio.secure_channel(f"127.0.0.1:{port}",
                                               channel_credentials(pki.agri.tls)) as ch:
                stub = registry_pb2_grpc.RegistryServiceStub(ch)
                listed = await stub.List(registry_pb2.ListRequest(), timeout=5)
                assert [(e.card.name, e.card.organization, e.healthy)
                        for e in listed.entries] == [("crop-yield", AGRI, True)]
                watch = stub.Watch(registry_pb2.WatchRequest(), timeout=5)
                first = await watch.read()
                assert first.kind == registry_pb2.EVENT_KIND_UPSERT
                assert await stub.Heartbeat(registry_pb2.HeartbeatRequest(lease_id=ok.lease_id),
                                            timeout=5) == registry_pb2.HeartbeatResponse(known=True)
                watch.cancel()
        finally:
            await server.stop(0)
            registry.store.close()
    run(body)


class _DeadlineRecorder:
    """The real in-process experts, recording the timeout each call arrived with."""

    def __init__(self, inner: LocalTransport) -> None:
        self.inner = inner
        self.timeouts: list[float] = []

    async def infer(self, expert: str, request: ExpertInput, timeout_s: float) -> ExpertOutput:
        self.timeouts.append(timeout_s)
        return await self.inner.infer(expert, request, timeout_s)

    def infer_stream(self, expert: str, request: ExpertInput, timeout_s: float
                     ) -> AsyncIterator[str]:
        return self.inner.infer_stream(expert, request, timeout_s)

    async def states(self) -> dict[str, ExpertState]:
        return await self.inner.states()

    async def close(self) -> None:
        await self.inner.close()


async def _start_node(manifests: list[ExpertManifest], tls: TlsFiles, transport: object,
                      port: int = 0) -> tuple[grpc.aio.Server, int]:
    servicer = ExpertNodeServicer(manifests, transport)  # type: ignore[arg-type]
    server, bound, _ = await start_tls_server(
        [lambda s: expert_pb2_grpc.add_ExpertNodeServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME], tls, allowed_roles=("hub",), port=port)
    return server, bound


def test_remote_transport_reaches_the_node_with_the_deadline_and_the_right_certificate(
        pki: Pki, crop: ExpertManifest) -> None:
    async def body() -> None:
        recorder = _DeadlineRecorder(LocalTransport([crop]))
        server, port = await _start_node([crop], pki.agri.tls, recorder)
        remote = RemoteTransport(pki.hub.tls)
        remote.set_route("crop-yield", f"127.0.0.1:{port}")
        try:
            out = await remote.infer("crop-yield", ExpertInput(text=QUESTION), 5.0)
            assert "Trebi" in out.text
            assert 4.0 < recorder.timeouts[-1] <= 5.0  # the hub's deadline, minus the hop
            started = time.perf_counter()
            with pytest.raises(ExpertDeadlineExceeded):
                await remote.infer("crop-yield", ExpertInput(text=QUESTION), 1e-6)
            assert time.perf_counter() - started < 0.5
            # A node certificate may not call another node's experts.
            async with grpc.aio.secure_channel(f"127.0.0.1:{port}",
                                               channel_credentials(pki.hospital.tls)) as ch:
                stub = expert_pb2_grpc.ExpertNodeServiceStub(ch)
                assert await _code(stub.Describe(expert_pb2.DescribeRequest(), timeout=5)) == \
                    grpc.StatusCode.PERMISSION_DENIED
        finally:
            await remote.close()
            await server.stop(0)
    run(body)


def test_federated_orchestrator_routes_to_the_partner_and_drops_it_when_revoked_or_down(
        pki: Pki, crop: ExpertManifest, tmp_path: Path) -> None:
    async def body() -> None:
        local_manifests = [load_manifest(MANIFESTS / "breast-cancer.yaml"),
                           load_manifest(MANIFESTS / "python-docs.yaml")]
        save_trust(tmp_path / "trust.yaml", load_trust(pki.trust_path))
        cfg = FederationConfig(port=0, heartbeat_interval_s=0.2, heartbeat_ttl_s=0.6)
        orchestrator: Orchestrator
        local = LocalTransport(local_manifests)
        hub = FederationHub(cfg, tmp_path, pki.hub.tls, local, local_manifests,
                            lambda ms: orchestrator.set_experts(ms))
        sessions = SessionStore(tmp_path / "sessions.sqlite3")
        orchestrator = Orchestrator(local_manifests, hub.transport, sessions)
        registry_port = await hub.start()
        node, node_port = await _start_node([crop], pki.agri.tls, LocalTransport([crop]))
        publisher = Publisher(f"127.0.0.1:{registry_port}", pki.agri.tls,
                              load_signing_key(pki.agri.signing_key), [crop],
                              f"127.0.0.1:{node_port}")
        beats = asyncio.get_running_loop().create_task(publisher.run())

        async def answered_by() -> list[str]:
            result = await orchestrator.ask(AskCommand(text=QUESTION), timeout_s=3.0)
            return [p.expert for p in result.parts]

        async def until(want: list[str], within_s: float) -> float:
            start = time.perf_counter()
            while time.perf_counter() - start < within_s:
                try:
                    if await answered_by() == want:
                        return time.perf_counter() - start
                except Exception:
                    pass
                await asyncio.sleep(0.05)
            raise AssertionError(f"not answered by {want} within {within_s} s")

        try:
            await until(["crop-yield"], 10)
            listed = {m.name: (m.organization, s.status)
                      for m, s in await orchestrator.list_experts()}
            assert listed["crop-yield"] == (AGRI, "HEALTHY")
            # The node stops: the expert leaves routing within the TTL.
            await node.stop(0)
            await until([], 5)
            # It comes back on the same address: routing returns by itself.
            node, _ = await _start_node([crop], pki.agri.tls, LocalTransport([crop]), node_port)
            await until(["crop-yield"], 10)
            # Revocation: out of routing at the registry's next tick.
            save_trust(tmp_path / "trust.yaml",
                       load_trust(tmp_path / "trust.yaml").with_revoked(AGRI))
            took = await until([], 2)
            assert took < 1.0
            # The router's expert set follows in its own thread (it refits the head): seconds.
            update_by = time.perf_counter() + 10
            while "crop-yield" in orchestrator.manifests and time.perf_counter() < update_by:
                await asyncio.sleep(0.05)
            assert "crop-yield" not in orchestrator.manifests
            # Trusted again: the node, told its lease is unknown, registers on its own.
            save_trust(tmp_path / "trust.yaml", load_trust(pki.trust_path))
            await until(["crop-yield"], 10)
        finally:
            beats.cancel()
            await publisher.close()
            await node.stop(0)
            await hub.stop()
            sessions.close()
    run(body)


def test_a_dead_node_fails_fast_opens_the_breaker_and_recovers_by_probing(
        pki: Pki, crop: ExpertManifest) -> None:
    from tests.conftest import free_port

    async def body() -> None:
        from mesh.config import FederationConfig as _Cfg
        from mesh.errors import ExpertUnavailable
        from mesh.federation.breaker import BreakerPolicy

        cfg = _Cfg()
        port = free_port()
        remote = RemoteTransport(pki.hub.tls, BreakerPolicy(cfg.breaker_failures, 0.2, 1.0))
        remote.set_route("crop-yield", f"127.0.0.1:{port}")
        prober = asyncio.get_running_loop().create_task(remote.probe_loop(0.05))
        server = None
        try:
            for _ in range(3):
                started = time.perf_counter()
                with pytest.raises(ExpertUnavailable):
                    await remote.infer("crop-yield", ExpertInput(text=QUESTION), 2.0)
                assert time.perf_counter() - started < 1.0  # refused, not waited out
            assert not remote.routable("crop-yield")
            assert remote.budget._retries >= 1  # the first failures were retried once
            server, _ = await _start_node([crop], pki.agri.tls, LocalTransport([crop]), port)
            for _ in range(100):
                if remote.routable("crop-yield"):
                    break
                await asyncio.sleep(0.05)
            assert remote.routable("crop-yield")
            out = await remote.infer("crop-yield", ExpertInput(text=QUESTION), 5.0)
            assert "Trebi" in out.text
        finally:
            prober.cancel()
            await remote.close()
            if server is not None:
                await server.stop(0)
    run(body)
