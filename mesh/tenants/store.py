"""Tenants and their tokens in one SQLite file (WAL), shared by the CLI and every orchestrator
process of a hub.

Writes are rare (an operator's command) and must survive a crash, so they are committed with
``synchronous=FULL``. Every write bumps a generation number in the same transaction: readers
(the Authenticator of each orchestrator process) poll that one integer and reload their
in-memory snapshot only when it moved, which is how a revocation reaches a running hub without
a restart and without touching SQLite on every call.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mesh.statedb import (
    GENERATION_SCHEMA,
    bump_generation,
    immediate,
    open_state_db,
    read_generation,
)
from mesh.tenants.model import OPEN_NAME, Limits, Tenant, TenantError, TokenInfo
from mesh.tenants.tokens import hash_token, new_token

__all__ = ["Limits", "Snapshot", "Tenant", "TenantError", "TenantStore", "TokenInfo",
           "TokenRecord"]

STORE_FILE = "tenants.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    name TEXT PRIMARY KEY,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    hash TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE INDEX IF NOT EXISTS tokens_by_tenant ON tokens(tenant);
""" + GENERATION_SCHEMA

_LIST_HINT = "list them with `mesh tenants list`"


@dataclass(frozen=True)
class TokenRecord:
    """A token as the Authenticator needs it: its hash, for a constant-time comparison."""

    id: str
    tenant: str
    hash: str
    revoked_at: float | None


@dataclass(frozen=True)
class Snapshot:
    """Everything an Authenticator holds in memory, read in one transaction."""

    generation: int
    tenants: dict[str, Tenant]
    tokens: dict[str, TokenRecord]


