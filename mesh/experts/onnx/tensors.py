"""Tensor experts: named tensors in, the ONNX model's named outputs back, and a sentence for people.

The request's tensors are checked against the model's declared inputs (names, dtypes, shapes,
finite values) so a malformed request is an InvalidInput naming the tensor, never an ONNX
Runtime error. Programs read the output tensors; the text summarises them, in the sidecar's
words when it has labels ("This looks like the digit 7 (p=0.97)").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mesh.errors import InvalidInput, ModelLoadError
from mesh.experts.onnx.adapter import TaskAdapter
from mesh.experts.onnx.sidecar import TensorsSidecar
from mesh.experts.onnx.tensorspec import TensorSpec, check_tensors
from mesh.types import ExpertInput, ExpertOutput

_MAX_ROWS_WORDED = 10
_MAX_VALUES_SHOWN = 6


@dataclass
class TensorsRequest:
    """Checked feeds of one request and how many rows they hold (1 for unbatched models)."""

    feeds: dict[str, np.ndarray]
    rows: int


class TensorsAdapter(TaskAdapter[TensorsRequest]):
    """Runs the model on the request's named tensors."""

    def __init__(self, session: Any, sidecar: TensorsSidecar | None, model_path: str) -> None:
        self.session = session
        self.sidecar = sidecar
        try:
            self.specs = [TensorSpec.from_node_arg(i) for i in session.get_inputs()]
        except ValueError as e:
            raise ModelLoadError(model_path, str(e)) from e
        self.outputs = [o.name for o in session.get_outputs()]
        # Requests can share one run only when every input and output has a free batch dimension.
        self.batchable = all(s.batched for s in self.specs) and all(
            o.shape and not isinstance(o.shape[0], int) for o in session.get_outputs()
        )
        if sidecar and sidecar.labels and sidecar.probabilities_output not in self.outputs:
            raise ModelLoadError(
                model_path,
                f"sidecar names output '{sidecar.probabilities_output}', model has {self.outputs}",
            )

    def prepare(self, request: ExpertInput) -> TensorsRequest:
        """Check the tensors; text alone is not enough for a tensor model."""
        if not request.tensors:
            takes = ", ".join(f"'{s.name}' {s.describe()}" for s in self.specs)
            raise InvalidInput("input.tensors", f"this expert takes tensors ({takes}), not text")
        feeds = check_tensors(request.tensors, self.specs)
        rows = next(iter(feeds.values())).shape[0] if self.batchable else 1
        return TensorsRequest(feeds, rows)

    def run(self, prepared: Sequence[TensorsRequest]) -> list[ExpertOutput]:
        """One run over stacked rows when the model is batchable, else one run per request."""
        if not self.batchable or len(prepared) == 1:
            return [self._answer(self._run(p.feeds)) for p in prepared]
        stacked = {
            s.name: np.concatenate([p.feeds[s.name] for p in prepared], axis=0) for s in self.specs
        }
        outs = self._run(stacked)
        answers, start = [], 0
        for p in prepared:
            answers.append(self._answer({k: v[start : start + p.rows] for k, v in outs.items()}))
            start += p.rows
        return answers

    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = self.session.run(self.outputs, feeds)
        return {name: np.asarray(v) for name, v in zip(self.outputs, values, strict=True)}

    def _answer(self, outputs: dict[str, np.ndarray]) -> ExpertOutput:
        sc = self.sidecar
        if sc is not None and sc.labels:
            return self._labelled(sc, outputs)
        parts = [f"'{k}' {_summary(v)}" for k, v in outputs.items()]
        return ExpertOutput(text="Outputs: " + "; ".join(parts) + ".", tensors=outputs)

    def _labelled(self, sc: TensorsSidecar, outputs: dict[str, np.ndarray]) -> ExpertOutput:
        probs = outputs[sc.probabilities_output].reshape(-1, len(sc.labels))
        best = probs.argmax(axis=1)
        words = [
            sc.answer.format(label=sc.labels[int(k)], probability=float(p[k]))
            for p, k in zip(probs, best, strict=True)
        ]
        if len(words) == 1:
            text = words[0]
        else:
            shown = [f"row {i + 1}: {w}" for i, w in enumerate(words[:_MAX_ROWS_WORDED])]
            more = len(words) - len(shown)
            text = "; ".join(shown) + (f"; and {more} more" if more > 0 else "")
        if sc.model_description:
            text += f" — {sc.model_description}"
            if "accuracy" in sc.metrics:
                text += f", held-out accuracy {sc.metrics['accuracy']:.2f}"
        text += "."
        metadata = {
            "label": sc.labels[int(best[0])],
            "probability": f"{float(probs[0, best[0]]):.4f}",
            "rows": str(len(words)),
        }
        if sc.model_description:
            metadata["model"] = sc.model_description
        return ExpertOutput(text=text, tensors=outputs, metadata=metadata)


def _summary(value: np.ndarray) -> str:
    """``float32 [1, 10] = [0.01, 0.97, ...]``: a short look at one output."""
    flat = value.reshape(-1)[:_MAX_VALUES_SHOWN]
    if np.issubdtype(value.dtype, np.floating):
        shown = ", ".join(f"{float(x):.3g}" for x in flat)
    else:
        shown = ", ".join(str(x) for x in flat.tolist())
    ellipsis = ", ..." if value.size > _MAX_VALUES_SHOWN else ""
    return f"{value.dtype} [{', '.join(str(d) for d in value.shape)}] = [{shown}{ellipsis}]"
