"""The chart's serveConfigV2 deployed on a real Ray Serve, the way KubeRay deploys it (the
dashboard's PUT /api/serve/applications/ handler: serve start with the config's proxy options,
then ``deploy_apps``): Serve imports mesh.serving.builder, builds every expert, applies the
chart's overrides, and the orchestrator's handle transport reaches each expert version by its
key (name@version)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mesh.serving.apps import wait_running
from mesh.serving.handle_transport import ServeTransport
from mesh.types import ExpertInput
from tests.conftest import free_port
from tests.helm.conftest import Doc, serve_config
from tests.support.models import iris_fields, iris_model

pytestmark = pytest.mark.slow

Render = Callable[..., list[Doc]]


def _iris_model(folder: Path) -> tuple[Path, str]:
    """A real model (logistic regression on iris, via skl2onnx) and its input's name."""
    import onnx

    path = iris_model(folder)
    return path, onnx.load(str(path)).graph.input[0].name


def _manifest(name: str, model: Path) -> dict[str, Any]:
    return iris_fields(model, name, resources={"num_cpus": 0.25})


@pytest.fixture(scope="module")
def deployed(loopback_only_network: None, render: Render,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Doc, str]]:
    import ray
    from ray import serve
    from ray.serve.context import _get_global_client
    from ray.serve.schema import ServeDeploySchema

    folder = tmp_path_factory.mktemp("helm-serve")
    model, input_name = _iris_model(folder)
    values = {
        "experts": [
            {"name": "iris-a", "manifest": _manifest("iris-a", model),
             "autoscaling": {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 4,
                             "downscale_delay_s": 45}},
            {"name": "iris-b", "manifest": _manifest("iris-b", model),
             "resources": {"num_cpus": 0.5}, "max_ongoing_requests": 3},
        ],
        "ray": {"servePort": free_port()},
    }
    values_file = folder / "values.yaml"
    values_file.write_text(yaml.safe_dump(values))
    config = ServeDeploySchema.model_validate(serve_config(render(values_file)))

    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             log_to_driver=False, configure_logging=False)
    try:
        serve.start(http_options=config.http_options.model_dump(),
                    proxy_location=config.proxy_location)
        _get_global_client().deploy_apps(config)
        wait_running(["iris-a@1.0.0", "iris-b@1.0.0"], progress=lambda _: None, timeout_s=180)
        yield _get_global_client().get_serve_details(), input_name
    finally:
        serve.shutdown()
        ray.shutdown()


def test_chart_overrides_reach_serve(deployed: tuple[Doc, str]) -> None:
    details, _ = deployed
    a = details["applications"]["iris-a@1.0.0"]["deployments"]["iris-a"]["deployment_config"]
    assert a["autoscaling_config"]["max_replicas"] == 3
    assert a["autoscaling_config"]["target_ongoing_requests"] == 4
    assert a["autoscaling_config"]["downscale_delay_s"] == 45
    assert a["ray_actor_options"]["num_cpus"] == 0.25  # the inline manifest's own block
    b = details["applications"]["iris-b@1.0.0"]["deployments"]["iris-b"]["deployment_config"]
    assert b["ray_actor_options"]["num_cpus"] == 0.5  # the values' override
    assert b["max_ongoing_requests"] == 3


def test_orchestrator_transport_reaches_experts_by_name(deployed: tuple[Doc, str]) -> None:
    _, input_name = deployed
    transport = ServeTransport(["iris-a@1.0.0", "iris-b@1.0.0"])
    sample = np.array([[6.7, 3.0, 5.2, 2.3]], dtype=np.float32)  # a virginica from the data

    async def run() -> None:
        for name in ("iris-a", "iris-b@1.0.0"):  # a bare name finds its only version
            out = await transport.infer(name, ExpertInput(tensors={input_name: sample}), 30)
            label = next(v for k, v in out.tensors.items() if "label" in k)
            assert int(label.reshape(-1)[0]) == 2

    asyncio.run(run())
