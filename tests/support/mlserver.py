"""A real Seldon MLServer on loopback serving a small scikit-learn model, for the oip runtime.

MLServer pins protobuf and fastapi below the mesh's own pins, so it lives in its own virtual
environment (``.venv-mlserver``, built by ``make mlserver-venv``), as a partner would run it on
its own machine. The model is trained and saved by that environment's own scikit-learn, so the
saved file always matches the version that loads it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc

from mesh.proto.oip.v2 import grpc_predict_v2_pb2 as pb
from mesh.proto.oip.v2 import grpc_predict_v2_pb2_grpc as pb_grpc
from tests.conftest import REPO, free_port

START_TIMEOUT_S = 90.0

_TRAIN = """
import sys, joblib
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
x, y = load_iris(return_X_y=True)
joblib.dump(LogisticRegression(max_iter=500).fit(x, y), sys.argv[1])
"""


def mlserver_venv() -> Path | None:
    """The MLServer environment (MESH_MLSERVER_VENV overrides), or None when not built."""
    path = Path(os.environ.get("MESH_MLSERVER_VENV", REPO / ".venv-mlserver"))
    return path if (path / "bin" / "mlserver").is_file() else None


@dataclass(frozen=True)
class RunningMLServer:
    """Where the server listens and what it serves."""

    target: str
    model_name: str
    process: subprocess.Popen[bytes]
    log: Path


def _write_repository(folder: Path, venv: Path, model_name: str) -> None:
    model_dir = folder / model_name
    model_dir.mkdir(parents=True)
    subprocess.run([str(venv / "bin" / "python"), "-c", _TRAIN, str(model_dir / "model.joblib")],
                   check=True, timeout=120, capture_output=True)
    (model_dir / "model-settings.json").write_text(json.dumps({
        "name": model_name,
        "implementation": "mlserver_sklearn.SKLearnModel",
        "inputs": [{"name": "features", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1, 1]},
                    {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}],
        "parameters": {"uri": "./model.joblib", "version": "v1"},
    }))


def _wait_ready(target: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"mlserver exited ({process.returncode}):\n"
                                   f"{log.read_text()[-3000:]}")
            try:
                if stub.ServerReady(pb.ServerReadyRequest(), timeout=2).ready:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.5)
    raise RuntimeError(f"mlserver not ready after {START_TIMEOUT_S:.0f} s:\n"
                       f"{log.read_text()[-3000:]}")


@contextmanager
def running_mlserver(folder: Path, venv: Path, model_name: str = "iris"
                     ) -> Iterator[RunningMLServer]:
    """Start MLServer on free loopback ports with the iris model; stop it afterwards."""
    _write_repository(folder, venv, model_name)
    grpc_port = free_port()
    (folder / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": free_port(), "grpc_port": grpc_port,
        "metrics_endpoint": None, "parallel_workers": 0, "debug": False,
    }))
    log = folder / "mlserver.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    with log.open("wb") as out:
        process = subprocess.Popen([str(venv / "bin" / "mlserver"), "start", str(folder)],
                                   cwd=folder, stdout=out, stderr=subprocess.STDOUT, env=env)
    target = f"127.0.0.1:{grpc_port}"
    try:
        _wait_ready(target, process, log)
        yield RunningMLServer(target, model_name, process, log)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
