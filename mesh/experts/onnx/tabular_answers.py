"""Wording of tabular answers: the prediction, what the model is, and what the user gave.

Kept apart from the adapter so the sentence shapes can be read (and reviewed) in one place:

    Malignant (probability 0.94) — logistic regression trained on 455 cases of the Wisconsin
    Diagnostic Breast Cancer data, held-out accuracy 0.98. You gave 3 of 30 measurements; the
    rest were set to training medians.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mesh.experts.onnx.sidecar import TabularSidecar
from mesh.experts.onnx.wording import fmt_number, fmt_value, join_words
from mesh.types import ExpertOutput

if TYPE_CHECKING:
    from mesh.experts.onnx.tabular import TabularRequest

_MAX_LISTED = 12


def answer_for(
    sc: TabularSidecar, req: TabularRequest, keys: Sequence[tuple[str, ...]], values: np.ndarray
) -> ExpertOutput:
    """The answer for one request: ``values`` holds one prediction per key (row group)."""
    if not req.from_tensor and not req.given and all(f.kind == "numeric" for f in sc.features):
        return _explain(sc)
    classification = sc.task == "tabular-classification"
    metadata = {
        "model": sc.model_description,
        "data": sc.data.name,
        "licence": sc.data.licence,
        "n_given": str(len(req.given)),
        "given": ",".join(req.given),
        "rows": str(len(keys)),
    }
    tensors: dict[str, np.ndarray] = {}
    if classification:
        labels = np.argmax(values, axis=1)
        tensors = {"probabilities": values, "label": labels.astype(np.int64)}
        metadata["label"] = sc.labels[int(labels[0])]
        metadata["probability"] = f"{float(values[0, labels[0]]):.4f}"
        items = [
            f"{_cap(sc.labels[int(k)])} (probability {_probability(float(p[k]))})"
            for p, k in zip(values, labels, strict=True)
        ]
        numbers = items
    else:
        target = sc.target
        assert target is not None  # the sidecar validator guarantees it for regression
        tensors = {"prediction": values.astype(np.float32)}
        metadata["prediction"] = f"{float(values[0]):.4f}"
        metadata["unit"] = target.unit
        numbers = [fmt_number(float(v), target.decimals) for v in values]
        items = [_with_unit(n, target.unit) for n in numbers]

    if len(keys) == 1 and not keys[0]:
        head = f"{_lead(sc, req)}{items[0]}"
        if not classification and sc.target is not None and sc.target.description:
            head += f" ({sc.target.description})"
    elif req.from_tensor:
        shown = [f"row {i + 1}: {item}" for i, item in enumerate(items[:_MAX_LISTED])]
        more = len(items) - len(shown)
        head = "; ".join(shown) + (f"; and {more} more rows" if more > 0 else "")
        head = head[0].upper() + head[1:]
    else:
        head = _compared(sc, req, keys, values, numbers)
    sentences = [f"{head} — {_model_sentence(sc)}."]
    if not req.from_tensor:
        sentences.append(_inputs_sentence(sc, req))
    sentences.extend(f"Note: {n}." for n in req.notes)
    text = " ".join(s for s in sentences if s)
    return ExpertOutput(text=text, tensors=tensors, metadata=metadata)


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _probability(p: float) -> str:
    """``0.94``; ``above 0.99`` rather than a ``1.00`` that reads as certainty."""
    return "above 0.99" if p >= 0.995 else f"{p:.2f}"


def _with_unit(number: str, unit: str) -> str:
    return f"{number} {unit}" if unit else number


def _lead(sc: TabularSidecar, req: TabularRequest) -> str:
    """``Expected yield for Manchuria at Waseca: `` (regression) or ``""`` (classification)."""
    if sc.target is None:
        return ""
    phrases = []
    row = req.rows[0]
    for j, f in enumerate(sc.features):
        if not f.phrase or f.name not in req.given or f.name in req.compared:
            continue
        value = f.values[int(row[j])] if f.kind == "categorical" else fmt_value(float(row[j]))
        phrases.append(f.phrase.format(value=value))
    return f"{sc.target.label}{''.join(' ' + p for p in phrases)}: "


def _compared(
    sc: TabularSidecar,
    req: TabularRequest,
    keys: Sequence[tuple[str, ...]],
    values: np.ndarray,
    items: list[str],
) -> str:
    """Several rows that differ in named or enumerated categories, best first for regression.

    ``items`` are the worded predictions without unit; the unit is said once, in the lead.
    """
    order = list(range(len(keys)))
    if sc.target is not None:
        order.sort(key=lambda i: -float(values[i]))
    names = [", ".join(keys[i]) for i in order]
    lead = _lead(sc, req).rstrip(": ") or "Predictions"
    unit = f" ({sc.target.unit})" if sc.target is not None and sc.target.unit else ""
    by = f"{lead}, by {join_words(req.compared)}{unit}"
    if len(order) <= _MAX_LISTED:
        listed = "; ".join(f"{n}: {items[i]}" for n, i in zip(names, order, strict=True))
        return f"{by} — {listed}"
    top = "; ".join(f"{n}: {items[i]}" for n, i in zip(names[:3], order[:3], strict=True))
    if sc.target is None:
        return f"{by} — {top}; and {len(order) - 3} more"
    mean = fmt_number(float(values.mean()), sc.target.decimals)
    return (
        f"{by}: {mean} on average over {len(order)} combinations; highest {top}; "
        f"lowest {names[-1]}: {items[order[-1]]}"
    )


def _model_sentence(sc: TabularSidecar) -> str:
    d = sc.data
    text = f"{sc.model_description} trained on {d.n_train} {d.row_noun} of the {d.name}"
    if "accuracy" in sc.metrics:
        text += f", held-out accuracy {sc.metrics['accuracy']:.2f}"
    if "mae" in sc.metrics and sc.target is not None:
        mae = fmt_number(sc.metrics["mae"], sc.target.decimals)
        text += f", held-out mean absolute error {_with_unit(mae, sc.target.unit)}"
    return text


def _inputs_sentence(sc: TabularSidecar, req: TabularRequest) -> str:
    """Which values the user gave, which were assumed, which categories were enumerated."""
    numeric = [f for f in sc.features if f.kind == "numeric"]
    given_numeric = [f.name for f in numeric if f.name in req.given]
    parts: list[str] = []
    noun = sc.input_noun
    if numeric:
        if len(given_numeric) == len(numeric):
            parts.append(f"You gave all {len(numeric)} {noun}")
        else:
            listed = f" ({join_words(given_numeric)})" if 0 < len(given_numeric) <= 6 else ""
            count = f"{len(given_numeric)} of {len(numeric)}" if given_numeric else "none of the"
            text = f"You gave {count} {noun}{listed}"
            assumed = [f for f in numeric if f.name in req.assumed]
            if len(assumed) <= 3:
                vals = join_words([fmt_value(f.median or 0.0) for f in assumed])
                verb = "was" if len(assumed) == 1 else "were"
                plural = "" if len(assumed) == 1 else "s"
                text += (
                    f"; {join_words([f.name for f in assumed])} {verb} set to the training "
                    f"median{plural} ({vals})"
                )
            else:
                text += "; the rest were set to training medians"
            parts.append(text)
    for f in sc.features:
        if f.kind != "categorical" or f.name in req.given:
            continue
        if f.name in req.compared:
            parts.append(f"No {f.name} was named, so all {len(f.values)} are compared")
        elif f.name in req.averaged:
            parts.append(f"No {f.name} was named, so the prediction averages over "
                         f"{join_words(f.values)}")
    if req.carried:
        carried = _cap(join_words(req.carried))
        parts.append(f"{carried} carried over from earlier in the conversation")
    return " ".join(p + "." for p in parts)


def _explain(sc: TabularSidecar) -> ExpertOutput:
    """No value was found in the text: say what to give instead of predicting the median case."""
    shown = sc.features[:12]
    listed = ", ".join(f"{f.name} ({f.unit})" if f.unit else f.name for f in shown)
    more = len(sc.features) - len(shown)
    example = ", ".join(f"{f.name} {fmt_value(f.median or 0.0)}" for f in sc.features[:2])
    text = (
        f"I can predict this ({sc.title}) from {len(sc.features)} {sc.input_noun}, but found none "
        f"in your question. Give values such as '{example}'. I know: {listed}"
        + (f" and {more} more." if more > 0 else ".")
    )
    metadata = {"model": sc.model_description, "n_given": "0", "given": "", "rows": "0"}
    return ExpertOutput(text=text, metadata=metadata)