class TenantStore:
    """Thread-safe access to the tenants file; several processes may open it at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_state_db(self.path)
        # Not through _write: opening the file (e.g. `mesh tenants list`) must not bump the
        # generation and make every orchestrator reload.
        with self._lock, immediate(self._db) as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction that also bumps the generation (BEGIN IMMEDIATE takes the
        write lock at once, so two processes never interleave a read-modify-write)."""
        with self._lock, immediate(self._db) as db:
            yield db
            bump_generation(db)

    # ---- tenants ---------------------------------------------------------------------------

    def create(self, tenant: Tenant) -> None:
        """Add a tenant; TenantError when the name is taken or a certificate name is used."""
        if tenant.name == OPEN_NAME:
            raise TenantError(f"name: '{OPEN_NAME}' is the built-in tenant of an open hub; "
                              "choose another name")
        now = time.time()
        with self._write() as db:
            if db.execute("SELECT 1 FROM tenants WHERE name = ?", (tenant.name,)).fetchone():
                raise TenantError(f"name: tenant '{tenant.name}' exists; change it with "
                                  f"`mesh tenants set {tenant.name} ...`")
            self._check_cert_subjects(db, tenant)
            db.execute("INSERT INTO tenants VALUES (?, ?, ?, ?)",
                       (tenant.name, json.dumps(tenant.to_json()), now, now))

    def update(self, tenant: Tenant) -> None:
        """Replace a tenant's settings (its tokens stay valid)."""
        with self._write() as db:
            self._require(db, tenant.name)
            self._check_cert_subjects(db, tenant)
            db.execute("UPDATE tenants SET spec = ?, updated_at = ? WHERE name = ?",
                       (json.dumps(tenant.to_json()), time.time(), tenant.name))

    def delete(self, name: str) -> None:
        """Remove a tenant and revoke its tokens (kept, revoked, for the record)."""
        now = time.time()
        with self._write() as db:
            self._require(db, name)
            db.execute("DELETE FROM tenants WHERE name = ?", (name,))
            db.execute("UPDATE tokens SET revoked_at = ? WHERE tenant = ? AND "
                       "(revoked_at IS NULL OR revoked_at > ?)", (now, name, now))

    def get(self, name: str) -> Tenant:
        """One tenant; TenantError naming `mesh tenants list` when unknown."""
        with self._lock:
            row = self._db.execute("SELECT spec FROM tenants WHERE name = ?",
                                   (name,)).fetchone()
        if row is None:
            raise TenantError(f"tenant: no tenant '{name}'; {_LIST_HINT}")
        return Tenant.from_json(name, json.loads(row[0]))

    def tenants(self) -> list[Tenant]:
        """Every tenant, by name."""
        with self._lock:
            rows = self._db.execute("SELECT name, spec FROM tenants ORDER BY name").fetchall()
        return [Tenant.from_json(name, json.loads(spec)) for name, spec in rows]

    # ---- tokens ----------------------------------------------------------------------------

    def issue_token(self, tenant: str) -> str:
        """A new token for ``tenant``. The token is returned once; only its hash is stored."""
        tid, token = new_token()
        with self._write() as db:
            self._require(db, tenant)
            db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, NULL)",
                       (tid, tenant, hash_token(token), time.time()))
        return token

    def tokens(self, tenant: str | None = None) -> list[TokenInfo]:
        """Tokens (all, or one tenant's), oldest first; ids and dates only."""
        query = "SELECT id, tenant, created_at, revoked_at FROM tokens"
        params: tuple[str, ...] = ()
        if tenant is not None:
            self.get(tenant)
            query, params = query + " WHERE tenant = ?", (tenant,)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at, id", params).fetchall()
        return [TokenInfo(*row) for row in rows]

    def revoke(self, token_id: str) -> None:
        """Revoke a token now (an earlier revocation time is kept)."""
        now = time.time()
        with self._write() as db:
            cur = db.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND "
                             "(revoked_at IS NULL OR revoked_at > ?)", (now, token_id, now))
            if cur.rowcount == 0 and not db.execute(
                    "SELECT 1 FROM tokens WHERE id = ?", (token_id,)).fetchone():
                raise TenantError(f"token: no token with id '{token_id}'; list ids with "
                                  "`mesh tenants tokens`")

    def rotate(self, tenant: str, grace_s: float = 0.0) -> str:
        """A new token for ``tenant``; its other tokens stop working now, or after ``grace_s``
        seconds so clients can switch over (their ``revoked_at`` lies in the future)."""
        if not grace_s >= 0:
            raise TenantError(f"grace: {grace_s} must be 0 or more seconds")
        tid, token = new_token()
        now = time.time()
        until = now + grace_s
        with self._write() as db:
            self._require(db, tenant)
            db.execute("UPDATE tokens SET revoked_at = ? WHERE tenant = ? AND "
                       "(revoked_at IS NULL OR revoked_at > ?)", (until, tenant, until))
            db.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, NULL)",
                       (tid, tenant, hash_token(token), now))
        return token

    # ---- readers of the whole state -------------------------------------------------------

    def generation(self) -> int:
        """A number that changes on every write, by any process (one indexed read)."""
        with self._lock:
            return read_generation(self._db)

    def snapshot(self) -> Snapshot:
        """Tenants, token hashes and the generation they belong to, read consistently."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                gen = read_generation(self._db)
                tenants = self._db.execute("SELECT name, spec FROM tenants").fetchall()
                tokens = self._db.execute(
                    "SELECT id, tenant, hash, revoked_at FROM tokens").fetchall()
            finally:
                self._db.execute("COMMIT")
        return Snapshot(
            generation=int(gen),
            tenants={n: Tenant.from_json(n, json.loads(s)) for n, s in tenants},
            tokens={row[0]: TokenRecord(*row) for row in tokens},
        )

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()

    # ---- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _require(db: sqlite3.Connection, name: str) -> None:
        if not db.execute("SELECT 1 FROM tenants WHERE name = ?", (name,)).fetchone():
            raise TenantError(f"tenant: no tenant '{name}'; {_LIST_HINT}")

    @staticmethod
    def _check_cert_subjects(db: sqlite3.Connection, tenant: Tenant) -> None:
        """A certificate name may map to one tenant only, or a client's identity would
        depend on which row the hub read first."""
        if not tenant.cert_subjects:
            return
        for name, spec in db.execute("SELECT name, spec FROM tenants WHERE name != ?",
                                     (tenant.name,)):
            taken = set(json.loads(spec).get("cert_subjects", ())) & set(tenant.cert_subjects)
            if taken:
                raise TenantError(
                    f"cert_subjects: '{sorted(taken)[0]}' already maps to tenant '{name}'; "
                    f"remove it there first (`mesh tenants set {name} --cert-subject ...`)")
