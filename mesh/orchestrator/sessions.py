"""Conversations that survive restarts: SQLite in WAL mode, one file per hub.

A turn is committed (fsync, ``synchronous=FULL``) before its answer goes back to the client, so
nothing acknowledged is lost when the orchestrator dies. Calls are short and blocking; the async
service runs them in a worker thread.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from mesh.errors import SessionNotFound
from mesh.statedb import open_state_db
from mesh.types import TurnRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    tenant TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS turns (
    session_id TEXT NOT NULL REFERENCES sessions(id),
    seq INTEGER NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    experts TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (session_id, seq)
);
"""


@dataclass
class SessionRecord:
    """A session and its turns, oldest first."""

    session_id: str
    created_at: float
    turns: list[TurnRecord] = field(default_factory=list)


def new_session_id() -> str:
    """A fresh, unguessable session id."""
    return uuid.uuid4().hex


class SessionStore:
    """Sessions in one SQLite file; safe to share between threads of one process.

    Several processes may open the same file (WAL allows concurrent readers and one writer).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        # Autocommit: every write below is one statement, committed (fsync) when it returns.
        self._db = open_state_db(self.path)
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(sessions)")}
        if "tenant" not in columns:  # a file from before tenants: its sessions belong to no one
            self._db.execute("ALTER TABLE sessions ADD COLUMN tenant TEXT NOT NULL DEFAULT ''")

    def create(self, session_id: str | None = None, tenant: str = "") -> str:
        """Start a new session owned by ``tenant``; returns its id. The orchestrator passes the
        id it allocated when the turn began (the id decides which expert versions answer)."""
        session_id = session_id or new_session_id()
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (id, created_at, tenant) VALUES (?, ?, ?)",
                (session_id, time.time(), tenant),
            )
        return session_id

    def exists(self, session_id: str, tenant: str | None = None) -> bool:
        """Whether the session exists and, when ``tenant`` is given, is visible to it: a
        tenant sees only its own sessions (and those from before tenants, owned by no one)."""
        with self._lock:
            row = self._db.execute("SELECT tenant FROM sessions WHERE id = ?",
                                   (session_id,)).fetchone()
        return row is not None and (tenant is None or row[0] in ("", tenant))

    def recent_turns(self, session_id: str, limit: int, tenant: str | None = None
                     ) -> list[TurnRecord]:
        """The last ``limit`` turns, oldest first; raises SessionNotFound (also for another
        tenant's session: its existence is not disclosed)."""
        if not self.exists(session_id, tenant):
            raise SessionNotFound(session_id)
        if limit <= 0:
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT question, answer, experts, created_at FROM turns WHERE session_id = ? "
                "ORDER BY seq DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
        return [_turn(r) for r in reversed(rows)]

    def get(self, session_id: str, tenant: str | None = None) -> SessionRecord:
        """The whole session; raises SessionNotFound (also for another tenant's session)."""
        with self._lock:
            head = self._db.execute(
                "SELECT created_at, tenant FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if head is None or (tenant is not None and head[1] not in ("", tenant)):
                raise SessionNotFound(session_id)
            rows = self._db.execute(
                "SELECT question, answer, experts, created_at FROM turns WHERE session_id = ? "
                "ORDER BY seq",
                (session_id,),
            ).fetchall()
        return SessionRecord(session_id, head[0], [_turn(r) for r in rows])

    def append(self, session_id: str, turn: TurnRecord) -> None:
        """Record a finished turn durably (committed before this returns)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO turns (session_id, seq, question, answer, experts, created_at) "
                "VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM turns WHERE session_id = ?), "
                "?, ?, ?, ?)",
                (session_id, session_id, turn.question, turn.answer, json.dumps(list(turn.experts)),
                 turn.created_at or time.time()),
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _turn(row: tuple[str, str, str, float]) -> TurnRecord:
    return TurnRecord(row[0], row[1], tuple(json.loads(row[2])), row[3])
