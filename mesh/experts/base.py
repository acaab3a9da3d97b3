"""The one interface every expert runtime implements, whatever runs the model.

Ray Serve replicas, the node's gRPC face and in-process tests all drive experts through this
class, so a runtime is written once and hosted anywhere.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence

from mesh.config import ExpertManifest
from mesh.errors import ExpertUnavailable, MeshError
from mesh.types import ExpertInput, ExpertOutput


class Expert(ABC):
    """A loaded model that answers ExpertInputs.

    Lifecycle: construct (cheap, no I/O) → ``load()`` (reads the model; raises ModelLoadError
    naming the model and cause) → ``infer`` / ``infer_stream`` from any thread.
    Bad input raises ``mesh.errors.InvalidInput`` naming the field (e.g. ``input.tensors['x']``).
    """

    def __init__(self, manifest: ExpertManifest) -> None:
        self.manifest = manifest
        self._loaded = False

    @property
    def name(self) -> str:
        return self.manifest.name

    def load(self) -> None:
        """Load the model; idempotent."""
        if not self._loaded:
            self._load()
            self._loaded = True

    def ready(self) -> bool:
        """True once the model is loaded and can answer."""
        return self._loaded

    def check_health(self) -> None:
        """Raise ExpertUnavailable when the expert cannot answer now; Serve calls this on every
        replica periodically and replaces one that keeps failing.

        Local runtimes are healthy once loaded; runtimes that call a server override it to ask
        that server (its model still served, the endpoint still reachable).
        """
        if not self.ready():
            raise ExpertUnavailable(f"expert '{self.name}' is not loaded")

    @abstractmethod
    def _load(self) -> None:
        """Runtime-specific loading."""

    @abstractmethod
    def infer(self, request: ExpertInput) -> ExpertOutput:
        """Answer one request."""

    def infer_batch_settled(
        self, requests: Sequence[ExpertInput]
    ) -> list[ExpertOutput | MeshError]:
        """Answer many requests; a failing one gets its error in its place.

        What ``@serve.batch`` calls. The default answers one by one; runtimes that can run
        many requests in one model call (onnx) override it.
        """
        results: list[ExpertOutput | MeshError] = []
        for request in requests:
            try:
                results.append(self.infer(request))
            except MeshError as e:
                results.append(e)
        return results

    def infer_stream(self, request: ExpertInput) -> Iterator[str]:
        """Answer as a stream of text pieces; runtimes that generate token by token override it.

        The default yields the whole answer at once, so every expert can serve AskStream.
        """
        yield self.infer(request).text
