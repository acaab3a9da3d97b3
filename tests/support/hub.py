"""Real hubs for tests: a mesh config of small iris experts (any versions), and `mesh
orchestrator --local` processes started on it, as an operator would run them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grpc
import numpy as np
import yaml

from mesh.proto.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from mesh.wire import tensors_to_wire
from tests.conftest import free_port
from tests.support.models import iris_fields, iris_model

FLOWER = {"X": np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)}


def iris_mesh(folder: Path, versions: Sequence[str] = ("1.0.0",), extra: str = "") -> Path:
    """A mesh config with one manifest per version of the expert ``iris`` (same model file),
    state in ``folder/state``; returns the config's path. ``extra`` is appended to the YAML."""
    model = iris_model(folder)
    experts = folder / "experts"
    experts.mkdir(exist_ok=True)
    for version in versions:
        (experts / f"iris-{version}.yaml").write_text(
            yaml.safe_dump(iris_fields(model, version=version)))
    config = folder / "mesh.yaml"
    config.write_text(f"experts: [{experts}]\nstate_dir: {folder / 'state'}\n" + extra)
    return config


def ask_iris(session_id: str = "", experts: Sequence[str] = ("iris",)
             ) -> orchestrator_pb2.AskRequest:
    """An Ask for the iris expert, named (no routing: the tests are about who answers)."""
    return orchestrator_pb2.AskRequest(
        input=common_pb2.Content(tensors=tensors_to_wire(FLOWER)), session_id=session_id,
        experts=list(experts))


@contextmanager
def orchestrator_process(config: Path, log: Path, env: dict[str, str] | None = None
                         ) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """`mesh orchestrator --local` on a free loopback port; yields (port, process) once it
    serves, and stops it (SIGTERM, then SIGKILL) on exit."""
    port = free_port()
    out = open(log, "ab")  # noqa: SIM115 - the child owns it
    proc = subprocess.Popen(
        [sys.executable, "-m", "mesh.cli", "orchestrator", "-c", str(config), "--local",
         "--port", str(port), "--metrics-port", "0"],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, **(env or {})})
    try:
        # Its own words, not a plaintext probe: the port may serve mutual TLS.
        deadline = time.monotonic() + 90
        while "orchestrator serving on" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"orchestrator did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.1)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        out.close()


def metrics_port(log: Path) -> int:
    """The /metrics port an orchestrator printed to its log."""
    for line in log.read_text().splitlines():
        if line.startswith("metrics on http://"):
            return int(line.rsplit(":", 1)[1].split("/")[0])
    raise AssertionError(f"no metrics port in {log}")


def stub(port: int) -> orchestrator_pb2_grpc.OrchestratorServiceStub:
    return orchestrator_pb2_grpc.OrchestratorServiceStub(
        grpc.insecure_channel(f"127.0.0.1:{port}"))
