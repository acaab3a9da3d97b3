"""Small real models that tests build on the spot (no files are shipped for them)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def iris_model(folder: Path) -> Path:
    """Logistic regression on iris exported with skl2onnx (input ``X`` [n, 4], batch dim free,
    outputs ``label`` and ``probabilities``); written to ``folder/iris.onnx``."""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    x, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(x, y)
    onx = to_onnx(model, x[:1].astype(np.float32), options={id(model): {"zipmap": False}},
                  target_opset=17)
    path = folder / "iris.onnx"
    path.write_bytes(onx.SerializeToString())
    return path


IRIS_CARD: dict[str, object] = {
    "organization": "test-botanic-garden",
    "description": "Classifies iris flowers from sepal and petal measurements.",
    "examples": ["sepal 5.1 3.5 petal 1.4 0.2", "which iris is this", "classify my flower"],
    "input_kind": "tensors",
}
"""What every test's iris expert says of itself (its manifest less name, runtime and model)."""


def iris_fields(path: Path, name: str = "iris", /, **extra: object) -> dict[str, object]:
    """Manifest fields of an ONNX iris expert over the model at ``path`` (from ``iris_model``);
    ``extra`` fields are added or replace these (a ``model`` given here replaces the block)."""
    return {"name": name, **IRIS_CARD, "runtime": "onnx",
            "model": {"path": str(path), "task": "tensors"}, **extra}
