"""The ``vllm`` runtime on a CPU machine: the manifest -> Ray Serve LLM config translation
(checked against Ray's own schema where it can be imported), the engine's streamed events back
to text, and the clear failure naming the ``gpu`` extra where vLLM is absent."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from mesh.config import ExpertManifest
from mesh.errors import ExpertUnavailable, InvalidInput, ModelLoadError
from mesh.experts import build_expert
from mesh.experts.vllm import serve_llm_config
from mesh.experts.vllm.stream import chat_body, text_pieces
from mesh.types import ExpertInput, TurnRecord

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def manifest(folder: Path, **extra: Any) -> ExpertManifest:
    fields: dict[str, Any] = {
        "name": "agronomy-llm", "organization": "prairie-agri-institute",
        "description": "An LLM fine-tuned on agronomy extension bulletins.",
        "examples": ["how do I rotate canola", "what is clubroot", "when to apply nitrogen"],
        "runtime": "vllm",
        "model": {"path": "weights/agro-7b", "tensor_parallel_size": 2, "max_model_len": 4096,
                  "gpu_memory_utilization": 0.85, "dtype": "bfloat16", "max_tokens": 256,
                  "system_prompt": "You advise farmers."},
        "resources": {"num_gpus": 2, "accelerator_type": "L4"},
        "autoscaling": {"min_replicas": 0, "max_replicas": 4, "target_ongoing_requests": 16,
                        "upscale_delay_s": 10, "downscale_delay_s": 300},
        "max_ongoing_requests": 64,
        **extra,
    }
    return ExpertManifest.model_validate({**fields, "source_dir": folder})


def test_manifest_becomes_serve_llm_config(tmp_path: Path) -> None:
    config = serve_llm_config(manifest(tmp_path))
    assert config == {
        "model_loading_config": {"model_id": "agronomy-llm",
                                 "model_source": str(tmp_path / "weights" / "agro-7b")},
        "accelerator_type": "L4",
        "engine_kwargs": {"tensor_parallel_size": 2, "max_model_len": 4096,
                          "gpu_memory_utilization": 0.85, "dtype": "bfloat16"},
        "deployment_config": {
            "autoscaling_config": {"min_replicas": 0, "max_replicas": 4,
                                   "target_ongoing_requests": 16.0, "upscale_delay_s": 10.0,
                                   "downscale_delay_s": 300.0},
            "max_ongoing_requests": 64,
        },
    }
    json.dumps(config)  # plain data: fits a Serve config file as it is
    from mesh.serving.apps import autoscaling_config

    # The same autoscaling mapping as every other expert's (two copies keep layers apart).
    assert config["deployment_config"]["autoscaling_config"] == autoscaling_config(
        manifest(tmp_path))


def test_defaults_and_storage_uris_pass_through(tmp_path: Path) -> None:
    m = manifest(tmp_path, model={"path": "s3://models/agro-7b", "served_name": "agro"},
                 resources={"num_gpus": 1}, autoscaling={})
    config = serve_llm_config(m)
    assert config["model_loading_config"] == {"model_id": "agro",
                                              "model_source": "s3://models/agro-7b"}
    assert config["engine_kwargs"] == {"tensor_parallel_size": 1}
    assert "accelerator_type" not in config


def test_config_is_valid_for_ray_serve_llm(tmp_path: Path) -> None:
    """Ray's own classes accept what the translation writes (the same check Serve makes)."""
    from ray.serve.config import AutoscalingConfig

    config = serve_llm_config(manifest(tmp_path))
    AutoscalingConfig(**config["deployment_config"]["autoscaling_config"])
    if importlib.util.find_spec("pyarrow") is None:
        pytest.skip("Ray Serve LLM's LLMConfig needs pyarrow to import (ray[llm]); "
                    "autoscaling checked, the rest of the schema not")
    from ray.llm._internal.serve.core.configs.llm_config import LLMConfig

    parsed = LLMConfig(**config)
    assert parsed.model_loading_config.model_id == "agronomy-llm"
    assert parsed.accelerator_type == "L4"
    assert parsed.engine_kwargs["tensor_parallel_size"] == 2


def test_chat_body_carries_history_and_request_overrides(tmp_path: Path) -> None:
    from mesh.config import VllmModelConfig

    m = manifest(tmp_path)
    request = ExpertInput(text="and for barley?", parameters={"temperature": "0.2"},
                          history=[TurnRecord("nitrogen for wheat?", "Split it.", ("x",))])
    body = chat_body(m.model_as(VllmModelConfig), "agronomy-llm", request)
    assert body["stream"] is True and body["model"] == "agronomy-llm"
    assert [msg["role"] for msg in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["max_tokens"] == 256 and body["temperature"] == 0.2


def _event(content: str | None, finish: str | None = None) -> str:
    delta = {} if content is None else {"content": content}
    chunk = {"id": "c", "object": "chat.completion.chunk", "model": "m",
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n"


def test_streamed_events_become_text_pieces() -> None:
    batch = [_event(""), _event("Rotate"), _event(" every")]
    assert text_pieces("x", batch) == ["Rotate", " every"]
    assert text_pieces("x", _event(" year") + _event(None, "stop") + "data: [DONE]\n\n") == [
        " year"]


def test_streamed_errors_become_mesh_errors() -> None:
    bad = "data: " + json.dumps({"error": {"message": "prompt too long", "code": 400}}) + "\n\n"
    with pytest.raises(InvalidInput, match="prompt too long"):
        text_pieces("x", [bad])
    with pytest.raises(ExpertUnavailable, match="engine failed"):
        text_pieces("x", [{"error": {"message": "CUDA out of memory", "code": 500}}])


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed here: the missing-extra path is moot")
def test_without_vllm_load_and_deploy_name_the_extra(tmp_path: Path) -> None:
    from mesh.experts.transport import LocalTransport
    from mesh.serving.apps import expert_application

    m = manifest(tmp_path)
    for attempt in (lambda: build_expert(m).load(), lambda: expert_application(m),
                    lambda: LocalTransport([m])):
        with pytest.raises(ModelLoadError) as info:
            attempt()
        message = str(info.value)
        assert "pip install 'mesh[gpu]'" in message and "agronomy-llm" in message, message
        assert "weights/agro-7b" in message  # the model is named
