"""A streaming expert (the ``openai`` runtime against a real OpenAI-compatible server on
loopback) through the orchestrator's AskStream over real gRPC: in-process and on Ray Serve.

The same path carries a ``vllm`` expert's tokens on a GPU node; here a CPU expert that streams
proves the orchestrator forwards each piece as it is produced, not the whole answer at the end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from mesh.config import ExpertManifest
from mesh.experts.transport import LocalTransport
from mesh.proto.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from tests.support.openai_server import OpenAITestServer
from tests.support.orchestrator import orchestrator_stub


def _manifest(base_url: str, key_file: Path) -> ExpertManifest:
    return ExpertManifest.model_validate({
        "name": "echo-llm", "organization": "test-org",
        "description": "A chat model that echoes the question, for tests.",
        "examples": ["say hello", "repeat after me", "echo this sentence"],
        "runtime": "openai",
        "model": {"base_url": base_url, "model": "echo-1", "api_key_file": str(key_file),
                  "max_retries": 0},
        "resources": {"num_cpus": 0.25},
    })


@pytest.fixture(scope="module")
def llm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OpenAITestServer, Path]]:
    key = tmp_path_factory.mktemp("secrets") / "key"
    key.write_text("test-key\n")
    with OpenAITestServer() as server:
        server.behaviour.delay_s = 0.1
        yield server, key


def _ask_stream(stub: orchestrator_pb2_grpc.OrchestratorServiceStub, text: str
                ) -> tuple[list[orchestrator_pb2.AskChunk], list[float]]:
    request = orchestrator_pb2.AskRequest(input=common_pb2.Content(text=text),
                                          experts=["echo-llm"])
    start = time.perf_counter()
    chunks, stamps = [], []
    for chunk in stub.AskStream(request, timeout=60):
        chunks.append(chunk)
        stamps.append(time.perf_counter() - start)
    return chunks, stamps


def _check_streamed(chunks: list[orchestrator_pb2.AskChunk], stamps: list[float]) -> None:
    final = chunks[-1].final
    deltas = [c.text_delta for c in chunks[:-1]]
    assert deltas == ["echo:", " tokens", " arrive", " one", " by", " one"]
    assert final.parts[0].expert == "echo-llm" and final.parts[0].organization == "test-org"
    assert final.answer == "".join(deltas) == "echo: tokens arrive one by one"
    # Six pieces 0.1 s apart at the source: the client saw them spread out, not in one burst.
    assert stamps[5] - stamps[0] > 0.35, stamps


def test_ask_stream_in_process(llm: tuple[OpenAITestServer, Path], tmp_path: Path) -> None:
    server, key = llm
    manifest = _manifest(server.base_url, key)
    with orchestrator_stub([manifest], LocalTransport([manifest]), tmp_path) as stub:
        _check_streamed(*_ask_stream(stub, "tokens arrive one by one"))
        server.behaviour.fail_next = [503]
        with pytest.raises(grpc.RpcError) as info:
            _ask_stream(stub, "this one fails")
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "answered 503" in (info.value.details() or "")


@pytest.mark.slow
def test_ask_stream_through_ray_serve(
    llm: tuple[OpenAITestServer, Path], tmp_path: Path, loopback_only_network: None
) -> None:
    import ray
    from ray import serve

    from mesh.serving.apps import deploy_experts
    from mesh.serving.handle_transport import ServeTransport

    server, key = llm
    manifest = _manifest(server.base_url, key)
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             log_to_driver=False, configure_logging=False)
    try:
        serve.start(proxy_location="Disabled")
        deploy_experts([manifest], progress=lambda _: None, timeout_s=180)
        transport = ServeTransport([manifest.key])
        with orchestrator_stub([manifest], transport, tmp_path) as stub:
            _check_streamed(*_ask_stream(stub, "tokens arrive one by one"))
        states = asyncio.run(ServeTransport([manifest.key]).states())
        assert states["echo-llm@1.0.0"].status == "HEALTHY"
    finally:
        serve.shutdown()
        ray.shutdown()
