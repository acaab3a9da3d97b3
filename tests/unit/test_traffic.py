"""The traffic split: shares hold over many sessions, a session keeps its version, a ramp only
moves sessions forward, promote and rollback move everyone, and bad commands say what to do."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from mesh.errors import InvalidInput
from mesh.orchestrator.traffic import (
    Split,
    TrafficStore,
    VersionPicker,
    default_stable,
    promote,
    rollback,
    session_place,
    start_canary,
)

VERSIONS = ["1.0.0", "1.1.0"]


def _picker(tmp_path: Path) -> tuple[TrafficStore, VersionPicker]:
    store = TrafficStore(tmp_path / "traffic.sqlite3")
    picker = VersionPicker(store, refresh_s=0.0)
    picker.set_versions({"triage": VERSIONS})
    return store, picker


@pytest.mark.parametrize("share", [0.05, 0.3])
def test_canary_share_holds_within_three_points_over_2000_sessions(tmp_path: Path,
                                                                     share: float) -> None:
    store, picker = _picker(tmp_path)
    start_canary(store, "triage", VERSIONS, "1.1.0", share)
    assert picker.refresh()
    served = [picker.pick("triage", uuid.uuid4().hex) for _ in range(2000)]
    observed = served.count("1.1.0") / len(served)
    assert abs(observed - share) <= 0.03, observed


def test_a_session_keeps_its_version_and_a_ramp_only_moves_sessions_to_the_canary(
    tmp_path: Path,
) -> None:
    store, picker = _picker(tmp_path)
    sessions = [uuid.uuid4().hex for _ in range(500)]
    start_canary(store, "triage", VERSIONS, "1.1.0", 0.1)
    picker.refresh()
    first = {s: picker.pick("triage", s) for s in sessions}
    assert all(picker.pick("triage", s) == v for s, v in first.items())  # sticky
    start_canary(store, "triage", VERSIONS, "1.1.0", 0.5)
    picker.refresh()
    later = {s: picker.pick("triage", s) for s in sessions}
    assert all(later[s] == "1.1.0" for s, v in first.items() if v == "1.1.0")
    assert sum(v == "1.1.0" for v in later.values()) > sum(v == "1.1.0" for v in first.values())


def test_places_are_independent_between_experts() -> None:
    same = sum((session_place(str(i), "a") < 0.5) == (session_place(str(i), "b") < 0.5)
               for i in range(2000))
    assert 850 < same < 1150  # about half agree, as for independent coins


def test_promote_and_rollback_move_every_session(tmp_path: Path) -> None:
    store, picker = _picker(tmp_path)
    assert picker.splits()["triage"] == Split("triage", "1.0.0")  # the oldest serves first
    start_canary(store, "triage", VERSIONS, "1.1.0", 0.2)
    rollback(store, "triage", VERSIONS)
    picker.refresh()
    assert {picker.pick("triage", str(i)) for i in range(300)} == {"1.0.0"}
    start_canary(store, "triage", VERSIONS, "1.1.0", 0.2)
    promote(store, "triage", VERSIONS)
    picker.refresh()
    assert {picker.pick("triage", str(i)) for i in range(300)} == {"1.1.0"}
    assert picker.splits()["triage"].shares() == {"1.1.0": 1.0}


def test_another_process_changing_the_split_is_seen_after_refresh_s(tmp_path: Path) -> None:
    store = TrafficStore(tmp_path / "traffic.sqlite3")
    picker = VersionPicker(TrafficStore(tmp_path / "traffic.sqlite3"), refresh_s=3600)
    picker.set_versions({"triage": VERSIONS})
    picker.refresh()
    start_canary(store, "triage", VERSIONS, "1.1.0", 1.0)
    assert not picker.refresh()  # inside refresh_s: no read at all
    picker.refresh_s = 0.0
    assert picker.refresh() and picker.pick("triage", "s") == "1.1.0"


def test_a_split_naming_an_undeployed_version_falls_back_to_what_is_deployed(
    tmp_path: Path,
) -> None:
    store, picker = _picker(tmp_path)
    start_canary(store, "triage", VERSIONS, "1.1.0", 0.5)
    picker.set_versions({"triage": ["1.0.0"]})  # the canary's manifest left the config
    picker.refresh()
    assert picker.splits()["triage"] == Split("triage", "1.0.0")


def test_bad_commands_name_the_problem(tmp_path: Path) -> None:
    store, _ = _picker(tmp_path)
    with pytest.raises(InvalidInput, match=r"no version '9\.9\.9'.*versions: 1\.0\.0, 1\.1\.0"):
        start_canary(store, "triage", VERSIONS, "9.9.9", 0.05)
    with pytest.raises(InvalidInput, match="already the stable version"):
        start_canary(store, "triage", VERSIONS, "1.0.0", 0.05)
    with pytest.raises(InvalidInput, match=r"no canary to promote.*mesh canary"):
        promote(store, "triage", VERSIONS)
    with pytest.raises(InvalidInput, match="from 0 to 1"):
        start_canary(store, "triage", VERSIONS, "1.1.0", 5)


def test_versions_sort_as_versions_not_text() -> None:
    assert default_stable(["1.10.0", "1.9.0"]) == "1.9.0"
    assert default_stable(["b-build", "a-build"]) == "a-build"
