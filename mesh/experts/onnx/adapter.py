"""The contract between OnnxExpert and its task adapters: prepare each request, run them together.

Splitting a request's life into ``prepare`` (validate, turn text or tensors into model rows;
per request, may raise InvalidInput) and ``run`` (one ONNX Runtime call for many prepared
requests) is what makes batching safe: a bad request fails alone in ``prepare``, and the good
ones still share one ``session.run``, the cheap path when Ray Serve's @serve.batch groups calls.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

from mesh.types import ExpertInput, ExpertOutput

P = TypeVar("P")


class TaskAdapter(ABC, Generic[P]):
    """Maps requests of one ``model.task`` onto an ONNX model and its outputs back into answers."""

    @abstractmethod
    def prepare(self, request: ExpertInput) -> P:
        """Validate one request and turn it into what ``run`` feeds the model.

        Raises ``InvalidInput`` naming the field; never touches the model.
        """

    @abstractmethod
    def run(self, prepared: Sequence[P]) -> list[ExpertOutput]:
        """Answer prepared requests with as few model calls as possible (ideally one)."""
