"""The Serve deployment every expert runs in: one replica loads one expert and answers calls.

Kept free of Serve decorators so the same class is unit-testable and the options (resources,
autoscaling) are applied per expert in ``mesh.serving.apps``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from mesh.config import ExpertManifest
from mesh.experts import build_expert
from mesh.types import ExpertInput, ExpertOutput


class ExpertReplica:
    """Hosts one expert inside a Serve replica.

    Methods are synchronous: Serve runs them in its worker threads, so a CPU-bound ONNX call
    does not block the replica's event loop.
    """

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.manifest = ExpertManifest.model_validate(manifest)
        self.expert = build_expert(self.manifest)
        self.expert.load()

    def infer(self, request: ExpertInput) -> ExpertOutput:
        return self.expert.infer(request)

    def infer_stream(self, request: ExpertInput) -> Iterator[str]:
        yield from self.expert.infer_stream(request)

    def check_health(self) -> None:
        """Serve calls this periodically; raising marks the replica unhealthy and replaces it."""
        if not self.expert.ready():
            raise RuntimeError(f"expert '{self.manifest.name}' is not loaded")
