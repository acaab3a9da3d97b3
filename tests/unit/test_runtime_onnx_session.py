"""ONNX Runtime session options come from the manifest's ``model.session`` block."""

from __future__ import annotations

import onnxruntime as ort
import pytest

from mesh.config import OnnxSessionConfig
from mesh.experts.onnx.session import session_options


@pytest.mark.parametrize(
    ("config", "mode", "level", "spin"),
    [
        (OnnxSessionConfig(), ort.ExecutionMode.ORT_SEQUENTIAL,
         ort.GraphOptimizationLevel.ORT_ENABLE_ALL, "0"),
        (OnnxSessionConfig(intra_op_threads=2, inter_op_threads=2, graph_optimization="basic",
                           allow_spinning=True),
         ort.ExecutionMode.ORT_PARALLEL, ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, "1"),
    ],
)
def test_session_options_follow_the_manifest(
    config: OnnxSessionConfig, mode: ort.ExecutionMode, level: ort.GraphOptimizationLevel,
    spin: str,
) -> None:
    opts = session_options(config)
    assert opts.intra_op_num_threads == config.intra_op_threads
    assert opts.inter_op_num_threads == config.inter_op_threads
    assert opts.execution_mode == mode and opts.graph_optimization_level == level
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == spin
    assert opts.get_session_config_entry("session.inter_op.allow_spinning") == spin
