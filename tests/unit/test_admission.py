"""Admission on real tenant and quota files: a long call keeps its concurrency place past
lease_s (renewed while it runs), and gives it back when it ends."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from mesh.errors import QuotaExceeded
from mesh.observability.metrics import MeshMetrics
from mesh.orchestrator.admission import Admission
from mesh.tenants import Authenticator, Limits, QuotaLimiter, Tenant, TenantStore


def test_a_call_longer_than_its_lease_keeps_its_place_until_it_ends(tmp_path: Path) -> None:
    store = TenantStore(tmp_path / "tenants.sqlite3")
    store.create(Tenant("streamer", limits=Limits(concurrent=1)))
    token = store.issue_token("streamer")
    admission = Admission(Authenticator(store, True), QuotaLimiter(tmp_path / "q.sqlite3"),
                          MeshMetrics(), lease_s=0.3)
    tenant = admission.identify([("authorization", f"Bearer {token}")])

    async def scenario() -> None:
        async with admission.admitted(tenant):
            await asyncio.sleep(1.0)  # more than three leases long
            with pytest.raises(QuotaExceeded, match="concurrent=1"):
                async with admission.admitted(tenant):
                    pass
        deadline = time.monotonic() + 2
        while True:  # the place comes back once the release (off the answer's path) ran
            try:
                async with admission.admitted(tenant):
                    return
            except QuotaExceeded:
                assert time.monotonic() < deadline, "the place never came back"
                await asyncio.sleep(0.02)

    asyncio.run(scenario())
    admission.close()
