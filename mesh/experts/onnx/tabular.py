"""Tabular experts: a row of features in (a tensor, or values read from text), a prediction out.

A request gives a ``features`` tensor [n, F], or text such as "mean radius 17.9, worst area
2019". From text, numeric features the user did not give are set to training medians, and
categories the user did not name are enumerated: compared value by value ("which variety does
best at Morris?") or averaged over (a year that was not given). The answer says which values
were given and which assumed, so nobody mistakes a prediction for the typical case for theirs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mesh.errors import InvalidInput, ModelLoadError
from mesh.experts.onnx.adapter import TaskAdapter
from mesh.experts.onnx.sidecar import FeatureInfo, TabularSidecar
from mesh.experts.onnx.tabular_answers import answer_for
from mesh.experts.onnx.tensorspec import TensorSpec, check_tensors, tensor_field
from mesh.experts.onnx.textfeatures import FeatureParser, ParsedFeatures
from mesh.types import ExpertInput, ExpertOutput


@dataclass
class TabularRequest:
    """One request turned into model rows, with what the answer must say about its inputs."""

    rows: np.ndarray
    """float32 [r, F]: the rows fed to the model."""
    from_tensor: bool
    given: list[str] = field(default_factory=list)
    """Features the user gave (in feature order)."""
    carried: list[str] = field(default_factory=list)
    """Given features that came from earlier turns of the conversation, not this text."""
    assumed: list[str] = field(default_factory=list)
    """Numeric features set to training medians."""
    compared: list[str] = field(default_factory=list)
    """Categorical features whose rows differ (several values named, or none named)."""
    averaged: list[str] = field(default_factory=list)
    """Categorical features not named and averaged over."""
    row_keys: list[tuple[str, ...]] = field(default_factory=list)
    """Per row: values of the compared features (empty tuples when nothing is compared)."""
    notes: list[str] = field(default_factory=list)
    """Warnings for the answer, e.g. a value outside the training range."""


class TabularAdapter(TaskAdapter[TabularRequest]):
    """``tabular-classification`` and ``tabular-regression`` over one float32 ``features`` input."""

    def __init__(self, expert: str, session: Any, sidecar: TabularSidecar, model_path: str) -> None:
        self.expert = expert
        self.session = session
        self.sidecar = sidecar
        self.features = sidecar.features
        self.classification = sidecar.task == "tabular-classification"
        inputs = [TensorSpec.from_node_arg(i) for i in session.get_inputs()]
        want = f"one input '{sidecar.input_name}' float32 [n, {len(self.features)}]"
        if (
            len(inputs) != 1
            or inputs[0].name != sidecar.input_name
            or inputs[0].dtype != np.float32
            or inputs[0].shape[1:] != (len(self.features),)
        ):
            got = ", ".join(f"'{s.name}' {s.describe()}" for s in inputs)
            raise ModelLoadError(
                model_path, f"model inputs ({got}) do not match the sidecar ({want})"
            )
        self.spec = inputs[0]
        outputs = session.get_outputs()
        if self.classification:
            probs = [o.name for o in outputs if o.type == "tensor(float)" and len(o.shape) == 2]
            if not probs:
                raise ModelLoadError(model_path, "classifier has no float [n, classes] output "
                                     "(export with zipmap disabled)")
            self.output = probs[0]
        else:
            self.output = outputs[0].name
        self.parser = FeatureParser(self.features)
        self.medians = np.array(
            [f.median if f.median is not None else 0.0 for f in self.features], dtype=np.float32
        )

    # ------------------------------------------------------------------ prepare

    def prepare(self, request: ExpertInput) -> TabularRequest:
        """Rows from the ``features`` tensor when one is sent, else from the text."""
        if request.tensors:
            rows = check_tensors(request.tensors, [self.spec])[self.spec.name]
            self._check_codes(rows)
            names = [f.name for f in self.features]
            return TabularRequest(rows=rows, from_tensor=True, given=names,
                                  row_keys=[() for _ in range(rows.shape[0])])
        now = self.parser.parse(request.text)
        earlier = ParsedFeatures()
        for turn in request.history:  # oldest first, so later turns override earlier ones
            if self.expert in turn.experts:
                earlier = self.parser.parse(turn.question).merged_over(earlier)
        parsed = now.merged_over(earlier)
        carried = [n for n in parsed.names if n not in now.names]
        return self._rows_from(parsed, carried)

    def _check_codes(self, rows: np.ndarray) -> None:
        for j, f in enumerate(self.features):
            if f.kind != "categorical":
                continue
            col = rows[:, j]
            bad = (col != np.round(col)) | (col < 0) | (col >= len(f.values))
            if bad.any():
                i = int(np.argmax(bad))
                raise InvalidInput(
                    tensor_field(self.spec.name),
                    f"column {j} ({f.name}) holds category codes 0-{len(f.values) - 1} "
                    f"({', '.join(f'{k}={v}' for k, v in enumerate(f.values))}); "
                    f"row {i} has {float(col[i]):g}",
                )

    def _rows_from(self, parsed: ParsedFeatures, carried: list[str]) -> TabularRequest:
        req = TabularRequest(rows=np.zeros((0, len(self.features)), np.float32), from_tensor=False)
        base = self.medians.copy()
        options: list[tuple[int, FeatureInfo, list[str]]] = []
        for j, f in enumerate(self.features):
            if f.kind == "numeric":
                if f.name in parsed.numeric:
                    value = parsed.numeric[f.name]
                    base[j] = value
                    req.given.append(f.name)
                    req.notes.extend(_range_note(f, value))
                else:
                    req.assumed.append(f.name)
                continue
            named = parsed.categorical.get(f.name, [])
            if named:
                req.given.append(f.name)
            if len(named) > 1 or (not named and f.when_missing == "compare"):
                req.compared.append(f.name)
            elif not named:
                req.averaged.append(f.name)
            options.append((j, f, named or list(f.values)))
        req.carried = [n for n in req.given if n in carried]
        rows: list[np.ndarray] = []
        keys: list[tuple[str, ...]] = []
        for combo in itertools.product(*(vals for _, _, vals in options)):
            row = base.copy()
            key: list[str] = []
            for (j, f, _), category in zip(options, combo, strict=True):
                row[j] = f.values.index(category)
                if f.name in req.compared:
                    key.append(category)
            rows.append(row)
            keys.append(tuple(key))
        req.rows = np.stack(rows) if rows else base[np.newaxis, :]
        req.row_keys = keys or [()]
        return req

    # ------------------------------------------------------------------ run

    def run(self, prepared: Sequence[TabularRequest]) -> list[ExpertOutput]:
        """One ``session.run`` over every request's rows, then one answer per request."""
        stacked = np.concatenate([p.rows for p in prepared], axis=0)
        out = np.asarray(self.session.run([self.output], {self.spec.name: stacked})[0])
        out = out.astype(np.float32) if self.classification else out.reshape(-1).astype(np.float32)
        answers, start = [], 0
        for p in prepared:
            part = out[start : start + p.rows.shape[0]]
            start += p.rows.shape[0]
            answers.append(self._answer(p, part))
        return answers

    def _answer(self, req: TabularRequest, raw: np.ndarray) -> ExpertOutput:
        """Average over averaged categories, then word the answer (see tabular_answers)."""
        if req.from_tensor:
            keys: list[tuple[str, ...]] = [() for _ in range(raw.shape[0])]
            values = raw
        else:
            groups: dict[tuple[str, ...], list[int]] = {}
            for i, key in enumerate(req.row_keys):
                groups.setdefault(key, []).append(i)
            keys = list(groups)
            values = np.stack([raw[idx].mean(axis=0) for idx in groups.values()])
        output = answer_for(self.sidecar, req, keys, values.astype(np.float32))
        if output.tensors:
            output.tensors["features"] = req.rows
        return output


def _range_note(f: FeatureInfo, value: float) -> list[str]:
    if f.min is None or f.max is None or f.min <= value <= f.max:
        return []
    return [
        f"{f.name} {value:g} lies outside the training range ({f.min:g} to {f.max:g}), "
        "so that part is an extrapolation"
    ]
