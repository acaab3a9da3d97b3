"""The real mesh end to end: `mesh up` (Ray + Serve + orchestrator process), the generated gRPC
client, sessions across turns and across an orchestrator restart, status codes through Serve,
the CLI, and `mesh down` leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest

from mesh.proto.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from mesh.wire import tensor_to_wire
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@dataclass
class Mesh:
    config: Path
    state: Path
    env: dict[str, str]
    address: str

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mesh.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, cwd=REPO)

    def stub(self) -> orchestrator_pb2_grpc.OrchestratorServiceStub:
        channel = grpc.insecure_channel(self.address)
        grpc.channel_ready_future(channel).result(timeout=30)
        return orchestrator_pb2_grpc.OrchestratorServiceStub(channel)

    def run_state(self) -> dict[str, object]:
        data: dict[str, object] = json.loads((self.state / "run.json").read_text())
        return data


@pytest.fixture(scope="module")
def mesh(loopback_only_network: None, demo_artifacts: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mesh]:
    state = tmp_path_factory.mktemp("mesh-state")
    port, gcs = free_port(), free_port()
    config = state / "mesh.yaml"
    config.write_text(
        f"experts: [{REPO / 'mesh' / 'demo' / 'manifests'}]\n"
        f"state_dir: {state}\n"
        f"orchestrator: {{port: {port}}}\n"
        f"ray: {{gcs_port: {gcs}, num_cpus: 2}}\n"
    )
    env = {**os.environ, "MESH_DEMO_ARTIFACTS": str(demo_artifacts), "MESH_STATE_DIR": str(state)}
    m = Mesh(config, state, env, f"127.0.0.1:{port}")
    try:
        up = m.cli("up", "-c", str(config))
        assert up.returncode == 0, up.stdout + up.stderr
        assert "[2/4] starting Ray" in up.stdout and "mesh is up" in up.stdout
        yield m
    finally:
        m.cli("down", "-c", str(config), timeout=120)


def ask(text: str = "", **kw: object) -> orchestrator_pb2.AskRequest:
    tensors = kw.pop("tensors", [])
    return orchestrator_pb2.AskRequest(input=common_pb2.Content(text=text, tensors=tensors), **kw)


def test_answers_from_the_right_expert_through_serve(mesh: Mesh) -> None:
    stub = mesh.stub()
    r = stub.Ask(ask("Is this breast mass malignant? mean radius 20.6, mean texture 29.3, "
                     "worst area 2027, worst concave points 0.265"), timeout=60)
    assert [p.expert for p in r.parts] == ["breast-cancer"]
    assert "malignant" in r.answer.lower()
    assert r.route.scores[0].expert == "breast-cancer"


def test_session_survives_an_orchestrator_restart(mesh: Mesh) -> None:
    stub = mesh.stub()
    first = stub.Ask(ask("What yield should I expect from Trebi barley at Morris?"), timeout=60)
    second = stub.Ask(ask("and how does the python with statement work?",
                          session_id=first.session_id), timeout=60)
    assert second.session_id == first.session_id
    assert [p.expert for p in first.parts] == ["crop-yield"]

    pid = int(str(mesh.run_state()["orchestrator_pid"]))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            time.sleep(0.1)
        except ProcessLookupError:
            break
    up = mesh.cli("up", "-c", str(mesh.config))
    assert up.returncode == 0, up.stdout + up.stderr
    assert "reusing it" in up.stdout  # Ray and the experts kept running

    stub = mesh.stub()
    session = stub.GetSession(
        orchestrator_pb2.GetSessionRequest(session_id=first.session_id), timeout=30)
    assert len(session.turns) == 2
    assert session.turns[0].experts == ["crop-yield"]
    third = stub.Ask(ask("Which variety yields the most at Waseca?", session_id=first.session_id),
                     timeout=60)
    assert third.session_id == first.session_id


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (ask(""), grpc.StatusCode.INVALID_ARGUMENT),
        (ask("z" * (10 * 1024 * 1024)), grpc.StatusCode.RESOURCE_EXHAUSTED),
        (ask("hi", experts=["nobody"]), grpc.StatusCode.NOT_FOUND),
        (ask("how do for loops work", session_id="0" * 32), grpc.StatusCode.NOT_FOUND),
        # Decoded at the edge: never reaches an expert.
        (ask(tensors=[common_pb2.Tensor(name="image", dtype=common_pb2.DATA_TYPE_FLOAT32,
                                        shape=[1, 64], raw_data=b"\0" * 10)],
             experts=["digits"]), grpc.StatusCode.INVALID_ARGUMENT),
        # Well-formed but wrong for the model: raised inside the Serve replica, status kept.
        (ask(tensors=[tensor_to_wire("image", np.zeros((1, 9), np.float32))],
             experts=["digits"]), grpc.StatusCode.INVALID_ARGUMENT),
    ],
    ids=["empty", "10MB", "unknown-expert", "unknown-session", "short-tensor", "wrong-shape"],
)
def test_bad_input_keeps_its_status_through_serve(
    mesh: Mesh, request_: orchestrator_pb2.AskRequest, code: grpc.StatusCode
) -> None:
    stub = mesh.stub()
    with pytest.raises(grpc.RpcError) as info:
        stub.Ask(request_, timeout=60)
    assert info.value.code() == code, info.value.details()
    assert "Traceback" not in (info.value.details() or "")
    ok = stub.Ask(ask("What does the python yield statement do?"), timeout=60)
    assert ok.parts[0].expert == "python-docs"


def test_stream_through_serve_ends_with_the_whole_answer(mesh: Mesh) -> None:
    stub = mesh.stub()
    chunks = list(stub.AskStream(ask("What does the python yield statement do?"), timeout=60))
    final = chunks[-1].final
    assert [p.expert for p in final.parts] == ["python-docs"]
    pieces = [c for c in chunks[:-1] if c.text_delta]
    assert pieces and all(c.expert == "python-docs" for c in pieces)
    assert "".join(c.text_delta for c in pieces) == final.parts[0].output.text
    with pytest.raises(grpc.RpcError) as info:
        list(stub.AskStream(ask(tensors=[tensor_to_wire("image", np.zeros((1, 9), np.float32))],
                                experts=["digits"]), timeout=60))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_cli_ask_route_experts(mesh: Mesh) -> None:
    experts = mesh.cli("experts", "--address", mesh.address, timeout=60)
    assert experts.returncode == 0, experts.stderr
    lines = {line.split()[0]: line.split() for line in experts.stdout.splitlines()[1:]}
    assert {"breast-cancer", "crop-yield", "python-docs", "digits"} <= set(lines)
    assert all(row[-1] == "HEALTHY" and int(row[-2]) >= 1 for row in lines.values())

    answer = mesh.cli("ask", "how do I define a function with default arguments in python?",
                      "--address", mesh.address, timeout=60)
    assert answer.returncode == 0, answer.stderr
    assert "answered by: python-docs" in answer.stdout

    route = mesh.cli("route", "expected barley yield for Velvet at University Farm",
                     "--address", mesh.address, timeout=60)
    assert route.returncode == 0 and "decision: crop-yield" in route.stdout, route.stdout

    missing = mesh.cli("ask", "hello", "--expert", "nobody", "--address", mesh.address)
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr


def test_demo_questions_reach_their_experts(mesh: Mesh) -> None:
    from mesh.demo.questions import DEMO_QUESTIONS

    stub = mesh.stub()
    for question, expected in DEMO_QUESTIONS:
        r = stub.Ask(ask(question), timeout=60)
        assert expected in [p.expert for p in r.parts], (question, r.route.reason)


def test_down_stops_everything(mesh: Mesh) -> None:
    from mesh.runstate import pid_alive
    from mesh.serving.cluster import _processes_using

    temp_dir = Path(str(mesh.run_state()["ray_temp_dir"]))
    pid = int(str(mesh.run_state()["orchestrator_pid"]))
    cluster = _processes_using(temp_dir)  # daemons, agents, controller, replicas
    assert len(cluster) >= 5, cluster
    down = mesh.cli("down", "-c", str(mesh.config), timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    survivors = [p for p in [pid, *cluster] if pid_alive(p)]
    assert not survivors, [Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in survivors]
    assert not (mesh.state / "run.json").exists()
