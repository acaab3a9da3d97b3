"""The registry's rules and state, without gRPC: who may publish what, heartbeats, health,
revocation, and what survives a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.config import ExpertManifest, load_manifest
from mesh.federation.ca import Identity
from mesh.federation.errors import PermissionDenied, Unauthenticated
from mesh.federation.keys import generate_signing_key, load_signing_key, public_key_text
from mesh.federation.registry import EventKind, Registry
from mesh.federation.signing import SignedManifest, sign_manifest
from mesh.federation.store import RegistryStore
from mesh.federation.trust import TrustFile, TrustList, load_trust, save_trust

REPO = Path(__file__).resolve().parents[2]
AGRI, HOSPITAL = "prairie-agri-institute", "lakeside-hospital"
NODE = Identity(AGRI, "node")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Hub:
    """A registry over files in a folder, restartable."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.clock = Clock()
        self.keys = {org: load_signing_key(generate_signing_key(folder / org)[0])
                     for org in (AGRI, HOSPITAL)}
        trust = TrustList()
        for org, key in self.keys.items():
            trust = trust.with_organization(org, public_key_text(key.public_key()))
        save_trust(folder / "trust.yaml", trust)
        self.registry = self.start()

    def start(self) -> Registry:
        return Registry(RegistryStore(self.folder / "registry.sqlite3"),
                        TrustFile(self.folder / "trust.yaml"), 1.0, 3.0,
                        reserved_names=["breast-cancer"], clock=self.clock)

    def signed(self, m: ExpertManifest, org: str | None = None) -> SignedManifest:
        return sign_manifest(m, self.keys[org or m.organization])


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return Hub(tmp_path)


@pytest.fixture
def crop() -> ExpertManifest:
    return load_manifest(REPO / "mesh" / "demo" / "manifests" / "crop-yield.yaml")


def test_register_heartbeat_and_list(hub: Hub, crop: ExpertManifest) -> None:
    events = []
    hub.registry.listen(events.append)
    lease, interval = hub.registry.register(hub.signed(crop), "127.0.0.1:7001", NODE)
    assert interval == 1.0 and hub.registry.heartbeat(lease, NODE)
    [entry] = hub.registry.listing()
    assert (entry.manifest.name, entry.organization, entry.healthy) == ("crop-yield", AGRI, True)
    assert [e.kind for e in events] == [EventKind.UPSERT]
    assert not hub.registry.heartbeat("no-such-lease", NODE)


def test_a_certificate_of_another_organization_is_denied(hub: Hub,
                                                          crop: ExpertManifest) -> None:
    """The hospital's node replays the institute's correctly signed manifest."""
    with pytest.raises(PermissionDenied, match="may not publish"):
        hub.registry.register(hub.signed(crop), "127.0.0.1:7001", Identity(HOSPITAL, "node"))


def test_names_belong_to_their_first_organization_and_never_shadow_the_hubs(
        hub: Hub, crop: ExpertManifest) -> None:
    hub.registry.register(hub.signed(crop), "127.0.0.1:7001", NODE)
    taken = crop.model_copy(update={"organization": HOSPITAL})
    with pytest.raises(PermissionDenied, match="already published by"):
        hub.registry.register(hub.signed(taken), "127.0.0.1:7002", Identity(HOSPITAL, "node"))
    shadow = crop.model_copy(update={"name": "breast-cancer"})
    with pytest.raises(PermissionDenied, match="hub's own"):
        hub.registry.register(hub.signed(shadow), "127.0.0.1:7001", NODE)


def test_forged_manifest_is_unauthenticated(hub: Hub, crop: ExpertManifest) -> None:
    good = hub.signed(crop)
    with pytest.raises(Unauthenticated):
        hub.registry.register(SignedManifest(good.payload.replace(b"barley", b"barlee"),
                                             good.signature), "127.0.0.1:7001", NODE)


def test_missed_heartbeats_make_an_expert_unhealthy_and_beats_bring_it_back(
        hub: Hub, crop: ExpertManifest) -> None:
    lease, _ = hub.registry.register(hub.signed(crop), "127.0.0.1:7001", NODE)
    events = []
    hub.registry.listen(events.append)
    hub.clock.now += 3.5
    hub.registry.tick()
    assert hub.registry.healthy_names() == set()
    assert hub.registry.heartbeat(lease, NODE)
    assert hub.registry.healthy_names() == {"crop-yield"}
    assert [(e.kind, e.entry.healthy) for e in events] == [
        (EventKind.HEALTH, False), (EventKind.HEALTH, True)]


def test_revocation_removes_the_organizations_experts_at_the_next_tick(
        hub: Hub, crop: ExpertManifest) -> None:
    lease, _ = hub.registry.register(hub.signed(crop), "127.0.0.1:7001", NODE)
    path = hub.folder / "trust.yaml"
    save_trust(path, load_trust(path).with_revoked(AGRI))
    events = []
    hub.registry.listen(events.append)
    hub.registry.tick()
    assert hub.registry.listing() == [] and [e.kind for e in events] == [EventKind.REMOVE]
    assert not hub.registry.heartbeat(lease, NODE)
    with pytest.raises(PermissionDenied, match="revoked"):
        hub.registry.register(hub.signed(crop), "127.0.0.1:7001", NODE)


def test_registry_survives_a_restart_and_keeps_leases(hub: Hub, crop: ExpertManifest) -> None:
    lease, _ = hub.registry.register(hub.signed(crop), "127.0.0.1:7001", NODE)
    hub.registry.store.close()
    restarted = hub.start()
    [entry] = restarted.listing()
    assert entry.manifest == hub.registry.entries["crop-yield"].manifest
    assert restarted.heartbeat(lease, NODE)  # the node carries on without re-registering


def test_a_restart_rechecks_stored_manifests_against_the_trust_list(
        hub: Hub, crop: ExpertManifest) -> None:
    hub.registry.register(hub.signed(crop), "127.0.0.1:7001", NODE)
    hub.registry.store.close()
    path = hub.folder / "trust.yaml"
    save_trust(path, load_trust(path).with_revoked(AGRI))
    assert hub.start().listing() == []


def test_deregister_needs_the_lease(hub: Hub, crop: ExpertManifest) -> None:
    lease, _ = hub.registry.register(hub.signed(crop), "127.0.0.1:7001", NODE)
    with pytest.raises(PermissionDenied):
        hub.registry.deregister("crop-yield", "other", NODE)
    hub.registry.deregister("crop-yield", lease, NODE)
    assert hub.registry.listing() == []
