"""OnnxExpert: an ONNX model on ONNX Runtime (CPU) behind the Expert interface.

The expert itself only opens files and routes requests: the manifest's ``model.task`` picks a
task adapter (tensors, tabular, retrieval) that knows how requests map onto the model. Every
path goes through ``infer_batch_settled`` so single requests and Ray Serve batches share one
code path, and a bad request in a batch fails alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mesh.config import ExpertManifest, OnnxModelConfig
from mesh.errors import InvalidInput, MeshError, ModelLoadError
from mesh.experts.base import Expert
from mesh.experts.onnx.adapter import TaskAdapter
from mesh.experts.onnx.retrieval import RetrievalAdapter, resolve_embedder
from mesh.experts.onnx.session import open_session, read_json
from mesh.experts.onnx.sidecar import (
    RetrievalSidecar,
    TabularSidecar,
    TensorsSidecar,
    parse_sidecar,
)
from mesh.experts.onnx.tabular import TabularAdapter
from mesh.experts.onnx.tensors import TensorsAdapter
from mesh.types import ExpertInput, ExpertOutput


class OnnxExpert(Expert):
    """Runs ``manifest.model`` with the task adapter its ``task`` names.

    Thread-safe once loaded: ONNX Runtime sessions may run concurrently and adapters keep no
    per-request state.
    """

    def __init__(self, manifest: ExpertManifest) -> None:
        super().__init__(manifest)
        self._adapter: TaskAdapter[Any] | None = None

    def _load(self) -> None:
        """Open the model and sidecar; ModelLoadError names the file and the cause."""
        m = self.manifest.model_as(OnnxModelConfig)
        model_path = self.manifest.resolve(m.path)
        sidecar_path = self.manifest.resolve(m.sidecar) if m.sidecar else None
        session = open_session(model_path, m.session)
        data = read_json(sidecar_path) if sidecar_path else None
        if m.task == "tensors":
            sc = None
            if data is not None and sidecar_path is not None:
                sc = parse_sidecar(TensorsSidecar, data, sidecar_path)
            self._adapter = TensorsAdapter(session, sc, str(model_path))
        elif m.task == "retrieval":
            assert data is not None and sidecar_path is not None and m.embedder  # config checks
            rs = parse_sidecar(RetrievalSidecar, data, sidecar_path)
            embedder = resolve_embedder(m.embedder, self.manifest.resolve)
            self._adapter = RetrievalAdapter(session, rs, m.embedder, embedder, str(model_path))
        else:
            assert data is not None and sidecar_path is not None  # the config requires a sidecar
            ts = parse_sidecar(TabularSidecar, data, sidecar_path)
            if ts.task != m.task:
                raise ModelLoadError(
                    str(sidecar_path), f"sidecar is for '{ts.task}' but model.task is '{m.task}'"
                )
            self._adapter = TabularAdapter(self.name, session, ts, str(model_path))

    def infer(self, request: ExpertInput) -> ExpertOutput:
        """Answer one request (raises InvalidInput naming the field)."""
        return self.infer_batch([request])[0]

    def infer_batch(self, requests: Sequence[ExpertInput]) -> list[ExpertOutput]:
        """Answer many requests with one model run; raises the first request's error, if any."""
        results = self.infer_batch_settled(requests)
        for r in results:
            if isinstance(r, MeshError):
                raise r
        return [r for r in results if isinstance(r, ExpertOutput)]

    def infer_batch_settled(
        self, requests: Sequence[ExpertInput]
    ) -> list[ExpertOutput | MeshError]:
        """Answer many requests with one model run; a bad request gets its error in its place.

        Made for Ray Serve's ``@serve.batch``: the batch method returns this list and each
        caller raises its own error, so one malformed request does not fail its neighbours.
        """
        self.load()
        adapter = self._adapter
        assert adapter is not None
        results: list[ExpertOutput | MeshError | None] = [None] * len(requests)
        prepared: list[Any] = []
        where: list[int] = []
        for i, request in enumerate(requests):
            try:
                if not request.text.strip() and not request.tensors:
                    raise InvalidInput("input", "is empty: give text or tensors")
                prepared.append(adapter.prepare(request))
                where.append(i)
            except InvalidInput as e:
                results[i] = e
        if prepared:
            for i, output in zip(where, adapter.run(prepared), strict=True):
                output.metadata.setdefault("expert", self.name)
                results[i] = output
        return [r for r in results if r is not None]
