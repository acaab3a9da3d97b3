"""What an ONNX model's inputs look like, and the checks that turn bad tensors into InvalidInput.

A request's tensors come from outside the mesh, so every name, dtype, rank and size is checked
against the model's declared inputs before ONNX Runtime sees them: ONNX Runtime's own errors are
long, mention internal node names and would reach the client as INTERNAL instead of naming the
field that is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mesh.errors import InvalidInput

# ONNX Runtime type strings -> numpy dtypes (the ones a CPU expert meets in practice).
_ORT_DTYPES: dict[str, np.dtype[Any]] = {
    "tensor(float)": np.dtype(np.float32),
    "tensor(double)": np.dtype(np.float64),
    "tensor(float16)": np.dtype(np.float16),
    "tensor(int64)": np.dtype(np.int64),
    "tensor(int32)": np.dtype(np.int32),
    "tensor(int16)": np.dtype(np.int16),
    "tensor(int8)": np.dtype(np.int8),
    "tensor(uint8)": np.dtype(np.uint8),
    "tensor(bool)": np.dtype(np.bool_),
}

# Casts accepted without complaint: numpy's default float64 into a float32 model input is what
# almost every Python client sends, and it loses nothing a float32 model could use. Anything else
# (ints into floats, floats into ints) is more likely a wrong tensor than a convenience.
_ACCEPTED_CASTS = {
    (np.dtype(np.float64), np.dtype(np.float32)),
    (np.dtype(np.float16), np.dtype(np.float32)),
}


def tensor_field(name: str) -> str:
    """The field path an error names, e.g. ``input.tensors['image']``."""
    return f"input.tensors['{name}']"


def describe_array(value: np.ndarray) -> str:
    """``int64 [2]``: how a received tensor is shown in error messages."""
    return f"{value.dtype} [{', '.join(str(d) for d in value.shape)}]"


@dataclass(frozen=True)
class TensorSpec:
    """One declared model input: name, dtype and shape (``None`` marks a free dimension)."""

    name: str
    dtype: np.dtype[Any]
    shape: tuple[int | None, ...]

    @classmethod
    def from_node_arg(cls, arg: Any) -> TensorSpec:
        """Build from an ``onnxruntime.NodeArg`` (symbolic or missing dims become ``None``)."""
        dtype = _ORT_DTYPES.get(arg.type)
        if dtype is None:
            raise ValueError(f"input '{arg.name}' has type {arg.type}, which mesh does not feed")
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in (arg.shape or []))
        return cls(arg.name, dtype, shape)

    @property
    def batched(self) -> bool:
        """True when the first dimension is free, so rows of several requests can be stacked."""
        return len(self.shape) > 0 and self.shape[0] is None

    def describe(self) -> str:
        """``float32 [n, 30]``: the first free dimension reads as ``n``, others as ``?``."""
        dims = [
            ("n" if i == 0 else "?") if d is None else str(d) for i, d in enumerate(self.shape)
        ]
        return f"{self.dtype} [{', '.join(dims)}]"

    def check(self, value: object, field: str | None = None) -> np.ndarray:
        """Return ``value`` as this input's dtype and shape, or raise InvalidInput naming the field.

        A single row (the shape without the batch dimension) is accepted and given a batch
        dimension of one, since "classify this one image" is the common request.
        """
        field = field or tensor_field(self.name)
        if not isinstance(value, np.ndarray):
            got = type(value).__name__
            raise InvalidInput(field, f"expected a tensor {self.describe()}, got {got}")
        expected = f"expected {self.describe()}, got {describe_array(value)}"
        if value.dtype != self.dtype:
            if (value.dtype, self.dtype) not in _ACCEPTED_CASTS:
                raise InvalidInput(field, expected)
            value = value.astype(self.dtype)
        if self.batched and value.ndim == len(self.shape) - 1 and _dims_match(
            value.shape, self.shape[1:]
        ):
            value = value[np.newaxis, ...]
        if value.ndim != len(self.shape) or not _dims_match(value.shape, self.shape):
            raise InvalidInput(field, expected)
        if self.batched and value.shape[0] == 0:
            raise InvalidInput(field, f"{expected}: the tensor has no rows")
        if np.issubdtype(self.dtype, np.floating):
            bad = ~np.isfinite(value)
            if bad.any():
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                raise InvalidInput(
                    field,
                    f"contains {int(bad.sum())} non-finite value(s) (NaN or infinity), "
                    f"first at index {list(first)}",
                )
        return value


def _dims_match(actual: Sequence[int], declared: Sequence[int | None]) -> bool:
    return len(actual) == len(declared) and all(
        d is None or a == d for a, d in zip(actual, declared, strict=True)
    )


def check_tensors(
    tensors: Mapping[str, object], specs: Sequence[TensorSpec]
) -> dict[str, np.ndarray]:
    """Check a request's named tensors against all of a model's inputs.

    Unknown names are reported before missing ones: a misspelt name shows up as both, and
    "unknown tensor 'imgae'" points at the typo, where "missing 'image'" would not.
    """
    by_name = {s.name: s for s in specs}
    takes = ", ".join(f"'{s.name}' {s.describe()}" for s in specs)
    for name in tensors:
        if name not in by_name:
            raise InvalidInput(tensor_field(name), f"unknown tensor; this expert takes {takes}")
    for spec in specs:
        if spec.name not in tensors:
            raise InvalidInput(tensor_field(spec.name), f"missing; expected {spec.describe()}")
    checked = {spec.name: spec.check(tensors[spec.name]) for spec in specs}
    batched = [s for s in specs if s.batched]
    rows = {checked[s.name].shape[0] for s in batched}
    if len(rows) > 1:
        sizes = ", ".join(f"'{s.name}': {checked[s.name].shape[0]}" for s in batched)
        raise InvalidInput("input.tensors", f"inputs disagree on the number of rows ({sizes})")
    return checked
