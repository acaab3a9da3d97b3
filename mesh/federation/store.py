"""The registry's durable state: one SQLite file (WAL) on the hub.

What a partner was told (its lease, its accepted manifest) survives a hub restart: a write is
committed (``synchronous=FULL``) before Register answers. Heartbeats are frequent and only
matter while the hub runs, so they are kept in memory by the registry and written here at most
once per expert per ``persist_every_s``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from mesh.statedb import open_state_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS experts (
    name TEXT PRIMARY KEY,
    organization TEXT NOT NULL,
    node_address TEXT NOT NULL,
    lease_id TEXT NOT NULL,
    payload BLOB NOT NULL,
    signature BLOB NOT NULL,
    registered_at REAL NOT NULL,
    last_heartbeat REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS experts_by_lease ON experts(lease_id);
"""


@dataclass(frozen=True)
class StoredExpert:
    """One registered expert as persisted: the signed manifest is kept as it was received, so
    it is verified again (against the current trust list) when the hub loads it."""

    name: str
    organization: str
    node_address: str
    lease_id: str
    payload: bytes
    signature: bytes
    registered_at: float
    last_heartbeat: float


class RegistryStore:
    """Thread-safe access to the registry's SQLite file."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_state_db(path)
        self._db.executescript(_SCHEMA)

    def upsert(self, e: StoredExpert) -> None:
        """Add or replace an expert (committed before returning)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO experts VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (e.name, e.organization, e.node_address, e.lease_id, e.payload, e.signature,
                 e.registered_at, e.last_heartbeat),
            )

    def remove(self, name: str) -> None:
        """Forget an expert."""
        with self._lock:
            self._db.execute("DELETE FROM experts WHERE name = ?", (name,))

    def touch(self, lease_id: str, when: float) -> None:
        """Record a heartbeat for every expert of a lease."""
        with self._lock:
            self._db.execute("UPDATE experts SET last_heartbeat = ? WHERE lease_id = ?",
                             (when, lease_id))

    def all(self) -> list[StoredExpert]:
        """Every stored expert, by name."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM experts ORDER BY name").fetchall()
        return [StoredExpert(*r) for r in rows]

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            self._db.close()
