"""The Open Inference Protocol code in mesh/proto/oip/v2 is fresh and its proto documented,
and numpy arrays survive the trip through the protocol's tensors for every data type."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from mesh.errors import InvalidInput
from mesh.experts.oip.tensors import build_request, datatype_of, read_response
from mesh.proto.oip.v2 import grpc_predict_v2_pb2 as pb

REPO = Path(__file__).resolve().parents[2]
PROTOS = REPO / "protos" / "oip" / "v2"


def _gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_protos", REPO / "scripts" / "gen_protos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_protos"] = module
    spec.loader.exec_module(module)
    return module


def test_generated_oip_code_matches_protos(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (dev extra) regenerates the stubs")
    gen = _gen()
    gen.generate(tmp_path, gen.OIP)
    committed = REPO / "mesh" / "proto" / "oip" / "v2"
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    current = {p.name: p.read_text() for p in committed.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(current), "files differ: run `make protos`"
    stale = [name for name in fresh if fresh[name] != current[name]]
    assert not stale, f"out of date with protos/oip/v2: {stale}; run `make protos`"


def test_every_oip_message_field_and_rpc_is_documented() -> None:
    protos = sorted(PROTOS.glob("*.proto"))
    assert protos
    for proto in protos:
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            starts = ("message ", "service ", "enum ", "rpc ", "oneof ")
            is_field = (stripped.endswith(";") and "=" in stripped
                        and not stripped.startswith(("option", "syntax", "package", "import")))
            if stripped.startswith(starts) or is_field:
                above = lines[i - 1].strip() if i else ""
                assert above.startswith("//"), f"{proto.name}:{i + 1} has no comment: {stripped}"


def test_method_paths_are_the_specifications() -> None:
    """Servers answer only the specification's paths: the names must not follow mesh's rules."""
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert service.full_name == "inference.GRPCInferenceService"
    assert {m.name for m in service.methods} == {
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer"}


def _echo(request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    """What a server sends back when its outputs are its inputs (typed or raw, as it got them)."""
    response = pb.ModelInferResponse(model_name=request.model_name)
    for tensor in request.inputs:
        response.outputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape,
                             contents=tensor.contents)
    response.raw_output_contents.extend(request.raw_input_contents)
    return response


@pytest.mark.parametrize(
    "array",
    [
        np.array([[True, False]]),
        np.array([1, -2, 3], dtype=np.int8),
        np.array([[1, 2], [3, 4]], dtype=np.int32),
        np.array([2**40, -5], dtype=np.int64),
        np.array([7, 250], dtype=np.uint8),
        np.array([2**60], dtype=np.uint64),
        np.array([[0.5, 1.5, 2.5]], dtype=np.float32),
        np.array([1e-300, 3.25], dtype=np.float64),
        np.array([b"pod", b"rust"], dtype=object),
    ],
)
def test_typed_contents_round_trip(array: np.ndarray) -> None:
    request = build_request("m", "", {"x": array}, [])
    assert not request.raw_input_contents
    back = read_response(_echo(request))["x"]
    assert back.shape == array.shape and back.tolist() == array.tolist()
    assert back.dtype == (array.dtype if array.dtype != object else np.dtype(object))


def test_fp16_travels_raw_and_takes_its_neighbours_along() -> None:
    """FP16 has no typed list; the protocol forbids mixing raw and typed inputs."""
    half = np.array([[0.5, -2.0]], dtype=np.float16)
    words = np.array(["wheat", "rye"])
    request = build_request("m", "1", {"h": half, "w": words}, ["out"])
    assert len(request.raw_input_contents) == 2
    assert all(not t.HasField("contents") for t in request.inputs)
    assert [o.name for o in request.outputs] == ["out"]
    back = read_response(_echo(request))
    assert back["h"].dtype == np.float16 and back["h"].tolist() == half.tolist()
    assert back["w"].tolist() == [b"wheat", b"rye"]


def test_types_without_a_protocol_name() -> None:
    assert datatype_of(np.array(["a"])) == "BYTES"
    with pytest.raises(InvalidInput, match=r"input.tensors\['c'\]"):
        build_request("m", "", {"c": np.array([1 + 2j])}, [])
