"""breast-cancer: is a breast mass malignant, from 30 measurements of its cell nuclei?

Data: the Wisconsin Diagnostic Breast Cancer set (569 fine-needle aspirates, UCI, CC BY 4.0),
shipped with scikit-learn. Model: logistic regression on standardised measurements; it beat
gradient-boosted trees in 5-fold cross-validation on the training split and gives calibrated
probabilities, which the answer quotes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mesh.demo.common import (
    SPLIT_SEED,
    TEST_SIZE,
    feature_range,
    save_sklearn_expert,
)
from mesh.experts.onnx.sidecar import DataInfo, FeatureInfo, TabularSidecar

MODEL = "breast_cancer.onnx"
SIDECAR = "breast_cancer.json"

# What each of the ten base measurements is (from the data set's documentation).
_BASES = {
    "radius": "mean distance from the centre to points on the nucleus perimeter",
    "texture": "standard deviation of grey-scale values",
    "perimeter": "nucleus perimeter",
    "area": "nucleus area",
    "smoothness": "local variation in radius lengths",
    "compactness": "perimeter squared / area - 1",
    "concavity": "severity of concave portions of the contour",
    "concave points": "number of concave portions of the contour",
    "symmetry": "symmetry of the nucleus",
    "fractal dimension": "'coastline approximation' - 1",
}


def _feature(name: str, column: np.ndarray) -> FeatureInfo:
    """Name, description and the aliases people write ("average radius", "radius se")."""
    if name.startswith("mean "):
        base = name.removeprefix("mean ")
        aliases = [f"average {base}", f"avg {base}", f"{base} mean", base]
        description = f"mean over the nuclei of the {_BASES[base]}"
    elif name.startswith("worst "):
        base = name.removeprefix("worst ")
        aliases = [f"largest {base}", f"max {base}", f"maximum {base}", f"{base} worst"]
        description = f"mean of the three largest values of the {_BASES[base]}"
    else:
        base = name.removesuffix(" error")
        aliases = [f"{base} se", f"{base} standard error", f"standard error of {base}",
                   f"se {base}", f"{base} std error"]
        description = f"standard error of the {_BASES[base]}"
    return FeatureInfo(name=name, description=description, aliases=aliases,
                       **feature_range(column))


def build(out: Path) -> list[Path]:
    """Train, evaluate on the held-out split, export; returns the files written."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer()
    x = data.data.astype(np.float32)
    y = data.target
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=y
    )
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    model.fit(x_tr, y_tr)
    accuracy = float(model.score(x_te, y_te))

    names = [str(n) for n in data.feature_names]
    sidecar = TabularSidecar(
        task="tabular-classification",
        title="breast mass diagnosis from fine-needle aspirate measurements",
        model_description="logistic regression on standardised measurements",
        input_noun="measurements",
        features=[_feature(n, x_tr[:, j]) for j, n in enumerate(names)],
        labels=[str(t) for t in data.target_names],  # class 0 = malignant, 1 = benign
        metrics={"accuracy": round(accuracy, 4)},
        data=DataInfo(
            name="Wisconsin Diagnostic Breast Cancer data",
            source="UCI Machine Learning Repository (Wolberg, Street & Mangasarian, 1995), "
            "as shipped with scikit-learn (sklearn.datasets.load_breast_cancer)",
            licence="CC BY 4.0",
            row_noun="cases",
            n_train=len(y_tr),
            n_test=len(y_te),
        ),
    )
    return save_sklearn_expert(
        model, x.shape[1], out, MODEL, SIDECAR,
        "Breast mass malignant/benign from 30 nucleus measurements", sidecar,
    )
