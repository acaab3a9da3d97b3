"""What `mesh up` left running, recorded in ``<state_dir>/run.json`` for `mesh down`/`ask`."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_STATE_DIR = "~/.mesh"


def state_dir() -> Path:
    """MESH_STATE_DIR, or ~/.mesh."""
    return Path(os.path.expanduser(os.environ.get("MESH_STATE_DIR", DEFAULT_STATE_DIR)))


@dataclass
class RunState:
    """A running mesh: its config, its Ray cluster, its orchestrator."""

    config: str
    ray_address: str
    started_ray: bool
    ray_temp_dir: str
    orchestrator_pid: int
    orchestrator_address: str

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run.json").write_text(json.dumps(asdict(self), indent=2))

    @staticmethod
    def load(folder: Path) -> RunState | None:
        path = folder / "run.json"
        if not path.is_file():
            return None
        return RunState(**json.loads(path.read_text()))

    @staticmethod
    def clear(folder: Path) -> None:
        (folder / "run.json").unlink(missing_ok=True)


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state, parent pid, ...), or None
    when the process is gone. The name (field 2) may hold spaces, so it is cut at its ')'."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()


def pid_alive(pid: int) -> bool:
    """True while the process runs; a zombie (exited, not yet reaped) counts as gone."""
    fields = proc_stat(pid)
    return fields is not None and fields[0] != "Z"


def wait_gone(pids: Iterable[int], timeout_s: float = 5.0) -> bool:
    """Wait until none of ``pids`` runs; True when they are all gone in time.

    A killed process is not gone at once: it releases its memory first (an orchestrator
    holding ~1 GB of models took long enough on two busy cores for `mesh down` to return while
    it was still exiting).
    """
    deadline = time.monotonic() + timeout_s
    waiting = [p for p in pids if pid_alive(p)]
    while waiting and time.monotonic() < deadline:
        time.sleep(0.05)
        waiting = [p for p in waiting if pid_alive(p)]
    return not waiting
