"""numpy arrays to and from the Open Inference Protocol's tensors.

The only module of the runtime that builds or reads protocol messages' tensor parts: the
protocol names data types in words (FP32, INT64, BYTES) and keeps elements in one typed list
per family (or as raw little-endian bytes), so each type is one row of one table here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mesh.errors import InvalidInput
from mesh.proto.oip.v2 import grpc_predict_v2_pb2 as pb


@dataclass(frozen=True)
class _Kind:
    dtype: np.dtype
    contents: str | None  # field of InferTensorContents; None: raw bytes only


_KINDS: dict[str, _Kind] = {
    "BOOL": _Kind(np.dtype(np.bool_), "bool_contents"),
    "INT8": _Kind(np.dtype(np.int8), "int_contents"),
    "INT16": _Kind(np.dtype(np.int16), "int_contents"),
    "INT32": _Kind(np.dtype(np.int32), "int_contents"),
    "INT64": _Kind(np.dtype(np.int64), "int64_contents"),
    "UINT8": _Kind(np.dtype(np.uint8), "uint_contents"),
    "UINT16": _Kind(np.dtype(np.uint16), "uint_contents"),
    "UINT32": _Kind(np.dtype(np.uint32), "uint_contents"),
    "UINT64": _Kind(np.dtype(np.uint64), "uint64_contents"),
    "FP16": _Kind(np.dtype(np.float16), None),
    "FP32": _Kind(np.dtype(np.float32), "fp32_contents"),
    "FP64": _Kind(np.dtype(np.float64), "fp64_contents"),
    "BYTES": _Kind(np.dtype(object), "bytes_contents"),
}
_BY_DTYPE = {k.dtype: name for name, k in _KINDS.items() if name != "BYTES"}


def datatype_of(array: np.ndarray) -> str:
    """The protocol's name for an array's element type; text and bytes arrays are BYTES."""
    if array.dtype.kind in ("U", "S", "O"):
        return "BYTES"
    name = _BY_DTYPE.get(array.dtype)
    if name is None:
        raise ValueError(f"element type {array.dtype} has no Open Inference Protocol type")
    return name


def _as_bytes(value: object) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def to_input(name: str, array: np.ndarray) -> tuple[pb.ModelInferRequest.InferInputTensor, bytes]:
    """One input tensor, and its elements as raw bytes for FP16 (which has no typed list)."""
    try:
        datatype = datatype_of(array)
    except ValueError as e:
        raise InvalidInput(f"input.tensors['{name}']", str(e)) from None
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=name, datatype=datatype, shape=list(array.shape)
    )
    kind = _KINDS[datatype]
    flat = array.reshape(-1)
    if kind.contents is None:
        return tensor, flat.astype(kind.dtype.newbyteorder("<")).tobytes()
    if datatype == "BYTES":
        tensor.contents.bytes_contents.extend(_as_bytes(v) for v in flat)
    else:
        getattr(tensor.contents, kind.contents).extend(flat.tolist())
    return tensor, b""


def build_request(
    model_name: str, model_version: str, tensors: Mapping[str, np.ndarray], outputs: list[str]
) -> pb.ModelInferRequest:
    """A ModelInferRequest for named arrays; raw contents only when an input needs them."""
    request = pb.ModelInferRequest(model_name=model_name, model_version=model_version)
    raws = []
    for name, array in tensors.items():
        tensor, raw = to_input(name, np.asarray(array))
        request.inputs.append(tensor)
        raws.append(raw)
    if any(raws):
        # The protocol allows raw or typed contents per request, not a mix: send all raw.
        for tensor in request.inputs:
            tensor.ClearField("contents")
        request.raw_input_contents.extend(_raw(np.asarray(a)) for a in tensors.values())
    for name in outputs:
        request.outputs.append(pb.ModelInferRequest.InferRequestedOutputTensor(name=name))
    return request


def _raw(array: np.ndarray) -> bytes:
    datatype = datatype_of(array)
    if datatype == "BYTES":
        parts = [_as_bytes(v) for v in array.reshape(-1)]
        return b"".join(len(p).to_bytes(4, "little") + p for p in parts)
    return array.astype(_KINDS[datatype].dtype.newbyteorder("<")).tobytes()


def from_output(
    tensor: pb.ModelInferResponse.InferOutputTensor, raw: bytes | None
) -> np.ndarray:
    """An output tensor as an array (typed contents, or raw bytes when the server sent those)."""
    kind = _KINDS.get(tensor.datatype)
    if kind is None:
        raise ValueError(f"output '{tensor.name}' has unknown datatype '{tensor.datatype}'")
    shape = tuple(int(d) for d in tensor.shape)
    if raw is not None:
        if tensor.datatype == "BYTES":
            values, offset = [], 0
            while offset < len(raw):
                size = int.from_bytes(raw[offset:offset + 4], "little")
                values.append(raw[offset + 4:offset + 4 + size])
                offset += 4 + size
            return np.array(values, dtype=object).reshape(shape)
        return np.frombuffer(raw, dtype=kind.dtype.newbyteorder("<")).astype(kind.dtype).reshape(
            shape
        )
    if kind.contents is None:
        raise ValueError(f"output '{tensor.name}' is {tensor.datatype} without raw contents")
    values = list(getattr(tensor.contents, kind.contents))
    return np.array(values, dtype=kind.dtype).reshape(shape)


def read_response(response: pb.ModelInferResponse) -> dict[str, np.ndarray]:
    """Every output of a ModelInferResponse by name."""
    raws = list(response.raw_output_contents)
    out = {}
    for i, tensor in enumerate(response.outputs):
        out[tensor.name] = from_output(tensor, raws[i] if i < len(raws) else None)
    return out
