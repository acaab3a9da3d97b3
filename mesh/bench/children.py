"""Child processes of the bench: started in their own session, stopped on the way out.

The bench owns several servers (the Ray host, the orchestrator, the node face); each must die
with it, even when the bench itself is killed, so they get SIGTERM when their parent exits
(Linux ``PR_SET_PDEATHSIG``) on top of the explicit stop in the bench's ``finally``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """preexec_fn: ask the kernel to SIGTERM this child when the bench goes away."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:  # not glibc Linux: the bench's finally still stops the child
        pass


class Child:
    """One server process, its output in a log file that the bench reads for readiness."""

    def __init__(self, name: str, argv: Sequence[str], log: Path,
                 env: Mapping[str, str], stdin_pipe: bool = False) -> None:
        self.name = name
        self.log = log
        self._out = open(log, "ab")  # noqa: SIM115 - handed to the child, closed in stop()
        self.proc = subprocess.Popen(
            list(argv), stdout=self._out, stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
            env=dict(env), start_new_session=True,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def wait_for(self, pattern: str, timeout_s: float,
                 on_line: Callable[[str], None] | None = None) -> re.Match[str]:
        """Poll the log until a line matches ``pattern``; ``on_line`` sees every new line.

        Raises RuntimeError with the log's tail when the child exits or the time runs out.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout_s
        seen = 0
        while True:
            try:
                lines = self.log.read_text(errors="replace").splitlines()
            except OSError:
                lines = []
            for line in lines[seen:]:
                if on_line:
                    on_line(line)
                match = regex.search(line)
                if match:
                    return match
            seen = len(lines)
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited (code {self.proc.returncode}) before it was ready; "
                    f"last lines of {self.log}:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} not ready after {timeout_s:.0f} s; last lines of {self.log}:\n"
                    f"{self.tail()}"
                )
            time.sleep(0.2)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM (or close stdin, for children that wait on it), then SIGKILL after grace."""
        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()
            else:
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._out.close()


def child_env(extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of every child: this one, quiet Ray, and the caller's additions."""
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_SERVE_LOG_TO_STDERR": "0",
           "PYTHONUNBUFFERED": "1"}
    env.pop("MESH_STATE_DIR", None)  # the bench config names its own state folder
    env.update(extra)
    return env
