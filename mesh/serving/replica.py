"""The Serve deployments every expert runs in: one replica loads one expert and answers calls.

Kept free of per-expert options so the same classes are unit-testable; resources, autoscaling
and batching sizes are applied per expert in ``mesh.serving.apps``.

    ExpertReplica          one request, one model run (Serve's worker threads run it)
    BatchedExpertReplica   concurrent requests gathered by ``@serve.batch`` into one model run
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from ray import serve

from mesh.config import ExpertManifest, OnnxModelConfig
from mesh.errors import MeshError
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
        """Serve calls this periodically; raising marks the replica unhealthy and replaces it.
        The expert decides what healthy means (loaded; for remote runtimes, its server up)."""
        self.expert.check_health()


class BatchedExpertReplica(ExpertReplica):
    """An ExpertReplica whose ``infer`` calls wait briefly to share one model run.

    Small CPU models cost about the same for one row as for sixteen, so under concurrency one
    run per batch multiplies throughput (``mesh bench expert`` measures it). Each caller gets
    its own answer or its own error: a malformed request does not fail its batch-mates.
    The model run goes to a worker thread so the replica's event loop keeps gathering the
    next batch meanwhile.
    """

    def __init__(self, manifest: dict[str, Any]) -> None:
        super().__init__(manifest)
        batching = self.manifest.model_as(OnnxModelConfig).batching
        if batching is not None:
            wrapper: Any = self._run_batch  # Serve's batch wrapper (its setters are untyped)
            wrapper.set_max_batch_size(batching.max_batch_size)
            wrapper.set_batch_wait_timeout_s(batching.wait_timeout_s)

    async def infer(self, request: ExpertInput) -> ExpertOutput:  # type: ignore[override]
        result: ExpertOutput | MeshError = await self._run_batch(request)
        if isinstance(result, MeshError):
            raise result
        return result

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.002)
    async def _run_batch(self, requests: list[ExpertInput]) -> list[ExpertOutput | MeshError]:
        results = await asyncio.to_thread(self.expert.infer_batch_settled, requests)
        for result in results:
            if isinstance(result, ExpertOutput):
                result.metadata["batch_size"] = str(len(requests))  # shows batching at work
        return results
