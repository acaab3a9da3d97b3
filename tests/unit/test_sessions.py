"""Sessions persist in SQLite: turns survive closing and reopening the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.errors import SessionNotFound
from mesh.orchestrator.sessions import SessionStore
from mesh.types import TurnRecord


def test_turns_survive_reopen(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite3"
    store = SessionStore(db)
    sid = store.create()
    store.append(sid, TurnRecord("q1", "a1", ("crop-yield",), 1.0))
    store.append(sid, TurnRecord("q2", "a2", ("crop-yield", "python-docs"), 2.0))
    store.close()

    reopened = SessionStore(db)
    record = reopened.get(sid)
    assert [t.question for t in record.turns] == ["q1", "q2"]
    assert record.turns[1].experts == ("crop-yield", "python-docs")
    assert [t.question for t in reopened.recent_turns(sid, 1)] == ["q2"]


def test_unknown_session(tmp_path: Path) -> None:
    store = SessionStore(tmp_path / "s.sqlite3")
    with pytest.raises(SessionNotFound, match="leave session_id empty"):
        store.get("nope")
    with pytest.raises(SessionNotFound):
        store.recent_turns("nope", 3)


def test_two_stores_on_one_file_see_each_other(tmp_path: Path) -> None:
    a = SessionStore(tmp_path / "s.sqlite3")
    b = SessionStore(tmp_path / "s.sqlite3")
    sid = a.create()
    a.append(sid, TurnRecord("q", "a", ("x",), 1.0))
    assert b.get(sid).turns[0].answer == "a"
