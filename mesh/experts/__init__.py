"""Expert runtimes behind one interface (``Expert``); ``build_expert`` picks one per manifest."""

from __future__ import annotations

import importlib

from mesh.config import ExpertManifest
from mesh.errors import ModelLoadError
from mesh.experts.base import Expert

# runtime name -> "module:Class"; imported lazily so a CPU node never imports GPU stacks.
RUNTIMES: dict[str, str] = {
    "onnx": "mesh.experts.onnx:OnnxExpert",
    "openai": "mesh.experts.openai:OpenAIExpert",
    "oip": "mesh.experts.oip:OipExpert",
    "vllm": "mesh.experts.vllm:VllmExpert",
}

__all__ = ["RUNTIMES", "Expert", "build_expert"]


def build_expert(manifest: ExpertManifest) -> Expert:
    """Construct (not load) the expert a manifest describes."""
    target = RUNTIMES.get(manifest.runtime)
    if target is None:
        known = sorted(RUNTIMES)
        raise ModelLoadError(manifest.name, f"no runtime '{manifest.runtime}'; known: {known}")
    module_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(module_name), cls_name)
    expert: Expert = cls(manifest)
    return expert
