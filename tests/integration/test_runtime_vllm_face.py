"""A vLLM expert's face (``VllmIngress``) on a real Ray Serve, in front of a CPU stand-in with
Ray Serve LLM's ``chat`` contract: tokens stream through the handle and through the
orchestrator's AskStream as the engine produces them. Only the engine itself needs a GPU."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.config import ExpertManifest
from mesh.proto.v1 import common_pb2, orchestrator_pb2
from mesh.types import ExpertInput
from tests.support import llm_engine
from tests.support.orchestrator import orchestrator_stub

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def face(loopback_only_network: None) -> Iterator[ExpertManifest]:
    import cloudpickle
    import ray
    from ray import serve

    from mesh.serving.apps import vllm_face, wait_running

    cloudpickle.register_pickle_by_value(llm_engine)  # replicas need not import tests/
    manifest = ExpertManifest.model_validate({
        "name": "agronomy-llm", "organization": "prairie-agri-institute",
        "description": "An LLM fine-tuned on agronomy extension bulletins.",
        "examples": ["how do I rotate canola", "what is clubroot", "when to apply nitrogen"],
        "runtime": "vllm", "model": {"path": "s3://models/agro-7b", "max_tokens": 32},
        "resources": {"num_gpus": 1},
    })
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             log_to_driver=False, configure_logging=False)
    try:
        serve.start(proxy_location="Disabled")
        engine = serve.deployment(name="agronomy-llm-engine",
                                  ray_actor_options={"num_cpus": 0.1})(llm_engine.EchoEngine)
        serve.run(vllm_face(manifest, engine.bind(), dict), name=manifest.key,
                  route_prefix=None)
        wait_running([manifest.key], progress=lambda _: None, timeout_s=120)
        yield manifest
    finally:
        serve.shutdown()
        ray.shutdown()


def test_face_streams_and_answers(face: ExpertManifest) -> None:
    from mesh.serving.handle_transport import ServeTransport

    transport = ServeTransport([face.key])

    async def run() -> tuple[list[str], list[float], str]:
        start = time.perf_counter()
        pieces, stamps = [], []
        async for piece in transport.infer_stream(face.name, ExpertInput(text="rotate canola "
                                                                         "with wheat"), 30):
            pieces.append(piece)
            stamps.append(time.perf_counter() - start)
        whole = await transport.infer(face.name, ExpertInput(text="clubroot"), 30)
        return pieces, stamps, whole.text

    pieces, stamps, whole = asyncio.run(run())
    assert pieces == ["echo:", " rotate", " canola", " with", " wheat"]
    assert stamps[-1] - stamps[0] > 0.3, stamps
    assert whole == "echo: clubroot"


def test_ask_stream_through_the_face(face: ExpertManifest, tmp_path: Path) -> None:
    from mesh.serving.handle_transport import ServeTransport

    request = orchestrator_pb2.AskRequest(input=common_pb2.Content(text="when to sow oats"),
                                          experts=[face.name])
    with orchestrator_stub([face], ServeTransport([face.key]), tmp_path) as stub:
        chunks = list(stub.AskStream(request, timeout=60))
    deltas = [c.text_delta for c in chunks[:-1]]
    assert deltas == ["echo:", " when", " to", " sow", " oats"]
    final = chunks[-1].final
    assert final.parts[0].expert == "agronomy-llm" and final.answer == "".join(deltas)
