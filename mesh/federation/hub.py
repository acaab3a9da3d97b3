"""The hub's side of federation, assembled: registry server, remote transport, router updates.

Started by `mesh orchestrator` when the config (or ``--federation-port``) turns federation on.
Registry changes reach the orchestrator through ``on_experts``, called with the full expert set
(the hub's own first, then partners', by name) after every publish, removal or revocation;
health changes need no call, since routing asks ``CompositeTransport.routable()`` per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import grpc

from mesh.config import ExpertManifest, FederationConfig, OrchestratorConfig
from mesh.experts.transport import ExpertTransport
from mesh.federation.breaker import BreakerPolicy, RetryPolicy
from mesh.federation.composite import CompositeTransport
from mesh.federation.registry import Event, EventKind, Registry
from mesh.federation.registry_server import serve_registry
from mesh.federation.remote import RemoteTransport
from mesh.federation.store import RegistryStore
from mesh.federation.tls import TlsFiles
from mesh.federation.trust import TrustFile

log = logging.getLogger(__name__)


def tls_files(cfg: FederationConfig | OrchestratorConfig, base: Path) -> TlsFiles | None:
    """A port's TLS files from its config block (the registry's or the orchestrator's; relative
    paths against ``base``, absolute ones as they are), or None."""
    if not (cfg.tls_cert and cfg.tls_key and cfg.tls_ca):
        return None
    return TlsFiles(base / cfg.tls_cert, base / cfg.tls_key, base / cfg.tls_ca)


class FederationHub:
    """Registry + remote transport of one hub."""

    def __init__(self, cfg: FederationConfig, state_dir: Path, tls: TlsFiles,
                 local: ExpertTransport, local_manifests: Sequence[ExpertManifest],
                 on_experts: Callable[[list[ExpertManifest]], None]) -> None:
        self.cfg = cfg
        self.tls = tls
        self.local_manifests = list(local_manifests)
        self.on_experts = on_experts
        self.store = RegistryStore(state_dir / cfg.registry_db)
        self.trust = TrustFile(state_dir / cfg.trust_list)
        self.registry = Registry(self.store, self.trust, cfg.heartbeat_interval_s,
                                 cfg.heartbeat_ttl_s, [m.name for m in local_manifests])
        self.remote = RemoteTransport(
            tls,
            BreakerPolicy(cfg.breaker_failures, cfg.breaker_open_s, cfg.breaker_max_open_s),
            RetryPolicy(max_attempts=cfg.retry_attempts, budget_ratio=cfg.retry_budget_ratio),
        )
        for entry in self.registry.listing():
            self.remote.set_route(entry.manifest.name, entry.node_address)
        self.transport = CompositeTransport(local, [m.key for m in local_manifests],
                                            self.remote, self.registry)
        self.port = 0
        self._server: grpc.aio.Server | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._update_lock = asyncio.Lock()

    def experts(self) -> list[ExpertManifest]:
        """The hub's own experts, then registered partner experts."""
        return self.local_manifests + [e.manifest for e in self.registry.listing()]

    def _on_event(self, event: Event) -> None:
        name = event.entry.manifest.name
        if event.kind is EventKind.UPSERT:
            self.remote.set_route(name, event.entry.node_address)
        elif event.kind is EventKind.REMOVE:
            self.remote.remove_route(name)
        if event.kind is not EventKind.HEALTH:
            self._tasks.append(asyncio.get_running_loop().create_task(self._push_experts()))

    async def _push_experts(self) -> None:
        """Give the router the new expert set (embedding runs off the event loop)."""
        async with self._update_lock:
            experts = self.experts()
            try:
                await asyncio.to_thread(self.on_experts, experts)
            except Exception:
                log.exception("updating the router with %d experts failed", len(experts))
        self._tasks = [t for t in self._tasks if not t.done()]

    async def start(self) -> int:
        """Serve the registry on the federation port; returns the bound port."""
        if self.registry.entries:
            await self._push_experts()
        self.registry.listen(self._on_event)
        self._server, self.port, _ = await serve_registry(
            self.registry, self.tls, self.cfg.host, self.cfg.port or 0)
        loop = asyncio.get_running_loop()
        self._tasks += [loop.create_task(self.registry.run()),
                        loop.create_task(self.remote.probe_loop())]
        log.info("registry serving on %s:%d (mutual TLS)", self.cfg.host, self.port)
        return self.port

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop the registry server and background tasks, close the store."""
        if self._server is not None:
            await self._server.stop(grace_s)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.remote.close()
        self.store.close()
