"""Manifests for router tests: the router reads only name, description and examples."""

from __future__ import annotations

from mesh.config import ExpertManifest, OnnxModelConfig


def manifest(name: str, description: str, examples: list[str]) -> ExpertManifest:
    """A minimal valid manifest whose model is never loaded."""
    return ExpertManifest(
        name=name, organization="test-org", description=description, examples=examples,
        runtime="onnx", model=OnnxModelConfig(path="model.onnx", task="tensors"),
    )
