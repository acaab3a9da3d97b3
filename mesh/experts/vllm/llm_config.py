"""A ``vllm`` manifest as Ray Serve LLM's ``LLMConfig``, field by field.

Kept as a plain dict so it is built and tested on machines without vLLM (Ray's ``LLMConfig``
class cannot be imported there); ``mesh.serving.apps`` turns it into the class on a GPU node.
Where each value comes from:

    model.path                 -> model_loading_config.model_source (resolved, or a storage URI)
    model.served_name | name   -> model_loading_config.model_id
    resources.accelerator_type -> accelerator_type
    model.tensor_parallel_size -> engine_kwargs.tensor_parallel_size (= resources.num_gpus)
    model.max_model_len, gpu_memory_utilization, dtype -> engine_kwargs
    autoscaling, max_ongoing_requests -> deployment_config (Serve's own field names)
"""

from __future__ import annotations

from typing import Any

from mesh.config import ExpertManifest, VllmModelConfig


def model_id(m: ExpertManifest) -> str:
    """The id the engine serves the model under (and the ``model`` of chat requests)."""
    return m.model_as(VllmModelConfig).served_name or m.name


def serve_llm_config(m: ExpertManifest) -> dict[str, Any]:
    """Keyword arguments of ``ray.serve.llm.LLMConfig`` for a vllm manifest (paths resolved)."""
    resolved = m.with_resolved_paths()
    model = resolved.model_as(VllmModelConfig)
    engine: dict[str, Any] = {"tensor_parallel_size": model.tensor_parallel_size}
    if model.max_model_len is not None:
        engine["max_model_len"] = model.max_model_len
    if model.gpu_memory_utilization is not None:
        engine["gpu_memory_utilization"] = model.gpu_memory_utilization
    if model.dtype != "auto":
        engine["dtype"] = model.dtype
    config: dict[str, Any] = {
        "model_loading_config": {"model_id": model_id(m), "model_source": model.path},
        "engine_kwargs": engine,
        "deployment_config": {
            "autoscaling_config": m.autoscaling.serve_options(),
            "max_ongoing_requests": m.max_ongoing_requests,
        },
    }
    if m.resources.accelerator_type:
        config["accelerator_type"] = m.resources.accelerator_type
    return config
