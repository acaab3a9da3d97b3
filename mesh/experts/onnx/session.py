"""Opening ONNX models and their sidecar files, with errors that name the file and the cause.

Every failure to load becomes ``ModelLoadError(path, cause)``: the serving layer reports it as
FAILED_PRECONDITION with the file a human must fix, instead of an ONNX Runtime traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import onnxruntime as ort

from mesh.config import OnnxSessionConfig, unset_variables
from mesh.errors import ModelLoadError

_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def _missing_cause(path: Path, what: str) -> str:
    cause = f"{what} does not exist"
    unset = unset_variables(str(path))  # os.path.expandvars leaves unset ones in the path
    if unset:
        cause += f" (environment variable {', '.join(unset)} is not set)"
    return cause


def session_options(config: OnnxSessionConfig) -> ort.SessionOptions:
    """Session options from the manifest's ``model.session``.

    Small CPU experts share a machine with many others, so the manifest decides their threads
    (default one each) instead of ONNX Runtime grabbing every core per session.
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = config.intra_op_threads
    opts.inter_op_num_threads = config.inter_op_threads
    opts.graph_optimization_level = _OPT_LEVELS[config.graph_optimization]
    opts.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL
        if config.inter_op_threads > 1
        else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    spin = "1" if config.allow_spinning else "0"
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
    opts.log_severity_level = 3  # errors only: warnings about unused initializers are noise
    return opts


def open_session(path: Path, config: OnnxSessionConfig) -> ort.InferenceSession:
    """Open an ONNX model on the CPU; ModelLoadError names the path if missing or corrupt."""
    if not path.is_file():
        raise ModelLoadError(str(path), _missing_cause(path, "the model file"))
    try:
        return ort.InferenceSession(
            str(path), session_options(config), providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises untyped errors (Fail, InvalidProtobuf, ...)
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(str(path), f"not a loadable ONNX model: {first_line}") from e


def read_json(path: Path) -> dict[str, Any]:
    """Read a sidecar JSON object; ModelLoadError names the path when missing or malformed."""
    if not path.is_file():
        raise ModelLoadError(str(path), _missing_cause(path, "the sidecar file"))
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(str(path), f"sidecar is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ModelLoadError(str(path), "sidecar must hold a JSON object")
    return data
