"""The one converter between wire messages (``mesh.proto``) and the mesh's own types.

Only servicers, clients and this module import generated code, so a wire change touches one
place. Tensor validation lives here too: a malformed tensor is rejected at the edge with the
field named, before it reaches an expert.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from mesh.config import ExpertManifest
from mesh.errors import InvalidInput
from mesh.proto.v1 import common_pb2, expert_pb2
from mesh.types import TurnRecord

_DTYPES: dict[common_pb2.DataType, np.dtype] = {
    common_pb2.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    common_pb2.DATA_TYPE_FLOAT64: np.dtype("<f8"),
    common_pb2.DATA_TYPE_INT32: np.dtype("<i4"),
    common_pb2.DATA_TYPE_INT64: np.dtype("<i8"),
    common_pb2.DATA_TYPE_BOOL: np.dtype("?"),
}
_TO_WIRE: dict[str, common_pb2.DataType] = {
    "float32": common_pb2.DATA_TYPE_FLOAT32,
    "float64": common_pb2.DATA_TYPE_FLOAT64,
    "int32": common_pb2.DATA_TYPE_INT32,
    "int64": common_pb2.DATA_TYPE_INT64,
    "bool": common_pb2.DATA_TYPE_BOOL,
}
MAX_TENSOR_ELEMENTS = 50_000_000


def tensor_from_wire(t: common_pb2.Tensor, field: str) -> np.ndarray:
    """Decode one tensor; raises InvalidInput naming ``field`` when it is malformed."""
    where = f"{field}['{t.name}']" if t.name else field
    if not t.name:
        raise InvalidInput(field, "a tensor has no name; set Tensor.name")
    shape = list(t.shape)
    if any(d < 0 for d in shape):
        raise InvalidInput(where, f"shape {shape} has a negative dimension")
    count = math.prod(shape) if shape else 1
    if count > MAX_TENSOR_ELEMENTS:
        raise InvalidInput(where, f"shape {shape} has {count} elements, over {MAX_TENSOR_ELEMENTS}")
    if t.dtype == common_pb2.DATA_TYPE_STRING:
        if t.raw_data:
            raise InvalidInput(where, "string tensors carry string_data, not raw_data")
        if len(t.string_data) != count:
            raise InvalidInput(
                where, f"shape {shape} needs {count} strings, string_data has {len(t.string_data)}"
            )
        return np.array(list(t.string_data), dtype=object).reshape(shape)
    dtype = _DTYPES.get(t.dtype)
    if dtype is None:
        raise InvalidInput(
            where, f"dtype {t.dtype} is not set or not supported; use a DATA_TYPE_* value"
        )
    expected = count * dtype.itemsize
    if len(t.raw_data) != expected:
        raise InvalidInput(
            where,
            f"shape {shape} of {np.dtype(dtype).name} needs {expected} bytes of raw_data, "
            f"got {len(t.raw_data)}",
        )
    return np.frombuffer(t.raw_data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))


def tensors_from_wire(
    tensors: Iterable[common_pb2.Tensor], field: str = "input.tensors"
) -> dict[str, np.ndarray]:
    """Decode named tensors; duplicate names are an error."""
    out: dict[str, np.ndarray] = {}
    for t in tensors:
        arr = tensor_from_wire(t, field)
        if t.name in out:
            raise InvalidInput(f"{field}['{t.name}']", "appears twice; tensor names must be unique")
        out[t.name] = arr
    return out


def tensor_to_wire(name: str, array: np.ndarray) -> common_pb2.Tensor:
    """Encode one numpy array (little-endian, row-major)."""
    arr = np.asarray(array)
    if arr.dtype == object or arr.dtype.kind in "US":
        return common_pb2.Tensor(
            name=name, dtype=common_pb2.DATA_TYPE_STRING, shape=list(arr.shape),
            string_data=[str(x) for x in arr.reshape(-1)],
        )
    wire = _TO_WIRE.get(arr.dtype.name)
    if wire is None:
        arr = arr.astype(np.float32)
        wire = common_pb2.DATA_TYPE_FLOAT32
    little = arr.astype(arr.dtype.newbyteorder("<"), copy=False)
    return common_pb2.Tensor(
        name=name, dtype=wire, shape=list(arr.shape),
        raw_data=np.ascontiguousarray(little).tobytes(),
    )


def tensors_to_wire(tensors: Mapping[str, np.ndarray]) -> list[common_pb2.Tensor]:
    """Encode named arrays."""
    return [tensor_to_wire(k, v) for k, v in tensors.items()]


def turns_to_wire(turns: Sequence[TurnRecord]) -> list[common_pb2.Turn]:
    """Encode TurnRecords."""
    return [
        common_pb2.Turn(question=t.question, answer=t.answer, experts=list(t.experts),
                        created_at=t.created_at)
        for t in turns
    ]


def turns_from_wire(turns: Iterable[common_pb2.Turn]) -> list[TurnRecord]:
    """Decode turns."""
    return [TurnRecord(t.question, t.answer, tuple(t.experts), t.created_at) for t in turns]


def card_from_manifest(m: ExpertManifest) -> expert_pb2.ExpertCard:
    """The public card of a manifest (what the router and operators see)."""
    return expert_pb2.ExpertCard(
        name=m.name, version=m.version, organization=m.organization, description=m.description,
        examples=list(m.examples), input_kind=m.input_kind, runtime=m.runtime, tags=list(m.tags),
        languages=list(m.languages),
    )
