"""Fixtures shared by every suite: the shared data folder, the built demo experts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    """The one setting for public data and schemas: MESH_SHARED_DIR, default ../shared."""
    return Path(os.environ.get("MESH_SHARED_DIR", REPO.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared() -> Path:
    """../shared (or MESH_SHARED_DIR); skips with the reason when it is absent."""
    path = shared_dir()
    if not (path / "data").is_dir():
        pytest.skip(f"shared data not found at {path} (set MESH_SHARED_DIR to its folder)")
    return path


@pytest.fixture(scope="session")
def demo_artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo experts, built once per test session from public data."""
    from mesh.demo.build import build_demo

    cached = os.environ.get("MESH_TEST_ARTIFACTS")
    out = Path(cached) if cached else tmp_path_factory.mktemp("demo-artifacts")
    build_demo(out)
    os.environ["MESH_DEMO_ARTIFACTS"] = str(out)
    return out


def _only_loopback() -> bool:
    """True inside a network namespace whose only interface is loopback (/proc/self/net/dev
    is per namespace; /sys/class/net is not, it shows the namespace that mounted /sys)."""
    try:
        lines = Path("/proc/self/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return {line.split(":", 1)[0].strip() for line in lines} <= {"lo"}


@pytest.fixture(scope="session")
def loopback_only_network() -> None:
    """Tests that start Ray need a loopback-only network namespace (Ray binds every interface
    and probes an outside address). `make test` provides one through scripts/netns-run."""
    if _only_loopback():
        return
    if os.environ.get("MESH_NO_NETNS"):
        pytest.skip("starts Ray, which needs a loopback-only network namespace; this user "
                    "cannot create one (unshare -n was refused)")
    pytest.skip("starts Ray, which must run in a loopback-only network namespace: run the suite "
                "with `make test` (scripts/netns-run), or under `unshare -n`")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now, for a server a test starts a little later.

    Drawn from 20000-31999: below the kernel's ephemeral range (32768+ by default) and above
    Ray's worker ports (10002-19999). A port the kernel hands out (bind to 0) can be handed again
    to one of Ray's own servers before the test's server binds it; CI saw a node fail to bind
    that way.
    """
    import random
    import socket

    draw = random.SystemRandom()
    for _ in range(500):
        port = draw.randrange(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free TCP port on 127.0.0.1 in 20000-31999")
