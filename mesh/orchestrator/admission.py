"""Who may ask, and how much: the first step of every call, before any routing.

A call's credential names its tenant (``mesh.tenants.Authenticator``); the tenant's quota is
taken from counters every orchestrator process of the hub shares (``QuotaLimiter``): one place
for all its calls, then one per chosen expert that has its own limits. Places in a
concurrency limit are given back when the call ends, however it ends. Outcomes are counted per
tenant (``mesh_tenant_requests_total``), and a refused call reaches the client as
UNAUTHENTICATED, PERMISSION_DENIED or RESOURCE_EXHAUSTED with a retry-after hint.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from mesh.config import MeshConfig
from mesh.errors import PermissionDenied, QuotaExceeded, Unauthenticated
from mesh.observability.metrics import MeshMetrics
from mesh.tenants import (
    OPEN,
    Authenticator,
    Lease,
    Limits,
    QuotaLimiter,
    Tenant,
    TenantStore,
    quota_path,
    store_path,
)

log = logging.getLogger(__name__)


class Gate:
    """One admitted call: holds its quota places until the call ends."""

    def __init__(self, admission: Admission, tenant: Tenant) -> None:
        self.admission = admission
        self.tenant = tenant
        self.leases: list[Lease | None] = []

    async def experts(self, names: Sequence[str]) -> None:
        """The experts routing chose: each must be allowed to the tenant, and each with its own
        limits takes a place in them."""
        a = self.admission
        try:
            a.auth.authorize(self.tenant, names)
        except PermissionDenied:
            a.metrics.tenant_requests.labels(self.tenant.name, "denied").inc()
            raise
        for name in names:
            limits = self.tenant.expert_limits.get(name)
            if limits is not None and not limits.unlimited:
                await self._take(limits, name)

    async def _take(self, limits: Limits, scope: str) -> None:
        a = self.admission
        if a.quota is None:
            return
        try:
            lease = await asyncio.to_thread(a.quota.acquire, self.tenant.name, limits, scope,
                                            a.lease_s)
        except QuotaExceeded:
            a.metrics.tenant_requests.labels(self.tenant.name, "throttled").inc()
            raise
        self.leases.append(lease)


class Admission:
    """Authentication, authorization and quotas for one orchestrator process."""

    def __init__(self, auth: Authenticator, quota: QuotaLimiter | None, metrics: MeshMetrics,
                 lease_s: float = 120.0) -> None:
        self.auth = auth
        self.quota = quota
        self.metrics = metrics
        self.lease_s = lease_s

    @classmethod
    def open(cls, metrics: MeshMetrics) -> Admission:
        """No tenants, no quotas: every call is the built-in tenant ``open``."""
        return cls(Authenticator(None, required=False), None, metrics)

    def identify(self, metadata: Sequence[tuple[str, str | bytes]],
                 cert_common_name: str | None = None) -> Tenant:
        """The tenant behind a call; Unauthenticated (counted) when there is none."""
        try:
            return self.auth.authenticate(metadata, cert_common_name)
        except Unauthenticated:
            self.metrics.tenant_requests.labels("", "unauthenticated").inc()
            raise

    @asynccontextmanager
    async def admitted(self, tenant: Tenant) -> AsyncIterator[Gate]:
        """Hold a place in the tenant's quota for the whole call (QuotaExceeded when there is
        none); every place taken is given back on exit."""
        gate = Gate(self, tenant)
        if tenant is not OPEN and not tenant.limits.unlimited:
            await gate._take(tenant.limits, "*")
        self.metrics.tenant_requests.labels(tenant.name, "admitted").inc()
        in_flight = self.metrics.tenant_in_flight.labels(tenant.name)
        in_flight.inc()
        renewing = (asyncio.get_running_loop().create_task(self._renew(gate))
                    if self.quota is not None and _holds_places(tenant) else None)
        try:
            yield gate
        finally:
            if renewing is not None:
                renewing.cancel()
            in_flight.dec()
            if self.quota is not None and any(lease is not None for lease in gate.leases):
                # Off the answer's path: the places are given back while the answer travels
                # (a thread hop is ~80 us, the whole admission ~50 us of SQLite). Should the
                # process die first, the leases expire after lease_s.
                asyncio.get_running_loop().run_in_executor(None, self._release, gate.leases)

    async def _renew(self, gate: Gate) -> None:
        """Keep a long call's concurrency places while it runs (a stream can outlast
        ``lease_s``): renewed every third of it; a process that dies stops renewing, and its
        places come back at most ``lease_s`` later."""
        assert self.quota is not None
        while True:
            await asyncio.sleep(self.lease_s / 3)
            if any(lease is not None and lease.lease_id is not None for lease in gate.leases):
                try:
                    await asyncio.to_thread(self.quota.renew, list(gate.leases), self.lease_s)
                except Exception:
                    log.exception("renewing quota places failed; they expire after lease_s")

    def close(self) -> None:
        """Close the tenants and quota files."""
        if self.auth.store is not None:
            self.auth.store.close()
        if self.quota is not None:
            self.quota.close()

    def _release(self, leases: list[Lease | None]) -> None:
        assert self.quota is not None
        for lease in leases:
            try:
                self.quota.release(lease)
            except Exception:  # the lease expires on its own after lease_s
                log.exception("giving back a quota place failed")


def _holds_places(tenant: Tenant) -> bool:
    """Whether the tenant's calls take places in a concurrency limit (that must be renewed)."""
    return tenant.limits.concurrent is not None or any(
        lim.concurrent is not None for lim in tenant.expert_limits.values())


def hub_admission(config: MeshConfig, metrics: MeshMetrics) -> tuple[Admission, str]:
    """The hub's admission from its config and state folder, and one line saying how it runs
    (printed at start: an open hub says so)."""
    state = config.state_path()
    store = TenantStore(store_path(state))
    required = config.auth_required()
    admission = Admission(Authenticator(store, required, config.auth.refresh_s),
                          QuotaLimiter(quota_path(state)), metrics, config.auth.lease_s)
    count = len(store.tenants())
    if required:
        line = (f"auth: a credential is required ({count} tenant(s); `mesh tenants create "
                "NAME` adds one)")
    else:
        line = ("auth: OPEN - calls without a credential are served as tenant 'open' "
                f"(the orchestrator listens on {config.orchestrator.host} only); tokens of the "
                f"{count} tenant(s) still apply their quotas. Set auth.required: true to refuse "
                "calls without one")
    return admission, line
