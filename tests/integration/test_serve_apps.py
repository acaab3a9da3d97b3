"""Experts on a real Ray Serve: one application per manifest, options passed through, and the
handle transport keeping the expert's own error codes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mesh.config import ExpertManifest
from mesh.errors import ExpertNotFound, InvalidInput
from mesh.serving.apps import deploy_experts
from mesh.serving.handle_transport import ServeTransport
from mesh.types import ExpertInput
from tests.support.models import iris_fields, iris_model

pytestmark = pytest.mark.slow




def _manifest(name: str, model: Path, **extra: object) -> ExpertManifest:
    return ExpertManifest.model_validate(iris_fields(model, name, **extra))


@pytest.fixture(scope="module")
def serve_cluster(loopback_only_network: None, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[list[ExpertManifest]]:
    import ray
    from ray import serve

    folder = tmp_path_factory.mktemp("models")
    model = iris_model(folder)
    manifests = [
        _manifest("iris-a", model, resources={"num_cpus": 0.25},
                  autoscaling={"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 4,
                               "upscale_delay_s": 5, "downscale_delay_s": 40}),
        _manifest("iris-b", model, resources={"num_cpus": 0.5}, max_ongoing_requests=3),
        # A second version of iris-b, deployed beside the first (a canary's set-up).
        _manifest("iris-b", model, version="2.0.0", resources={"num_cpus": 0.25}),
    ]
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             log_to_driver=False, configure_logging=False)
    serve.start(proxy_location="Disabled")
    deploy_experts(manifests, progress=lambda _: None, timeout_s=180)
    yield manifests
    serve.shutdown()
    ray.shutdown()


def test_one_application_per_expert_version_with_its_options(
    serve_cluster: list[ExpertManifest],
) -> None:
    from ray.serve.context import _get_global_client

    details = _get_global_client().get_serve_details()
    apps = details["applications"]
    assert {"iris-a@1.0.0", "iris-b@1.0.0", "iris-b@2.0.0"} <= set(apps)
    a = apps["iris-a@1.0.0"]["deployments"]["iris-a"]["deployment_config"]
    assert a["autoscaling_config"]["max_replicas"] == 3
    assert a["autoscaling_config"]["target_ongoing_requests"] == 4
    assert a["autoscaling_config"]["downscale_delay_s"] == 40
    assert a["ray_actor_options"]["num_cpus"] == 0.25
    b = apps["iris-b@1.0.0"]["deployments"]["iris-b"]["deployment_config"]
    assert b["max_ongoing_requests"] == 3 and b["ray_actor_options"]["num_cpus"] == 0.5
    b2 = apps["iris-b@2.0.0"]["deployments"]["iris-b"]["deployment_config"]
    assert b2["ray_actor_options"]["num_cpus"] == 0.25  # each version with its own options


def test_handle_transport_answers_and_keeps_error_codes(
    serve_cluster: list[ExpertManifest],
) -> None:
    transport = ServeTransport([m.key for m in serve_cluster])

    async def run() -> None:
        sample = np.array([[6.7, 3.0, 5.2, 2.3]], dtype=np.float32)  # a virginica from the data
        name = next(iter(_model_input_names(serve_cluster[0])))
        for key in ("iris-a", "iris-b@1.0.0", "iris-b@2.0.0"):  # a lone version by its name
            out = await transport.infer(key, ExpertInput(tensors={name: sample}), 30)
            assert out.tensors, out
            label = next(v for k, v in out.tensors.items() if "label" in k)
            assert int(label.reshape(-1)[0]) == 2
        with pytest.raises(ExpertNotFound):  # two versions: the bare name is ambiguous
            await transport.infer("iris-b", ExpertInput(tensors={name: sample}), 30)
        with pytest.raises(InvalidInput) as info:
            await transport.infer("iris-b@1.0.0", ExpertInput(tensors={name: np.zeros((1, 7))}),
                                  30)
        assert name in str(info.value)
        with pytest.raises(ExpertNotFound):
            await transport.infer("nope", ExpertInput(text="x"), 30)
        states = await transport.states()
        assert states["iris-a@1.0.0"].status == "HEALTHY"
        assert states["iris-a@1.0.0"].replicas >= 1 and states["iris-b@2.0.0"].replicas >= 1

    asyncio.run(run())


def _model_input_names(m: ExpertManifest) -> list[str]:
    import onnxruntime as ort

    return [i.name for i in ort.InferenceSession(m.model.path).get_inputs()]
