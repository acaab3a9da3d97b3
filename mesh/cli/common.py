"""Helpers the CLI commands share: finding the config, the running mesh, printing errors."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import grpc

from mesh.client import DEFAULT_ADDRESS

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "demo" / "mesh.yaml"


def mesh_command() -> str:
    """How the user can type this command: `mesh` when it is on PATH, else its path."""
    here = Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else None
    on_path = shutil.which("mesh")
    if on_path and (here is None or Path(on_path).resolve() == here):
        return "mesh"
    installed = Path(sys.executable).with_name("mesh")
    if installed.exists():
        try:
            return str(installed.relative_to(Path.cwd()))
        except ValueError:
            return str(installed)
    return "mesh"


def config_path(given: str | None) -> Path:
    """The config named on the command line, or the embedded demo defaults."""
    return Path(given) if given else DEMO_CONFIG


def orchestrator_address(given: str | None) -> str:
    """--address, else what `mesh up` recorded, else the default."""
    if given:
        return given
    from mesh.runstate import RunState, state_dir

    state = RunState.load(state_dir())
    return state.orchestrator_address if state else DEFAULT_ADDRESS


def demo_artifacts_dir(state: Path) -> Path:
    """Where the demo experts are built: MESH_DEMO_ARTIFACTS, else <state_dir>/artifacts."""
    path = Path(os.environ.get("MESH_DEMO_ARTIFACTS") or state / "artifacts")
    os.environ["MESH_DEMO_ARTIFACTS"] = str(path)
    return path


def rpc_error(e: grpc.RpcError, address: str) -> int:
    """Print a gRPC error as one readable line; returns the exit code."""
    code = e.code() if hasattr(e, "code") else None
    if code == grpc.StatusCode.UNAVAILABLE and "connect" in (e.details() or "").lower():
        print(f"mesh: no orchestrator answers at {address}; start one with `mesh up`",
              file=sys.stderr)
    else:
        name = code.name if code else "ERROR"
        print(f"mesh: {name}: {e.details()}", file=sys.stderr)
    return 1
