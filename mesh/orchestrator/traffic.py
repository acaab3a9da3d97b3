"""Which version of an expert answers: a traffic split per expert, sticky per session.

Two versions of one expert serve side by side (each is its own Serve application, keyed
``name@version``). The split lives in one SQLite file in the hub's state folder, so every
orchestrator process of the hub applies the same split and `mesh canary`, `mesh promote` and
`mesh rollback` change it on a running hub without a restart: orchestrators notice a new
generation within ``refresh_s``.

Stickiness needs no state: a session's place in [0, 1) is a hash of its id and the expert's
name, and the session goes to the canary when that place is below the canary's share. Raising
the share only moves stable sessions to the canary (never back), so a conversation does not
flip between versions while a canary ramps up; promote and rollback move everyone at once, by
design. Changing the split never cancels a call already sent to a version.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from mesh.errors import InvalidInput
from mesh.statedb import (
    GENERATION_SCHEMA,
    bump_generation,
    immediate,
    open_state_db,
    read_generation,
)

TRAFFIC_DB = "traffic.sqlite3"
"""The split's file in the hub's state folder."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS splits (
    expert TEXT PRIMARY KEY,
    stable TEXT NOT NULL,
    canary TEXT,
    share REAL NOT NULL,
    updated_at REAL NOT NULL
);
""" + GENERATION_SCHEMA


@dataclass(frozen=True)
class Split:
    """One expert's traffic: ``share`` of sessions (0-1) go to ``canary``, the rest to
    ``stable``."""

    expert: str
    stable: str
    canary: str | None = None
    share: float = 0.0

    def version_for(self, place: float) -> str:
        """The version a session at ``place`` (see ``session_place``) is served by."""
        if self.canary is not None and place < self.share:
            return self.canary
        return self.stable

    def shares(self) -> dict[str, float]:
        """Each version's share of sessions."""
        if self.canary is None or self.share <= 0:
            return {self.stable: 1.0}
        return {self.stable: 1.0 - self.share, self.canary: self.share}


