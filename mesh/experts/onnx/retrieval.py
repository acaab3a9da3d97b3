"""Retrieval experts: a question in, the passages nearest in meaning out, with their sources.

The index is itself an ONNX model, built with the passages: its weights are the passages'
unit-length embeddings, and it computes cosine scores and the top k with MatMul and TopK. So
``model.path`` stays "the .onnx file" for every task, the manifest's session options apply to
the search too, and the index carries its embedder's name and size in its metadata, checked at
load against the sidecar and the manifest (vectors from two embedders never mix silently).
The question is embedded by ``model.embedder`` ("minilm-int8": mesh.embedding's shared one).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mesh.embedding import BUNDLED, Embedder, shared_embedder
from mesh.errors import InvalidInput, ModelLoadError
from mesh.experts.onnx.adapter import TaskAdapter
from mesh.experts.onnx.sidecar import RetrievalSidecar
from mesh.experts.onnx.wording import trim_text
from mesh.types import ExpertInput, ExpertOutput

DEFAULT_TOP_K = 1
MAX_TOP_K = 10
WEAK_SCORE = 0.3
"""Below this cosine score the best passage is only loosely related, and the answer says so."""
FIRST_CHARS = 600
OTHER_CHARS = 300

# Names shared with the builder of the index model (mesh.demo.python_docs).
QUERY_INPUT = "query"
K_INPUT = "k"
META_EMBEDDER = "mesh.embedder"
META_PASSAGES = "mesh.passages"


@dataclass
class RetrievalRequest:
    """A question and how many passages it wants."""

    text: str
    top_k: int


def resolve_embedder(name: str, resolve: Any) -> Embedder:
    """``minilm-int8`` is the bundled embedder; anything else is a path to an .onnx file."""
    return shared_embedder(BUNDLED if name == BUNDLED else str(resolve(name)))


class RetrievalAdapter(TaskAdapter[RetrievalRequest]):
    """Embeds questions, searches the index model, words the best passages."""

    def __init__(
        self,
        session: Any,
        sidecar: RetrievalSidecar,
        embedder_name: str,
        embedder: Embedder,
        model_path: str,
    ) -> None:
        self.session = session
        self.sidecar = sidecar
        self.embedder = embedder
        meta = session.get_modelmeta().custom_metadata_map
        index_embedder = meta.get(META_EMBEDDER, "")
        problems = []
        if index_embedder != embedder_name or sidecar.embedder != embedder_name:
            problems.append(
                f"the index was embedded with '{index_embedder}' (sidecar: '{sidecar.embedder}') "
                f"but model.embedder is '{embedder_name}'; rebuild the index or fix the manifest"
            )
        if meta.get(META_PASSAGES) != str(len(sidecar.passages)):
            problems.append(
                f"the index holds {meta.get(META_PASSAGES, '?')} passages, the sidecar "
                f"{len(sidecar.passages)}; they come from different builds"
            )
        names = {i.name: i for i in session.get_inputs()}
        query = names.get(QUERY_INPUT)
        if query is None or K_INPUT not in names:
            problems.append(f"an index model takes inputs '{QUERY_INPUT}' and '{K_INPUT}'")
        elif query.shape[-1] != embedder.dim or sidecar.dim != embedder.dim:
            problems.append(
                f"the index has dimension {query.shape[-1]}, the embedder {embedder.dim}"
            )
        if problems:
            raise ModelLoadError(model_path, "; ".join(problems))

    def prepare(self, request: ExpertInput) -> RetrievalRequest:
        """A non-empty question and a valid ``parameters['top_k']``."""
        text = request.text.strip()
        if not text:
            raise InvalidInput("input.text", "is empty; this expert answers questions in words")
        raw = request.parameters.get("top_k")
        top_k = DEFAULT_TOP_K
        if raw is not None:
            try:
                top_k = int(str(raw).strip())
            except ValueError:
                top_k = 0
            if not 1 <= top_k <= MAX_TOP_K:
                raise InvalidInput(
                    "input.parameters['top_k']",
                    f"expected a whole number from 1 to {MAX_TOP_K}, got '{raw}'",
                )
        return RetrievalRequest(text, min(top_k, len(self.sidecar.passages)))

    def run(self, prepared: Sequence[RetrievalRequest]) -> list[ExpertOutput]:
        """One embedding call and one index search for all questions."""
        queries = self.embedder.embed([p.text for p in prepared])
        k = max(p.top_k for p in prepared)
        scores, indices = self.session.run(
            ["scores", "indices"],
            {QUERY_INPUT: queries, K_INPUT: np.array([k], dtype=np.int64)},
        )
        return [
            self._answer(s[: p.top_k], i[: p.top_k])
            for p, s, i in zip(prepared, scores, indices, strict=True)
        ]

    def _answer(self, scores: np.ndarray, indices: np.ndarray) -> ExpertOutput:
        passages = [self.sidecar.passages[int(i)] for i in indices]
        best, best_score = passages[0], float(scores[0])
        if best_score < WEAK_SCORE:
            lead = (
                f"Nothing in {self.sidecar.title} matches this closely (best score "
                f"{best_score:.2f}); the nearest passage, from “{best.title}”:"
            )
        else:
            lead = f"From {self.sidecar.title}, “{best.title}” (score {best_score:.2f}):"
        parts = [f"{lead}\n\n{trim_text(best.text, FIRST_CHARS)}"]
        for p, s in zip(passages[1:], scores[1:], strict=True):
            parts.append(f"Also relevant, “{p.title}” (score {float(s):.2f}):\n\n"
                         f"{trim_text(p.text, OTHER_CHARS)}")
        metadata = {
            "source": best.title,
            "topic": best.topic,
            "score": f"{best_score:.4f}",
            "sources": json.dumps([p.title for p in passages]),
            "scores": json.dumps([round(float(s), 4) for s in scores]),
            "data": self.sidecar.data.name,
            "licence": self.sidecar.data.licence,
        }
        tensors: dict[str, np.ndarray] = {
            "scores": scores.astype(np.float32),
            "indices": indices.astype(np.int64),
        }
        return ExpertOutput(text="\n\n".join(parts), tensors=tensors, metadata=metadata)
