"""The sidecar files written next to an ONNX model at build time: what the model's numbers mean.

An ONNX file holds arithmetic, not meaning. The sidecar carries what an answer in words needs
(feature names, units, training medians, class labels, held-out metrics, where the data came
from and under which licence) and what text parsing needs (aliases, category values). The
builder writes these models with ``model_dump_json`` and the runtime reads them back with
validation, so both sides share one schema and a stale or hand-edited sidecar fails at load time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from mesh.errors import ModelLoadError


class _Sidecar(BaseModel):
    # Unknown keys are ignored: a newer builder may add facts an older runtime does not use.
    model_config = ConfigDict(extra="ignore", frozen=True)


class DataInfo(_Sidecar):
    """Where the training data came from; quoted in answers so users can judge the model."""

    name: str
    """Human name of the data set, e.g. "Wisconsin Diagnostic Breast Cancer data"."""
    source: str
    """Where it is published (and which package shipped it to the builder)."""
    licence: str
    """Licence of the data."""
    row_noun: str = "rows"
    """What one row is, plural ("cases", "plots", "images"), for "trained on 455 cases"."""
    n_train: int = Field(ge=1)
    """Rows the shipped model was trained on."""
    n_test: int = Field(0, ge=0)
    """Held-out rows the metrics were measured on."""


class FeatureInfo(_Sidecar):
    """One column of the model's ``features`` input."""

    name: str
    """Name as the data set spells it, e.g. "mean radius"."""
    kind: Literal["numeric", "categorical"] = "numeric"
    """Numeric value, or a category fed to the model as its index in ``values``."""
    description: str = ""
    """What the feature measures."""
    unit: str = ""
    """Unit of numeric values ("mm", "mg/dL"); empty when unitless."""
    aliases: list[str] = []
    """Other names a user may write (matched case-insensitively, whole words)."""
    patterns: list[str] = []
    """Regexes (one group: the value) for phrasings without the name, e.g. '58-year-old'."""
    phrase: str = ""
    """How a given value reads in an answer, e.g. "at {value}"; empty leaves it out."""
    median: float | None = None
    """Training median of a numeric feature: the value assumed when a user does not give it."""
    min: float | None = None
    """Smallest training value (answers warn when a given value lies outside the range)."""
    max: float | None = None
    """Largest training value."""
    values: list[str] = []
    """Categories, in code order: category ``values[i]`` is fed to the model as ``i``."""
    value_aliases: dict[str, list[str]] = {}
    """Other spellings of categories, e.g. {"University Farm": ["St. Paul"]}."""
    when_missing: Literal["compare", "average"] = "compare"
    """A category the user did not name: answer for each value, or average over all of them."""

    @model_validator(mode="after")
    def _kind_fields(self) -> FeatureInfo:
        if self.kind == "numeric" and self.median is None:
            raise ValueError(f"numeric feature '{self.name}' needs a training median")
        if self.kind == "categorical" and not self.values:
            raise ValueError(f"categorical feature '{self.name}' needs its values")
        return self


class TargetInfo(_Sidecar):
    """What a regression model predicts."""

    label: str
    """How the prediction is introduced, e.g. "Expected yield"."""
    unit: str = ""
    """Unit of the prediction, e.g. "bushels/acre"."""
    description: str = ""
    """Extra context for the number, e.g. its scale in the training data."""
    decimals: int = Field(1, ge=0, le=6)
    """Decimals shown in answers."""


class TabularSidecar(_Sidecar):
    """Sidecar of a ``tabular-classification`` or ``tabular-regression`` model."""

    format: Literal["mesh.tabular/1"] = "mesh.tabular/1"
    task: Literal["tabular-classification", "tabular-regression"]
    title: str
    """What the model does, e.g. "Breast tumour diagnosis from cell-nucleus measurements"."""
    model_description: str
    """The learner in words, e.g. "logistic regression on standardised measurements"."""
    input_name: str = "features"
    """Name of the model's one input tensor, float32 [n, len(features)]."""
    input_noun: str = "features"
    """What the numeric features are called in answers ("measurements")."""
    features: list[FeatureInfo] = Field(min_length=1)
    labels: list[str] = []
    """Class labels in the model's label order (classification)."""
    target: TargetInfo | None = None
    """What is predicted (regression)."""
    metrics: dict[str, float] = {}
    """Held-out metrics: "accuracy" for classification, "mae" (in target units) for regression."""
    data: DataInfo

    @model_validator(mode="after")
    def _task_fields(self) -> TabularSidecar:
        if self.task == "tabular-classification" and len(self.labels) < 2:
            raise ValueError("a classification sidecar needs at least two labels")
        if self.task == "tabular-regression" and self.target is None:
            raise ValueError("a regression sidecar needs a target")
        return self


class Passage(_Sidecar):
    """One retrievable passage; row ``i`` of the index embeds passage ``i``."""

    title: str
    """Title of the source section, shown with the passage."""
    text: str
    topic: str = ""
    """Key of the source document (e.g. the pydoc topic 'for')."""


class RetrievalSidecar(_Sidecar):
    """Sidecar of a ``retrieval`` index model: the passages and how they were embedded."""

    format: Literal["mesh.retrieval/1"] = "mesh.retrieval/1"
    title: str
    """What the collection is, e.g. "the Python language reference and library docs"."""
    embedder: str
    """Embedder the passages were embedded with; must equal the manifest's model.embedder."""
    dim: int = Field(ge=1)
    passages: list[Passage] = Field(min_length=1)
    data: DataInfo


class TensorsSidecar(_Sidecar):
    """Optional sidecar of a ``tensors`` model: labels and wording for its outputs."""

    format: Literal["mesh.tensors/1"] = "mesh.tensors/1"
    title: str
    model_description: str = ""
    labels: list[str] = []
    """Class labels, when the model has a probabilities output."""
    probabilities_output: str = "probabilities"
    """Output holding class probabilities [n, len(labels)]."""
    answer: str = "{label} (p={probability:.2f})"
    """Wording of one row's answer; fields: label, probability."""
    metrics: dict[str, float] = {}
    data: DataInfo | None = None


S = TypeVar("S", bound=_Sidecar)


def parse_sidecar(kind: type[S], data: dict[str, Any], path: Path) -> S:
    """Validate sidecar JSON; ModelLoadError names the file and the first problems."""
    try:
        return kind.model_validate(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in e.errors()[:3]
        )
        cause = f"sidecar does not match {kind.__name__}: {problems}"
        raise ModelLoadError(str(path), cause) from e
