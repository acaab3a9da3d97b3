"""Tensors on the wire: round trips, and malformed tensors rejected with the field named."""

from __future__ import annotations

import numpy as np
import pytest

from mesh.errors import ConfigError, ExpertNotFound, InvalidInput, ModelLoadError
from mesh.proto.v1 import common_pb2
from mesh.wire import tensor_from_wire, tensor_to_wire, tensors_from_wire


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "bool"])
def test_round_trip(dtype: str) -> None:
    arr = (np.arange(12).reshape(3, 4) % 2).astype(dtype)
    back = tensor_from_wire(tensor_to_wire("x", arr), "input.tensors")
    assert back.dtype == arr.dtype and back.shape == (3, 4)
    np.testing.assert_array_equal(back, arr)


def test_strings_round_trip() -> None:
    arr = np.array([["a", "b"], ["c", "d"]], dtype=object)
    back = tensor_from_wire(tensor_to_wire("s", arr), "input.tensors")
    assert back.tolist() == [["a", "b"], ["c", "d"]]


@pytest.mark.parametrize(
    ("tensor", "words"),
    [
        (common_pb2.Tensor(name="x", dtype=common_pb2.DATA_TYPE_FLOAT32, shape=[2, 3],
                           raw_data=b"\0" * 20), "needs 24 bytes of raw_data, got 20"),
        (common_pb2.Tensor(name="x", shape=[1], raw_data=b"\0" * 4), "dtype 0 is not set"),
        (common_pb2.Tensor(name="x", dtype=common_pb2.DATA_TYPE_FLOAT32, shape=[-1],
                           raw_data=b""), "negative dimension"),
        (common_pb2.Tensor(dtype=common_pb2.DATA_TYPE_FLOAT32, shape=[1], raw_data=b"\0" * 4),
         "has no name"),
        (common_pb2.Tensor(name="x", dtype=common_pb2.DATA_TYPE_STRING, shape=[3],
                           string_data=["a"]), "needs 3 strings"),
        (common_pb2.Tensor(name="x", dtype=common_pb2.DATA_TYPE_FLOAT32,
                           shape=[100000, 100000, 100]), "elements, over"),
    ],
)
def test_malformed_tensor_names_the_field(tensor: common_pb2.Tensor, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        tensor_from_wire(tensor, "input.tensors")
    assert words in str(info.value)
    assert str(info.value).startswith("input.tensors")


def test_duplicate_names_rejected() -> None:
    t = tensor_to_wire("x", np.zeros(2, dtype=np.float32))
    with pytest.raises(InvalidInput, match="appears twice"):
        tensors_from_wire([t, t])


@pytest.mark.parametrize(
    "err",
    [
        InvalidInput("input.tensors['x']", "bad shape"),
        ExpertNotFound("x", ["a", "b"]),
        ModelLoadError("m.onnx", "gone"),
        ConfigError("f.yaml", [("a", "b", "c")]),
    ],
)
def test_errors_survive_pickling(err: Exception) -> None:
    """Errors cross Ray's serializer from replicas to the orchestrator as themselves."""
    import pickle

    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err) and str(back) == str(err)
    assert back.__dict__ == err.__dict__


def test_wire_messages_pickle() -> None:
    """Serve's gRPC proxy pickles messages to its replicas: the generated module must import."""
    import pickle

    from mesh.proto.v1 import orchestrator_pb2

    req = orchestrator_pb2.AskRequest(input=common_pb2.Content(text="hi"), session_id="s")
    assert pickle.loads(pickle.dumps(req)) == req
