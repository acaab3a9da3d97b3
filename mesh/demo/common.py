"""Helpers shared by the demo builders: atomic files, ONNX export, held-out splits.

Builders write with ``write_bytes_atomic`` so a reader (a replica loading while ``mesh up``
rebuilds, or two test processes building the same folder) never sees half a file.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel

SPLIT_SEED = 42
"""Every demo model is trained on the same kind of split: 80 % train, 20 % held out."""
TEST_SIZE = 0.2
TARGET_OPSET = 17
"""ONNX opset of exported models; ONNX Runtime >= 1.20 (the project's floor) runs it."""
IR_VERSION = 8
"""ONNX IR version written, low enough for every ONNX Runtime the project supports."""


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; artifacts are read by other users' replicas
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_sidecar(path: Path, sidecar: BaseModel) -> None:
    """Write a sidecar model as indented JSON (people read these files too)."""
    write_bytes_atomic(path, sidecar.model_dump_json(indent=1).encode("utf-8"))


def export_sklearn(model: Any, n_features: int, input_name: str = "features") -> Any:
    """Convert a fitted scikit-learn model to ONNX with a float32 [n, F] input.

    Classifiers are exported without ZipMap, so probabilities come out as a plain float tensor
    [n, classes] that batches and crosses the wire, instead of a list of Python dicts.
    """
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    final = model.steps[-1][1] if hasattr(model, "steps") else model
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onx = to_onnx(
            model,
            initial_types=[(input_name, FloatTensorType([None, n_features]))],
            options=options,
            target_opset=TARGET_OPSET,
        )
    onx.ir_version = min(onx.ir_version, IR_VERSION)
    return onx


def finish_model(onx: Any, path: Path, doc: str, metadata: dict[str, str]) -> None:
    """Stamp the model with a description and metadata, check it, and write it atomically."""
    import onnx

    onx.doc_string = doc
    onx.producer_name = "mesh.demo"
    for key, value in metadata.items():
        prop = onx.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.checker.check_model(onx)
    write_bytes_atomic(path, onx.SerializeToString())


def feature_range(column: np.ndarray) -> dict[str, float]:
    """Training median, min and max of one numeric column, rounded for readable sidecars."""
    return {
        "median": round(float(np.median(column)), 4),
        "min": round(float(column.min()), 4),
        "max": round(float(column.max()), 4),
    }


def save_sklearn_expert(
    model: Any, n_features: int, out: Path, model_file: str, sidecar_file: str, doc: str,
    sidecar: BaseModel,
) -> list[Path]:
    """Export a fitted scikit-learn model and write it with its sidecar; returns both paths.

    The model's metadata names its sidecar, so the pair can be checked to belong together.
    """
    onx = export_sklearn(model, n_features)
    finish_model(onx, out / model_file, doc, {"mesh.sidecar": sidecar_file})
    write_sidecar(out / sidecar_file, sidecar)
    return [out / model_file, out / sidecar_file]
