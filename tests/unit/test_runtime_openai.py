"""The ``openai`` runtime against a real OpenAI-compatible HTTP server on loopback
(tests/support/openai_server.py): answers, token streaming, keys, health and every error path."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mesh.config import ExpertManifest
from mesh.errors import (
    ExpertDeadlineExceeded,
    ExpertUnavailable,
    InvalidInput,
    ModelLoadError,
)
from mesh.experts import build_expert
from mesh.experts.openai import OpenAIExpert
from mesh.experts.transport import LocalTransport
from mesh.types import ExpertInput, TurnRecord
from tests.support.openai_server import Behaviour, OpenAITestServer


@pytest.fixture()
def server() -> Iterator[OpenAITestServer]:
    with OpenAITestServer() as s:
        yield s


def manifest(base_url: str, **model: Any) -> ExpertManifest:
    return ExpertManifest.model_validate({
        "name": "echo-llm", "organization": "test-org",
        "description": "A chat model that echoes the question, for tests.",
        "examples": ["say hello", "repeat after me", "echo this sentence"],
        "runtime": "openai",
        "model": {"base_url": base_url, "model": "echo-1", "api_key_env": "MESH_TEST_KEY",
                  "max_retries": 0, **model},
    })


@pytest.fixture()
def expert(server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch) -> OpenAIExpert:
    monkeypatch.setenv("MESH_TEST_KEY", "test-key")
    e = build_expert(manifest(server.base_url, system_prompt="Be brief.", max_tokens=50))
    assert isinstance(e, OpenAIExpert)
    e.load()
    return e


def test_answers_with_history_system_prompt_and_metadata(
    expert: OpenAIExpert, server: OpenAITestServer
) -> None:
    history = [TurnRecord("earlier question", "earlier answer", ("echo-llm",))]
    out = expert.infer(ExpertInput(text="hello mesh", history=history,
                                   parameters={"temperature": "0.5"}))
    assert out.text == "echo: hello mesh"
    assert out.metadata["finish_reason"] == "stop" and out.metadata["model"] == "echo-1"
    sent = server.behaviour.seen[-1]
    assert [m["role"] for m in sent["messages"]] == ["system", "user", "assistant", "user"]
    assert sent["max_tokens"] == 50 and sent["temperature"] == 0.5


def test_streams_token_by_token(expert: OpenAIExpert) -> None:
    pieces = list(expert.infer_stream(ExpertInput(text="one two three")))
    assert pieces == ["echo:", " one", " two", " three"]


def test_local_transport_forwards_pieces_as_they_come(
    expert: OpenAIExpert, server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first piece reaches the caller long before the last one is produced."""
    import time

    server.behaviour.delay_s = 0.15
    transport = LocalTransport([expert.manifest])

    async def run() -> list[float]:
        start = time.perf_counter()
        stamps = []
        async for _ in transport.infer_stream("echo-llm", ExpertInput(text="a b c d"), 10):
            stamps.append(time.perf_counter() - start)
        return stamps

    stamps = asyncio.run(run())
    assert len(stamps) == 5
    assert stamps[-1] - stamps[0] > 0.4, stamps  # spread out: streamed, not collected


def test_deadline_while_streaming(expert: OpenAIExpert, server: OpenAITestServer) -> None:
    server.behaviour.delay_s = 0.3
    transport = LocalTransport([expert.manifest])

    async def run() -> None:
        async for _ in transport.infer_stream("echo-llm", ExpertInput(text="a b c d e"), 0.5):
            pass

    with pytest.raises(ExpertDeadlineExceeded):
        asyncio.run(run())


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (500, ExpertUnavailable, "answered 500"),
        (429, ExpertUnavailable, "answered 429"),
        (400, InvalidInput, "refused the request"),
        (401, ExpertUnavailable, "refused the API key"),
    ],
)
def test_endpoint_failures_become_mesh_errors(
    expert: OpenAIExpert, server: OpenAITestServer, status: int, error: type, words: str
) -> None:
    server.behaviour.fail_next = [status, status]
    with pytest.raises(error, match=words):
        expert.infer(ExpertInput(text="hi"))
    with pytest.raises(error, match=words):
        list(expert.infer_stream(ExpertInput(text="hi")))


def test_retry_rides_over_one_failure(server: OpenAITestServer,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_TEST_KEY", "test-key")
    e = build_expert(manifest(server.base_url, max_retries=1))
    e.load()
    server.behaviour.fail_next = [503]
    assert e.infer(ExpertInput(text="again")).text == "echo: again"


def test_timeout_is_a_deadline(server: OpenAITestServer,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_TEST_KEY", "test-key")
    e = build_expert(manifest(server.base_url, timeout_s=0.3))
    e.load()
    server.behaviour.delay_s = 1.0
    with pytest.raises(ExpertDeadlineExceeded):
        e.infer(ExpertInput(text="slow"))


def test_bad_requests_name_the_field(expert: OpenAIExpert) -> None:
    import numpy as np

    with pytest.raises(InvalidInput, match=r"input\.tensors"):
        expert.infer(ExpertInput(tensors={"x": np.zeros(2)}))
    with pytest.raises(InvalidInput, match=r"parameters\['max_tokens'\]"):
        expert.infer(ExpertInput(text="hi", parameters={"max_tokens": "many"}))


def test_key_from_a_secret_file(server: OpenAITestServer, tmp_path: Path) -> None:
    (tmp_path / "key").write_text("test-key\n")
    m = manifest(server.base_url, api_key_env=None, api_key_file=str(tmp_path / "key"))
    e = build_expert(m)
    e.load()
    assert e.infer(ExpertInput(text="file key")).text == "echo: file key"


def test_load_errors_name_the_model_and_cause(
    server: OpenAITestServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MESH_TEST_KEY", raising=False)
    with pytest.raises(ModelLoadError, match=r"MESH_TEST_KEY .* is not set"):
        build_expert(manifest(server.base_url)).load()
    missing = tmp_path / "nokey"
    with pytest.raises(ModelLoadError, match="cannot read the key file"):
        build_expert(manifest(server.base_url, api_key_env=None,
                              api_key_file=str(missing))).load()
    monkeypatch.setenv("MESH_TEST_KEY", "wrong")
    with pytest.raises(ModelLoadError, match=r"echo-1 at .*refused the API key"):
        build_expert(manifest(server.base_url)).load()
    monkeypatch.setenv("MESH_TEST_KEY", "test-key")
    with pytest.raises(ModelLoadError, match=r"does not serve it; it serves \['echo-1'\]"):
        build_expert(manifest(server.base_url, model="other")).load()
    with pytest.raises(ModelLoadError, match="cannot reach"):
        build_expert(manifest("http://127.0.0.1:9/v1")).load()


def test_health_follows_the_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_TEST_KEY", "test-key")
    with OpenAITestServer(Behaviour()) as s:
        e = build_expert(manifest(s.base_url))
        assert not e.ready()
        with pytest.raises(ExpertUnavailable, match="not loaded"):
            e.check_health()
        e.load()
        assert e.ready()
        e.check_health()
        s.behaviour.model = "renamed"
        with pytest.raises(ExpertUnavailable, match="no longer serves"):
            e.check_health()
    with pytest.raises(ExpertUnavailable, match="cannot reach"):
        e.check_health()
