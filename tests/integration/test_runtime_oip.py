"""The ``oip`` runtime against a real Seldon MLServer (its own virtual environment) serving a
scikit-learn iris model on loopback: answers, requested outputs, errors, load failures, health,
and the expert behind the orchestrator over gRPC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from mesh.config import ExpertManifest
from mesh.errors import ExpertUnavailable, InvalidInput, MeshError, ModelLoadError
from mesh.experts import build_expert
from mesh.experts.oip import OipExpert
from mesh.experts.transport import LocalTransport
from mesh.proto.v1 import common_pb2, orchestrator_pb2
from mesh.types import ExpertInput
from mesh.wire import tensor_from_wire, tensor_to_wire
from tests.support.mlserver import RunningMLServer, mlserver_venv, running_mlserver
from tests.support.models import IRIS_CARD
from tests.support.orchestrator import orchestrator_stub

pytestmark = pytest.mark.slow  # starts MLServer (its own process, ~6 s) twice

ROWS = np.array([[6.7, 3.0, 5.2, 2.3], [5.1, 3.5, 1.4, 0.2]])  # a virginica, a setosa


@pytest.fixture(scope="module")
def mlserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMLServer]:
    venv = mlserver_venv()
    if venv is None:
        pytest.skip("MLServer's own environment .venv-mlserver is absent: build it with "
                    "`make mlserver-venv` (or set MESH_MLSERVER_VENV)")
    with running_mlserver(tmp_path_factory.mktemp("mlserver"), venv) as server:
        yield server


def manifest(target: str, **model: Any) -> ExpertManifest:
    return ExpertManifest.model_validate({
        "name": "iris", **IRIS_CARD, "runtime": "oip",
        "model": {"target": target, "model_name": "iris", **model},
    })


@pytest.fixture(scope="module")
def expert(mlserver: RunningMLServer) -> OipExpert:
    e = build_expert(manifest(mlserver.target))
    assert isinstance(e, OipExpert)
    e.load()
    return e


def test_answers_tensors_with_a_summary(expert: OipExpert) -> None:
    out = expert.infer(ExpertInput(tensors={"features": ROWS}))
    assert out.tensors["predict"].reshape(-1).tolist() == [2, 0]
    assert out.text == "predict: [2, 0]"
    assert out.metadata["model"] == "iris" and out.metadata["model_version"] == "v1"


def test_requested_outputs(mlserver: RunningMLServer) -> None:
    e = build_expert(manifest(mlserver.target, outputs=["predict_proba"]))
    out = e.infer(ExpertInput(tensors={"features": ROWS}))
    proba = out.tensors["predict_proba"]
    assert proba.shape == (2, 3) and np.allclose(proba.sum(axis=1), 1.0)
    assert proba.argmax(axis=1).tolist() == [2, 0]


def test_bad_requests_name_the_field(expert: OipExpert) -> None:
    with pytest.raises(InvalidInput, match=r"input.tensors\['petals'\].*\['features'\]"):
        expert.infer(ExpertInput(tensors={"petals": ROWS}))
    with pytest.raises(InvalidInput, match=r"takes tensors: features \(FP64\)"):
        expert.infer(ExpertInput(text="a flower with long petals"))
    with pytest.raises(MeshError, match=r"inference server 127\.0\.0\.1"):
        expert.infer(ExpertInput(tensors={"features": np.zeros((1, 7))}))


def test_load_errors_name_the_model_and_cause(mlserver: RunningMLServer) -> None:
    with pytest.raises(ModelLoadError, match=r"'tulip at 127.0.0.1:\d+'.*not found"):
        build_expert(manifest(mlserver.target, model_name="tulip")).load()
    with pytest.raises(ModelLoadError, match="cannot reach"):
        build_expert(manifest("127.0.0.1:9")).load()


def test_health_and_orchestrator_path(
    mlserver: RunningMLServer, expert: OipExpert, tmp_path: Path
) -> None:
    expert.check_health()
    m = manifest(mlserver.target)
    with orchestrator_stub([m], LocalTransport([m]), tmp_path) as stub:
        request = orchestrator_pb2.AskRequest(
            input=common_pb2.Content(tensors=[tensor_to_wire("features", ROWS)]),
            experts=["iris"],
        )
        reply = stub.Ask(request, timeout=30)
        part = reply.parts[0]
        assert part.expert == "iris" and part.organization == "test-botanic-garden"
        labels = {t.name: tensor_from_wire(t, t.name) for t in part.output.tensors}["predict"]
        assert labels.reshape(-1).tolist() == [2, 0]
        bad = orchestrator_pb2.AskRequest(
            input=common_pb2.Content(tensors=[tensor_to_wire("petals", ROWS)]), experts=["iris"]
        )
        with pytest.raises(grpc.RpcError) as info:
            stub.Ask(bad, timeout=30)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_health_fails_when_the_server_stops(tmp_path: Path) -> None:
    """Last on purpose: a server of its own, stopped under a loaded expert."""
    venv = mlserver_venv()
    if venv is None:
        pytest.skip("MLServer's own environment .venv-mlserver is absent")
    with running_mlserver(tmp_path, venv) as server:
        e = build_expert(manifest(server.target))
        e.load()
        e.check_health()
        server.process.terminate()
        server.process.wait(15)
        with pytest.raises(ExpertUnavailable, match="cannot reach"):
            e.check_health()
