"""The hub's state files: SQLite opened one way for every store (sessions, registry, tenants,
quota counters, traffic splits).

WAL lets readers go on while one process writes, so every orchestrator process of a hub and
the `mesh` commands can share a file. Connections are in autocommit mode: a store that needs
several statements to be atomic wraps them in ``immediate`` (BEGIN IMMEDIATE takes the write
lock at once, so two processes never interleave a read-modify-write). Connections may be used
from any thread; each store serialises its own calls with a lock.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal


def open_state_db(path: str | Path, synchronous: Literal["FULL", "NORMAL"] = "FULL",
                  timeout_s: float = 10.0) -> sqlite3.Connection:
    """Open (creating its folder) one state file. ``synchronous=FULL`` for what a client or a
    partner was told (a commit survives power loss); ``NORMAL`` for counters, whose loss on a
    power cut costs nothing that was acknowledged."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, timeout=timeout_s,
                         isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    return db


@contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed on exit, rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


GENERATION_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
"""
"""A counter that every write of a store bumps (tenants, traffic splits): other processes
read this one row to learn, cheaply, whether to reload."""


def bump_generation(db: sqlite3.Connection) -> None:
    """Inside a write transaction: tell readers the store changed."""
    db.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")


def read_generation(db: sqlite3.Connection) -> int:
    """The store's generation (one indexed read)."""
    return int(db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()[0])
