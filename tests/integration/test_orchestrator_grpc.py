"""The Orchestrator over real gRPC on loopback, with the real demo experts loaded in-process
(LocalTransport, no Ray): status codes of the contract, sessions, streaming, health, reflection."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from mesh.config import OrchestratorConfig, load_config, load_manifests
from mesh.experts.transport import LocalTransport
from mesh.orchestrator.server import serve_orchestrator
from mesh.orchestrator.service import Orchestrator
from mesh.orchestrator.sessions import SessionStore
from mesh.proto.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from mesh.wire import tensor_to_wire

DEMO = Path(__file__).resolve().parents[2] / "mesh" / "demo" / "mesh.yaml"


class _ServerThread:
    """Runs an orchestrator's asyncio loop in a thread so the test can use the sync client."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.orchestrator = orchestrator
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert self.ready.wait(30), "orchestrator did not start"

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.running = self.loop.run_until_complete(serve_orchestrator(self.orchestrator))
        self.port = self.running.port
        self.ready.set()
        self.loop.run_forever()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.running.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def channel(demo_artifacts: Path, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[grpc.Channel]:
    manifests = load_manifests(load_config(DEMO))
    sessions = SessionStore(tmp_path_factory.mktemp("state") / "sessions.sqlite3")
    config = OrchestratorConfig(port=0, max_text_bytes=100_000)
    orchestrator = Orchestrator(manifests, LocalTransport(manifests), sessions, config)
    server = _ServerThread(orchestrator)
    channel = grpc.insecure_channel(
        f"127.0.0.1:{server.port}",
        options=[("grpc.max_send_message_length", 32 * 1024 * 1024)],
    )
    yield channel
    channel.close()
    server.stop()


@pytest.fixture
def stub(channel: grpc.Channel) -> orchestrator_pb2_grpc.OrchestratorServiceStub:
    return orchestrator_pb2_grpc.OrchestratorServiceStub(channel)


def ask(text: str = "", **kw: object) -> orchestrator_pb2.AskRequest:
    tensors = kw.pop("tensors", [])
    return orchestrator_pb2.AskRequest(input=common_pb2.Content(text=text, tensors=tensors), **kw)


def _code(stub: orchestrator_pb2_grpc.OrchestratorServiceStub,
          req: orchestrator_pb2.AskRequest) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        stub.Ask(req, timeout=30)
    return info.value.code(), info.value.details()


def test_routes_to_the_right_expert(stub: orchestrator_pb2_grpc.OrchestratorServiceStub) -> None:
    r = stub.Ask(ask("What barley yield can I expect for the Manchuria variety at Waseca?"),
                 timeout=30)
    assert [p.expert for p in r.parts] == ["crop-yield"]
    assert r.parts[0].organization
    assert r.route.scores[0].expert == "crop-yield"
    assert r.answer and r.session_id
    assert r.timings.total_ms >= r.timings.experts_ms > 0


def test_session_continues_and_is_readable(
    stub: orchestrator_pb2_grpc.OrchestratorServiceStub,
) -> None:
    first = stub.Ask(ask("How does a for loop work in Python?"), timeout=30)
    second = stub.Ask(ask("And what does the with statement do in Python?",
                          session_id=first.session_id), timeout=30)
    assert second.session_id == first.session_id
    session = stub.GetSession(
        orchestrator_pb2.GetSessionRequest(session_id=first.session_id), timeout=10
    )
    assert [t.question for t in session.turns] == [
        "How does a for loop work in Python?", "And what does the with statement do in Python?"
    ]
    assert session.turns[0].experts == ["python-docs"]


@pytest.mark.parametrize(
    ("case", "code", "words"),
    [
        ("empty", grpc.StatusCode.INVALID_ARGUMENT, "input.text"),
        ("blank", grpc.StatusCode.INVALID_ARGUMENT, "input.text"),
        ("too_large", grpc.StatusCode.RESOURCE_EXHAUSTED, "input.text is"),
        ("huge_10mb", grpc.StatusCode.RESOURCE_EXHAUSTED, ""),
        ("unknown_expert", grpc.StatusCode.NOT_FOUND, "mesh experts"),
        ("unknown_session", grpc.StatusCode.NOT_FOUND, "unknown session"),
        ("short_raw_data", grpc.StatusCode.INVALID_ARGUMENT, "input.tensors['image']"),
        ("wrong_shape", grpc.StatusCode.INVALID_ARGUMENT, "input.tensors['image']"),
        ("tensors_without_expert", grpc.StatusCode.INVALID_ARGUMENT, "experts"),
    ],
)
def test_bad_input_gets_its_status_and_the_mesh_keeps_serving(
    stub: orchestrator_pb2_grpc.OrchestratorServiceStub, case: str, code: grpc.StatusCode,
    words: str,
) -> None:
    image = np.zeros((1, 64), dtype=np.float32)
    requests = {
        "empty": ask(""),
        "blank": ask("   \n\t "),
        "too_large": ask("x" * 200_000),
        "huge_10mb": ask("y" * 10_000_000),
        "unknown_expert": ask("hello", experts=["no-such-expert"]),
        "unknown_session": ask("how do for loops work?", session_id="deadbeef"),
        "short_raw_data": ask(tensors=[common_pb2.Tensor(
            name="image", dtype=common_pb2.DATA_TYPE_FLOAT32, shape=[1, 64], raw_data=b"\0" * 7)],
            experts=["digits"]),
        "wrong_shape": ask(tensors=[tensor_to_wire("image", np.zeros((1, 5), np.float32))],
                           experts=["digits"]),
        "tensors_without_expert": ask(tensors=[tensor_to_wire("image", image)]),
    }
    got, details = _code(stub, requests[case])
    assert got == code, details
    assert words in details
    assert "Traceback" not in details
    # ... and the next request is served.
    r = stub.Ask(ask("Is this breast mass malignant? mean radius 17.99, worst area 2019"),
                 timeout=30)
    assert r.parts[0].expert == "breast-cancer"


def test_tensor_request_to_a_named_expert(
    stub: orchestrator_pb2_grpc.OrchestratorServiceStub,
) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    image = digits.data[digits.target == 3][0].reshape(1, 8, 8).astype(np.float32)
    r = stub.Ask(ask(tensors=[tensor_to_wire("image", image)], experts=["digits"]), timeout=30)
    assert r.parts[0].expert == "digits"
    assert "3" in r.answer


def test_route_explains_and_out_of_scope_says_so(
    stub: orchestrator_pb2_grpc.OrchestratorServiceStub,
) -> None:
    route = stub.Route(orchestrator_pb2.RouteRequest(
        input=common_pb2.Content(text="Which barley variety yields most at Crookston?")),
        timeout=10)
    assert route.route.chosen == ["crop-yield"] and route.route.reason
    assert "English model" in route.route.reason
    explained = route.threshold_explanation
    assert f"threshold {route.route.threshold:.2f} calibrated from" in explained
    assert "Multilingual model" in explained
    hindi = stub.Route(orchestrator_pb2.RouteRequest(
        input=common_pb2.Content(text="स्तन कैंसर की जांच के लिए कोशिका माप बताइए")), timeout=10)
    assert "multilingual model" in hindi.route.reason and "devanagari" in hindi.route.reason
    off = stub.Ask(ask("Who won the football world cup in 1998?"), timeout=30)
    assert off.route.out_of_scope and not off.parts
    assert "No expert" in off.answer


def test_stream_ends_with_the_whole_answer(
    stub: orchestrator_pb2_grpc.OrchestratorServiceStub,
) -> None:
    chunks = list(stub.AskStream(ask("What does the yield statement do in Python?"), timeout=30))
    final = chunks[-1].final
    assert final.parts[0].expert == "python-docs"
    assert "".join(c.text_delta for c in chunks[:-1]) == final.parts[0].output.text


def test_list_experts(stub: orchestrator_pb2_grpc.OrchestratorServiceStub) -> None:
    rows = stub.ListExperts(orchestrator_pb2.ListExpertsRequest(), timeout=10).experts
    names = {r.card.name for r in rows}
    assert {"breast-cancer", "crop-yield", "python-docs", "digits"} <= names
    assert all(r.status == "HEALTHY" and r.replicas == 1 for r in rows)


def test_health_and_reflection(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    ok = health.Check(health_pb2.HealthCheckRequest(service="mesh.v1.OrchestratorService"))
    assert ok.status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    reply = next(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(
        list_services="")])))
    services = {s.name for s in reply.list_services_response.service}
    assert "mesh.v1.OrchestratorService" in services and "grpc.health.v1.Health" in services
