"""The ``onnx`` runtime: CPU models on ONNX Runtime, one task adapter per ``model.task``.

    expert.py          OnnxExpert: opens model and sidecar, routes requests, batches
    session.py         ONNX Runtime sessions from the manifest's options; sidecar JSON reading
    sidecar.py         the sidecar schemas shared with the builder (mesh.demo)
    tensorspec.py      checks of request tensors against the model's declared inputs
    tensors.py         task "tensors": named tensors in and out
    tabular.py         tasks "tabular-classification" / "tabular-regression"
    tabular_answers.py their wording
    textfeatures.py    reading feature values out of text
    retrieval.py       task "retrieval": an index model over embedded passages
"""

from mesh.experts.onnx.expert import OnnxExpert

__all__ = ["OnnxExpert"]
