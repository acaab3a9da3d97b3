"""Per-tenant quotas that hold across every orchestrator process of a hub.

State lives in one SQLite file (WAL) that all processes open: a token bucket per (tenant,
scope) for the request rate, and one row per request in flight for the concurrency limit.
Each acquire is one short ``BEGIN IMMEDIATE`` transaction (read, decide, write), so two
processes can never both spend the last token. Counters need not survive a power cut, so
``synchronous=NORMAL`` (no fsync per commit) is enough.

In-flight rows are leases that expire (``expires_at``): a process that crashes mid-request
cannot hold a tenant's concurrency forever, it frees it after ``lease_s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mesh.errors import QuotaExceeded
from mesh.statedb import immediate, open_state_db
from mesh.tenants.model import Limits

QUOTA_FILE = "quota.sqlite3"
CONCURRENCY_RETRY_S = 0.1
"""Retry hint when the concurrency limit refused a call: requests end at no predictable time,
so a short hint keeps clients close behind without hammering."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS buckets (
        tenant TEXT NOT NULL, scope TEXT NOT NULL, tokens REAL NOT NULL, updated REAL NOT NULL,
        PRIMARY KEY (tenant, scope)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS leases (
        id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, scope TEXT NOT NULL,
        expires_at REAL NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS leases_by_scope ON leases(tenant, scope, expires_at)",
)


@dataclass(frozen=True)
class Lease:
    """One admitted request. ``lease_id`` is None when only the rate is limited (nothing to
    give back)."""

    tenant: str
    scope: str
    lease_id: int | None


def _scope_words(scope: str) -> str:
    return "all its requests" if scope == "*" else f"expert '{scope}'"


class QuotaLimiter:
    """Admission against per-tenant limits, shared through one SQLite file (thread-safe)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        """``clock`` is wall-clock seconds: every process of the hub must read the same clock
        (a monotonic one restarts at boot, which would strand leases); tests pass a fake."""
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = open_state_db(self.path, synchronous="NORMAL", timeout_s=5.0)
        with self._lock, immediate(self._db) as db:
            for statement in _SCHEMA:
                db.execute(statement)

    def acquire(self, tenant: str, limits: Limits, scope: str = "*",
                lease_s: float = 60.0) -> Lease | None:
        """Admit one request of ``tenant`` in ``scope`` ("*" for every request, else an
        expert's name), or raise QuotaExceeded with when to retry.

        Returns None without any I/O when ``limits`` limit nothing. A call refused for
        concurrency does not spend a rate token.
        """
        if limits.unlimited:
            return None
        # Threads of this process queue on the lock; only other processes meet SQLite's busy
        # handler, whose sleeps are coarse.
        with self._lock, immediate(self._db):
            # Read the clock once the write lock is held, so times in the file only grow.
            return self._admit(tenant, limits, scope, lease_s, self._clock())

    def release(self, lease: Lease | None) -> None:
        """Give back a request's place in the concurrency limit (no-op for None or a lease
        without one). Safe to call twice."""
        if lease is None or lease.lease_id is None:
            return
        with self._lock:
            self._db.execute("DELETE FROM leases WHERE id = ?", (lease.lease_id,))

    def renew(self, leases: Sequence[Lease | None], lease_s: float) -> None:
        """Push the expiry of requests still running ``lease_s`` ahead (a stream that outlives
        its first lease keeps its place; a dead process's leases still expire)."""
        ids = [(self._clock() + lease_s, lease.lease_id) for lease in leases
               if lease is not None and lease.lease_id is not None]
        if ids:
            with self._lock:
                self._db.executemany("UPDATE leases SET expires_at = ? WHERE id = ?", ids)

    def in_flight(self, tenant: str, scope: str = "*") -> int:
        """Requests of ``tenant`` in ``scope`` holding an unexpired lease (for metrics, tests)."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM leases WHERE tenant = ? AND scope = ? AND expires_at > ?",
                (tenant, scope, self._clock())).fetchone()
        return int(row[0])

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    def _admit(self, tenant: str, limits: Limits, scope: str, lease_s: float,
               now: float) -> Lease:
        db = self._db
        if limits.concurrent is not None:
            db.execute("DELETE FROM leases WHERE tenant = ? AND scope = ? AND expires_at <= ?",
                       (tenant, scope, now))
            held = db.execute("SELECT COUNT(*) FROM leases WHERE tenant = ? AND scope = ?",
                              (tenant, scope)).fetchone()[0]
            if held >= limits.concurrent:
                raise QuotaExceeded(
                    f"tenant '{tenant}' is at its concurrency limit for {_scope_words(scope)} "
                    f"(concurrent={limits.concurrent} requests in flight)", CONCURRENCY_RETRY_S)
        if limits.rps is not None:
            size = limits.bucket
            row = db.execute("SELECT tokens, updated FROM buckets WHERE tenant = ? AND scope = ?",
                             (tenant, scope)).fetchone()
            # A new bucket starts full; a clock that stepped back refills nothing.
            tokens = float(size) if row is None else min(
                float(size), row[0] + max(0.0, now - row[1]) * limits.rps)
            if tokens < 1.0:
                raise QuotaExceeded(
                    f"tenant '{tenant}' is over its request rate for {_scope_words(scope)} "
                    f"(rps={limits.rps:g}, burst={size})", (1.0 - tokens) / limits.rps)
            db.execute("INSERT OR REPLACE INTO buckets VALUES (?, ?, ?, ?)",
                       (tenant, scope, tokens - 1.0, max(now, row[1]) if row else now))
        lease_id = None  # AUTOINCREMENT: an id is never reused, so a late release is harmless
        if limits.concurrent is not None:
            lease_id = db.execute(
                "INSERT INTO leases (tenant, scope, expires_at) VALUES (?, ?, ?)",
                (tenant, scope, now + lease_s)).lastrowid
        return Lease(tenant, scope, lease_id)
