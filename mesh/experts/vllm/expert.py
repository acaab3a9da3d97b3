"""VllmExpert: the Expert face of a ``vllm`` manifest.

A vLLM engine runs only inside Ray Serve LLM's own deployment (placement groups, GPU workers),
so this class never loads a model in-process: its ``load`` checks the GPU stack is installed
and says where such an expert runs. ``mesh.serving.apps`` deploys the engine and a
``VllmIngress`` in front of it, which the orchestrator reaches like any other expert.
"""

from __future__ import annotations

import importlib.util

from mesh.config import ExpertManifest, VllmModelConfig
from mesh.errors import ModelLoadError
from mesh.experts.base import Expert
from mesh.types import ExpertInput, ExpertOutput

GPU_EXTRA = "pip install 'mesh[gpu]'"
"""What installs vLLM (the ``gpu`` extra of the mesh package)."""


def require_gpu_stack(m: ExpertManifest) -> None:
    """Raise ModelLoadError naming the model and the extra when vLLM is not installed."""
    if importlib.util.find_spec("vllm") is None:
        raise ModelLoadError(
            m.model_as(VllmModelConfig).path,
            f"expert '{m.name}' has runtime 'vllm', which needs vLLM and Ray Serve LLM; they "
            f"are not installed here: {GPU_EXTRA} (on the GPU nodes that host it)",
        )


class VllmExpert(Expert):
    """Stands for a vLLM expert outside Serve: loading it explains where it runs."""

    def __init__(self, manifest: ExpertManifest) -> None:
        super().__init__(manifest)
        self.config = manifest.model_as(VllmModelConfig)

    def _load(self) -> None:
        require_gpu_stack(self.manifest)
        raise ModelLoadError(
            self.config.path,
            f"expert '{self.name}' (runtime 'vllm') runs on Ray Serve LLM only, not "
            "in-process: deploy it with `mesh up`",
        )

    def infer(self, request: ExpertInput) -> ExpertOutput:
        self.load()  # always raises: see _load
        raise AssertionError("unreachable")
