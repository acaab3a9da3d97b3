"""The hub's registry, free of gRPC: who published which expert, where it runs, is it alive.

Rules it enforces on every Register (the servicer only converts):

* the manifest's signature verifies with its organization's key on the trust list;
* the caller's certificate belongs to that same organization (nobody publishes for another);
* an expert name belongs to the first organization that published it and never shadows one of
  the hub's own experts (an organization's namespace is the names it holds);
* revoking an organization removes its experts at once (the trust file is re-read every tick).

Health: an expert is healthy while its node's heartbeats arrive within ``ttl_s``. Changes are
pushed to subscribers (the orchestrator's router, Watch streams) as events.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from mesh.config import ExpertManifest
from mesh.errors import ConfigError, ExpertNotFound, InvalidInput, MeshError
from mesh.federation.ca import Identity
from mesh.federation.errors import PermissionDenied
from mesh.federation.signing import SignedManifest, verify_manifest
from mesh.federation.store import RegistryStore, StoredExpert
from mesh.federation.trust import TrustFile

log = logging.getLogger(__name__)


class EventKind(enum.Enum):
    """What changed."""

    UPSERT = "upsert"
    REMOVE = "remove"
    HEALTH = "health"


@dataclass(frozen=True)
class Entry:
    """One registered expert."""

    manifest: ExpertManifest
    node_address: str
    lease_id: str
    signed: SignedManifest
    registered_at: float
    last_heartbeat: float
    healthy: bool

    @property
    def organization(self) -> str:
        """The organization that published it (and signed its manifest)."""
        return self.manifest.organization

    def stored(self) -> StoredExpert:
        """The persisted form."""
        return StoredExpert(self.manifest.name, self.organization, self.node_address,
                            self.lease_id, self.signed.payload, self.signed.signature,
                            self.registered_at, self.last_heartbeat)


@dataclass(frozen=True)
class Event:
    """One change, with the entry after it (before it, for removals)."""

    kind: EventKind
    entry: Entry


def _check_address(address: str) -> None:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidInput("node_address", f"'{address}' is not 'host:port'")


class Registry:
    """Registered partner experts, their leases and health."""

    def __init__(
        self,
        store: RegistryStore,
        trust: TrustFile,
        heartbeat_interval_s: float = 1.0,
        ttl_s: float = 3.0,
        reserved_names: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.trust = trust
        self.heartbeat_interval_s = heartbeat_interval_s
        self.ttl_s = ttl_s
        self.reserved = set(reserved_names)
        self.clock = clock
        self.entries: dict[str, Entry] = {}
        self._subscribers: list[asyncio.Queue[Event]] = []
        self._listeners: list[Callable[[Event], None]] = []
        self._persisted_beat: dict[str, float] = {}
        self._load()

    # ---- start-up ---------------------------------------------------------------------------

    def _load(self) -> None:
        """Bring back what was registered before a restart; each manifest is verified again,
        against today's trust list, so a revocation made while the hub was down holds."""
        now = self.clock()
        for row in self.store.all():
            signed = SignedManifest(row.payload, row.signature)
            try:
                manifest = verify_manifest(signed, self.trust.current)
            except MeshError as e:
                log.warning("dropping stored expert %s: %s", row.name, e)
                self.store.remove(row.name)
                continue
            healthy = now - row.last_heartbeat <= self.ttl_s
            self.entries[row.name] = Entry(manifest, row.node_address, row.lease_id, signed,
                                           row.registered_at, row.last_heartbeat, healthy)
        if self.entries:
            log.info("registry restored %d experts: %s", len(self.entries),
                     ", ".join(sorted(self.entries)))

    # ---- subscribers -------------------------------------------------------------------------

    def listen(self, callback: Callable[[Event], None]) -> None:
        """Call ``callback`` (on the event loop) for every change."""
        self._listeners.append(callback)

    def subscribe(self) -> asyncio.Queue[Event]:
        """A queue that receives every change from now on."""
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)
        self._subscribers.append(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        """Stop feeding ``queue``."""
        with contextlib.suppress(ValueError):
            self._subscribers.remove(queue)

    def _emit(self, kind: EventKind, entry: Entry) -> None:
        event = Event(kind, entry)
        for callback in self._listeners:
            try:
                callback(event)
            except Exception:
                log.exception("registry listener failed")
        for queue in list(self._subscribers):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:  # a stalled watcher is dropped, not waited for
                self.unsubscribe(queue)

    # ---- the calls -----------------------------------------------------------------------------

    def register(self, signed: SignedManifest, node_address: str, peer: Identity
                 ) -> tuple[str, float]:
        """Accept a signed manifest from a node; returns (lease id, heartbeat interval)."""
        manifest = verify_manifest(signed, self.trust.current)
        if peer.organization != manifest.organization:
            raise PermissionDenied(
                f"the certificate of '{peer.organization}' may not publish a manifest of "
                f"'{manifest.organization}'; each organization publishes under its own name"
            )
        name = manifest.name
        if name in self.reserved:
            raise PermissionDenied(f"'{name}' is one of the hub's own experts; rename yours")
        existing = self.entries.get(name)
        if existing is not None and existing.organization != manifest.organization:
            raise PermissionDenied(
                f"'{name}' is already published by '{existing.organization}'; rename yours"
            )
        _check_address(node_address)
        lease = self._lease_for(manifest.organization, node_address)
        now = self.clock()
        registered = existing.registered_at if existing else now
        entry = Entry(manifest, node_address, lease, signed, registered, now, True)
        self.store.upsert(entry.stored())
        self.entries[name] = entry
        log.info("registered %s of %s at %s", name, manifest.organization, node_address)
        self._emit(EventKind.UPSERT, entry)
        return lease, self.heartbeat_interval_s

    def _lease_for(self, organization: str, node_address: str) -> str:
        """One lease per node: every expert a node published stays alive by its heartbeats."""
        for e in self.entries.values():
            if e.organization == organization and e.node_address == node_address:
                return e.lease_id
        return secrets.token_hex(12)

    def heartbeat(self, lease_id: str, peer: Identity) -> bool:
        """Mark the lease's experts alive; False when the hub does not know the lease."""
        now = self.clock()
        found = [e for e in self.entries.values() if e.lease_id == lease_id]
        if not found:
            return False
        if any(e.organization != peer.organization for e in found):
            raise PermissionDenied("this lease belongs to another organization")
        for e in found:
            updated = replace(e, last_heartbeat=now, healthy=True)
            self.entries[e.manifest.name] = updated
            if not e.healthy:
                log.info("expert %s is healthy again", e.manifest.name)
                self._emit(EventKind.HEALTH, updated)
        if now - self._persisted_beat.get(lease_id, 0.0) >= 5.0:
            self.store.touch(lease_id, now)
            self._persisted_beat[lease_id] = now
        return True

    def deregister(self, name: str, lease_id: str, peer: Identity) -> None:
        """Remove an expert; only the node holding its lease may."""
        entry = self.entries.get(name)
        if entry is None:
            raise ExpertNotFound(name, list(self.entries))
        if entry.lease_id != lease_id or entry.organization != peer.organization:
            raise PermissionDenied(f"'{name}' is held by another lease")
        self._remove(entry)

    def _remove(self, entry: Entry) -> None:
        self.entries.pop(entry.manifest.name, None)
        self.store.remove(entry.manifest.name)
        self._emit(EventKind.REMOVE, entry)

    def listing(self) -> list[Entry]:
        """Every registered expert, by name."""
        return [self.entries[n] for n in sorted(self.entries)]

    def healthy_names(self) -> set[str]:
        """Experts whose heartbeats arrive in time."""
        return {n for n, e in self.entries.items() if e.healthy}

    # ---- the background tick ---------------------------------------------------------------

    def tick(self) -> None:
        """Re-read the trust list (revocations act now) and mark late nodes unhealthy."""
        try:
            changed = self.trust.refresh()
        except ConfigError as err:
            log.error("trust list unreadable, keeping the last good one: %s", err)
            changed = False
        if changed:
            for entry in list(self.entries.values()):
                if not self.trust.current.trusted(entry.organization):
                    log.warning("organization %s is no longer trusted: removing %s",
                                entry.organization, entry.manifest.name)
                    self._remove(entry)
        now = self.clock()
        for name, e in list(self.entries.items()):
            healthy = now - e.last_heartbeat <= self.ttl_s
            if healthy != e.healthy:
                updated = replace(e, healthy=healthy)
                self.entries[name] = updated
                log.warning("expert %s is %s (last heartbeat %.1f s ago)", name,
                            "healthy" if healthy else "unhealthy", now - e.last_heartbeat)
                self._emit(EventKind.HEALTH, updated)

    async def run(self, period_s: float = 0.25) -> None:
        """Tick until cancelled."""
        while True:
            self.tick()
            await asyncio.sleep(period_s)