def session_place(session_id: str, expert: str) -> float:
    """A session's fixed place in [0, 1) for one expert (BLAKE2b of both: uniform, and
    independent between experts, so one session is not the canary of every expert at once)."""
    digest = hashlib.blake2b(f"{expert}\x00{session_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


def _version_order(version: str) -> tuple[int, object]:
    """Sort key: PEP 440 order where the version parses, text order otherwise."""
    from packaging.version import InvalidVersion, Version

    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def default_stable(versions: Iterable[str]) -> str:
    """The version that serves when no split was ever set: the oldest, so deploying a new
    version next to a running one sends it no traffic until `mesh canary` asks for some."""
    return min(versions, key=_version_order)


class TrafficStore:
    """The hub's splits in one SQLite file (WAL), shared by the CLI and every orchestrator."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = open_state_db(self.path)
        self._db.executescript(_SCHEMA)

    def generation(self) -> int:
        """Bumped by every change; orchestrators reload when it moves."""
        with self._lock:
            return read_generation(self._db)

    def splits(self) -> dict[str, Split]:
        """Every stored split, by expert."""
        with self._lock:
            rows = self._db.execute("SELECT expert, stable, canary, share FROM splits").fetchall()
        return {r[0]: Split(r[0], r[1], r[2], float(r[3])) for r in rows}

    def put(self, split: Split) -> None:
        """Store a split (committed before returning) and bump the generation."""
        with self._lock, immediate(self._db) as db:
            db.execute("INSERT OR REPLACE INTO splits VALUES (?, ?, ?, ?, ?)",
                       (split.expert, split.stable, split.canary, split.share, time.time()))
            bump_generation(db)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _current(store: TrafficStore, expert: str, versions: list[str]) -> Split:
    stored = store.splits().get(expert)
    return effective_split(expert, versions, stored)


def effective_split(expert: str, versions: list[str], stored: Split | None) -> Split:
    """The split in force for ``expert`` given the versions deployed: the stored one, unless it
    names a version that is not deployed (then the oldest deployed version, or the stored
    stable one alone, serves everyone)."""
    if stored is None or stored.stable not in versions:
        return Split(expert, default_stable(versions))
    if stored.canary is not None and stored.canary not in versions:
        return Split(expert, stored.stable)
    return stored


def _check_version(expert: str, version: str, versions: list[str]) -> None:
    if version not in versions:
        raise InvalidInput(
            "version", f"expert '{expert}' has no version '{version}' in the mesh config "
            f"(versions: {', '.join(sorted(versions, key=_version_order))}); add its manifest "
            "to the config and run `mesh up` first")


def start_canary(store: TrafficStore, expert: str, versions: list[str], canary: str,
                 share: float) -> Split:
    """Send ``share`` (0-1) of ``expert``'s sessions to version ``canary``."""
    _check_version(expert, canary, versions)
    if not 0.0 <= share <= 1.0:
        raise InvalidInput("share", f"is {share}; give a fraction of sessions from 0 to 1")
    current = _current(store, expert, versions)
    if canary == current.stable:
        raise InvalidInput(
            "version", f"'{canary}' is already the stable version of '{expert}'; name the new "
            "version to send traffic to")
    split = Split(expert, current.stable, canary, share)
    store.put(split)
    return split


def promote(store: TrafficStore, expert: str, versions: list[str]) -> Split:
    """Make the canary the stable version: every session goes to it."""
    return _end_canary(store, expert, versions, keep_canary=True)


def rollback(store: TrafficStore, expert: str, versions: list[str]) -> Split:
    """Send every session back to the stable version (the canary stays deployed, idle)."""
    return _end_canary(store, expert, versions, keep_canary=False)


def _end_canary(store: TrafficStore, expert: str, versions: list[str], keep_canary: bool
                ) -> Split:
    current = _current(store, expert, versions)
    if current.canary is None:
        verb, hint = (("promote", "; start one with `mesh canary EXPERT VERSION --share 5`")
                      if keep_canary else ("roll back", ""))
        raise InvalidInput(
            "expert", f"'{expert}' has no canary to {verb} (stable: {current.stable}){hint}")
    split = Split(expert, current.canary if keep_canary else current.stable)
    store.put(split)
    return split


class VersionPicker:
    """Per request: which deployed version of an expert answers a session.

    Reads the store at most every ``refresh_s`` (one indexed read of the generation), so a
    split changed from another process applies within that time; without a store, the oldest
    version of each expert serves.
    """

    def __init__(self, store: TrafficStore | None, refresh_s: float = 0.2) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self._versions: dict[str, list[str]] = {}
        self._stored: dict[str, Split] = {}
        self._splits: dict[str, Split] = {}
        self._generation = -1
        self._checked = float("-inf")
        self._lock = threading.Lock()

    def set_versions(self, versions: Mapping[str, Iterable[str]]) -> None:
        """The versions deployed now, by expert."""
        with self._lock:
            self._versions = {name: sorted(v, key=_version_order) for name, v in versions.items()}
            self._rebuild()

    def _rebuild(self) -> None:
        self._splits = {
            name: effective_split(name, versions, self._stored.get(name))
            for name, versions in self._versions.items()
        }

    def refresh(self) -> bool:
        """Reload the splits when another process changed them; True when they changed."""
        now = time.monotonic()
        if self.store is None or now - self._checked < self.refresh_s:
            return False
        self._checked = now
        generation = self.store.generation()
        if generation == self._generation:
            return False
        stored = self.store.splits()
        with self._lock:
            self._generation, self._stored = generation, stored
            before = self._splits
            self._rebuild()
            return self._splits != before

    def splits(self) -> dict[str, Split]:
        """The split in force per expert."""
        return dict(self._splits)

    def pick(self, expert: str, session_id: str) -> str:
        """The version that answers ``session_id`` for ``expert``."""
        return self._splits[expert].version_for(session_place(session_id, expert))
