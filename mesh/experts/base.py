"""The one interface every expert runtime implements, whatever runs the model.

Ray Serve replicas, the node's gRPC face and in-process tests all drive experts through this
class, so a runtime is written once and hosted anywhere.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

from mesh.config import ExpertManifest
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

    @abstractmethod
    def _load(self) -> None:
        """Runtime-specific loading."""

    @abstractmethod
    def infer(self, request: ExpertInput) -> ExpertOutput:
        """Answer one request."""

    def infer_stream(self, request: ExpertInput) -> Iterator[str]:
        """Answer as a stream of text pieces; runtimes that generate token by token override it.

        The default yields the whole answer at once, so every expert can serve AskStream.
        """
        yield self.infer(request).text
