"""The hub's state files open safely when several processes start at once (CI caught two
orchestrator-like processes failing with "database is locked" while switching a new file to
WAL: SQLite answers that deadlock at once, without the connection's busy timeout)."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from mesh.statedb import open_state_db

OPENERS = 8
TRIALS = 60


def _open_together(path: Path) -> list[BaseException]:
    """OPENERS connections open one new file at the same instant; returns their errors."""
    barrier = threading.Barrier(OPENERS, timeout=30)
    errors: list[BaseException] = []

    def open_once() -> None:
        barrier.wait()
        try:
            open_state_db(path, timeout_s=5.0).close()
        except BaseException as e:  # collected, asserted on below
            errors.append(e)

    threads = [threading.Thread(target=open_once) for _ in range(OPENERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return errors


def test_many_openers_of_a_new_file_all_succeed(tmp_path: Path) -> None:
    # SQLite's file locks are shared by the threads of one process as by processes, so
    # threads meet the same deadlock; a plain connect + PRAGMA failed ~1 trial in 10 here.
    for trial in range(TRIALS):
        path = tmp_path / f"state-{trial}.sqlite3"
        errors = _open_together(path)
        assert not errors, f"trial {trial}: {errors[:2]}"
        with closing(sqlite3.connect(path)) as check:
            mode = check.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_a_file_held_locked_past_the_timeout_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "held.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x INTEGER)")
    holder.execute("BEGIN EXCLUSIVE")  # no one else can switch the mode while this lasts
    try:
        with pytest.raises(sqlite3.OperationalError, match=r"held\.sqlite3.*still locked"):
            open_state_db(path, timeout_s=0.3)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
