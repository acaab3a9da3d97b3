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
import time
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
    try:
        _enable_wal(db, path, timeout_s)
        db.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        db.close()
        raise
    return db


def _enable_wal(db: sqlite3.Connection, path: Path, timeout_s: float) -> None:
    """Switch the file to WAL, retrying while other processes hold it.

    Why a loop of our own: when processes open a new file at once, each holds a shared lock
    and wants the exclusive one that the switch needs. SQLite sees the deadlock and answers
    "database is locked" at once, without calling the busy handler that ``timeout`` sets, so
    the connection's timeout alone does not cover it (seen with two orchestrator processes
    starting together). Once one of them has switched, the mode is stored in the file and
    the others' switch is a no-op.
    """
    deadline = time.monotonic() + timeout_s
    for attempt in range(10_000):  # bounded; the deadline ends it long before
        try:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError(
                    f"{path}: still locked by another process after {timeout_s:.0f} s while "
                    "switching it to WAL; find the process holding it "
                    f"(`fuser {path}`) or raise the timeout") from e
            time.sleep(min(0.002 * 2 ** attempt, 0.05))
            continue
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(
                f"{path}: this file system refused SQLite's WAL mode (journal mode stays "
                f"{mode!r}); put the hub's state directory (MESH_STATE_DIR) on a local disk, "
                "not a network share")
        return


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
