"""The manifest's runtime union: each runtime has its own ``model`` block, errors name the field
and the fix, existing ONNX manifests stay valid, and a manifest survives the trip to a replica."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mesh.config import (
    ExpertManifest,
    OipModelConfig,
    OnnxModelConfig,
    OpenAIModelConfig,
    VllmModelConfig,
    check_model_files,
    load_manifest,
)
from mesh.errors import ConfigError, ModelLoadError

CARD = {
    "name": "field-notes", "organization": "test-org",
    "description": "Answers questions about field notes and crops.",
    "examples": ["what grows in clay", "when to sow barley", "how deep to plant oats"],
}


def _write(folder: Path, runtime: str, model: dict[str, Any], **extra: Any) -> Path:
    import yaml

    path = folder / "expert.yaml"
    path.write_text(yaml.safe_dump({**CARD, "runtime": runtime, "model": model, **extra}))
    return path


def _problem(folder: Path, runtime: str, model: dict[str, Any], **extra: Any) -> str:
    with pytest.raises(ConfigError) as info:
        load_manifest(_write(folder, runtime, model, **extra))
    return str(info.value)


@pytest.mark.parametrize(
    ("runtime", "model", "extra", "cls"),
    [
        ("onnx", {"path": "m.onnx", "task": "tensors"}, {}, OnnxModelConfig),
        ("openai", {"base_url": "http://127.0.0.1:8000/v1", "model": "m",
                    "api_key_env": "MY_KEY"}, {}, OpenAIModelConfig),
        ("oip", {"target": "127.0.0.1:8081", "model_name": "iris"}, {}, OipModelConfig),
        ("vllm", {"path": "weights/qwen", "tensor_parallel_size": 2},
         {"resources": {"num_gpus": 2, "accelerator_type": "L4"}}, VllmModelConfig),
    ],
)
def test_each_runtime_loads_its_own_model_block(
    tmp_path: Path, runtime: str, model: dict[str, Any], extra: dict[str, Any], cls: type
) -> None:
    m = load_manifest(_write(tmp_path, runtime, model, **extra))
    assert m.runtime == runtime and isinstance(m.model, cls)
    assert m.model_as(cls) is m.model
    # What a Serve replica receives (JSON) validates back to the same manifest.
    dumped = m.model_dump(mode="json")
    assert "runtime" not in dumped["model"]
    assert ExpertManifest.model_validate(dumped).model == m.model


def test_fields_of_another_runtime_name_the_field_and_the_runtimes_fields(tmp_path: Path) -> None:
    message = _problem(tmp_path, "openai", {"path": "m.onnx", "task": "tensors"})
    assert "field 'model.path'" in message and "field 'model.base_url'" in message, message
    assert "runtime 'openai' takes model fields: base_url, model, api_key_env" in message
    assert "model.openai" not in message  # the union's tag is not a field users wrote


def test_unknown_runtime_is_one_clear_problem(tmp_path: Path) -> None:
    message = _problem(tmp_path, "tensorflow", {"path": "m.onnx", "task": "tensors"})
    assert "1 problem(s)" in message and "field 'runtime'" in message
    assert "'onnx', 'openai', 'oip' or 'vllm'" in message


def test_api_key_is_refused_in_a_manifest(tmp_path: Path) -> None:
    message = _problem(tmp_path, "openai", {"base_url": "http://127.0.0.1:1/v1", "model": "m",
                                            "api_key": "sk-secret"})
    assert "field 'model'" in message and "api_key_env" in message and "api_key_file" in message
    assert "sk-secret" not in message  # the secret is never echoed


@pytest.mark.parametrize(
    ("runtime", "model", "extra", "field", "words"),
    [
        ("openai", {"base_url": "127.0.0.1:8000", "model": "m"}, {}, "model", "has no scheme"),
        ("openai", {"base_url": "http://h/v1", "model": "m", "api_key_env": "A",
                    "api_key_file": "k"}, {}, "model", "keep one"),
        ("oip", {"target": "localhost", "model_name": "x"}, {}, "model.target", "host:port"),
        ("vllm", {"path": "w"}, {}, "(top level)", "resources.num_gpus 0.0"),
        ("vllm", {"path": "w", "tensor_parallel_size": 2}, {"resources": {"num_gpus": 1}},
         "(top level)", "model.tensor_parallel_size 2"),
    ],
)
def test_runtime_specific_errors(tmp_path: Path, runtime: str, model: dict[str, Any],
                                 extra: dict[str, Any], field: str, words: str) -> None:
    message = _problem(tmp_path, runtime, model, **extra)
    assert f"field '{field}'" in message and words in message, message


def test_resolved_paths_and_file_checks_follow_the_runtime(tmp_path: Path) -> None:
    key = tmp_path / "secrets" / "key.txt"
    m = load_manifest(_write(tmp_path, "openai", {"base_url": "http://127.0.0.1:1/v1",
                                                  "model": "m", "api_key_file": "secrets/key.txt"}))
    resolved = m.with_resolved_paths().model_as(OpenAIModelConfig)
    assert resolved.api_key_file == str(key)
    with pytest.raises(ConfigError, match=r"model\.api_key_file"):
        check_model_files(m)
    key.parent.mkdir()
    key.write_text("k\n")
    check_model_files(m)
    uri = load_manifest(_write(tmp_path, "vllm", {"path": "s3://bucket/qwen"},
                               resources={"num_gpus": 1}))
    assert uri.with_resolved_paths().model_as(VllmModelConfig).path == "s3://bucket/qwen"
    check_model_files(uri)  # weights live on the GPU nodes: not checked on the hub


def test_model_as_another_runtime_is_a_load_error(tmp_path: Path) -> None:
    m = load_manifest(_write(tmp_path, "oip", {"target": "127.0.0.1:1", "model_name": "x"}))
    with pytest.raises(ModelLoadError, match="field-notes"):
        m.model_as(OnnxModelConfig)


def test_every_runtime_a_manifest_may_name_has_an_implementation() -> None:
    import importlib

    from mesh.config import RUNTIME_NAMES
    from mesh.experts import RUNTIMES

    assert set(RUNTIMES) == set(RUNTIME_NAMES)
    for target in RUNTIMES.values():  # lazy: importing each needs no GPU stack
        module, cls = target.split(":")
        assert hasattr(importlib.import_module(module), cls), target
