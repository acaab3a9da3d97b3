"""digits: which digit is in an 8x8 grey-level image? A tensor-only expert.

Data: the 1,797 8x8 handwritten digits of the UCI Optical Recognition of Handwritten Digits
set (CC BY 4.0), shipped with scikit-learn; pixel values 0-16. Model: a small neural network
(one hidden layer of 64 units) on standardised pixels. The exported graph takes the image as
``image`` float32 [n, 8, 8] and flattens it itself, so callers send images, not feature rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mesh.demo.common import (
    SPLIT_SEED,
    TEST_SIZE,
    export_sklearn,
    finish_model,
    write_sidecar,
)
from mesh.experts.onnx.sidecar import DataInfo, TensorsSidecar

MODEL = "digits.onnx"
SIDECAR = "digits.json"
INPUT = "image"


def _take_images(onx: object, flat_input: str) -> None:
    """Give the graph an [n, 8, 8] input named ``image`` and reshape it to the model's [n, 64]."""
    from onnx import TensorProto, helper, numpy_helper

    graph = onx.graph  # type: ignore[attr-defined]
    shape = numpy_helper.from_array(np.array([-1, 64], dtype=np.int64), "image_to_rows")
    graph.initializer.append(shape)
    graph.node.insert(0, helper.make_node("Reshape", [INPUT, "image_to_rows"], [flat_input]))
    image = helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["n", 8, 8])
    old = [i for i in graph.input if i.name == flat_input]
    for i in old:
        graph.input.remove(i)
    graph.input.insert(0, image)


def build(out: Path) -> list[Path]:
    """Train, evaluate on the held-out split, export; returns the files written."""
    import warnings

    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_digits()
    x = data.data.astype(np.float32)
    y = data.target
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y
    )
    model = make_pipeline(
        StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning near the end is harmless here
        model.fit(x_tr, y_tr)
    accuracy = float(model.score(x_te, y_te))

    onx = export_sklearn(model, x.shape[1], input_name="pixels")
    _take_images(onx, "pixels")
    sidecar = TensorsSidecar(
        title="handwritten digit recognition (8x8 grey-level images, values 0-16)",
        model_description=f"a small neural network trained on {len(y_tr)} handwritten digits "
        "of the UCI Optical Recognition of Handwritten Digits data",
        labels=[str(int(t)) for t in data.target_names],
        answer="This looks like the digit {label} (p={probability:.2f})",
        metrics={"accuracy": round(accuracy, 4)},
        data=DataInfo(
            name="UCI Optical Recognition of Handwritten Digits data",
            source="UCI Machine Learning Repository (Alpaydin & Kaynak, 1998), as shipped "
            "with scikit-learn (sklearn.datasets.load_digits)",
            licence="CC BY 4.0",
            row_noun="images",
            n_train=len(y_tr),
            n_test=len(y_te),
        ),
    )
    finish_model(onx, out / MODEL, "Digit 0-9 from an 8x8 image (grey levels 0-16)",
                 {"mesh.sidecar": SIDECAR})
    write_sidecar(out / SIDECAR, sidecar)
    return [out / MODEL, out / SIDECAR]
