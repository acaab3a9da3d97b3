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
