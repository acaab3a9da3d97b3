"""Autoscaling on a real Ray Serve, through the mesh's own deploy path and orchestrator:
an autoscaling change applied to a running mesh touches no other expert (and restarts no
replica), an idle expert scales to zero, and the next request waits for the cold start and
reports it in the response's timings instead of failing.

The tests run in file order on one cluster: the change made by the first one (a short
downscale delay) is what lets the second one see the expert go to zero.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mesh.config import ExpertManifest, OrchestratorConfig
from mesh.observability.exporter import ReplicaSampler
from mesh.orchestrator.service import AskCommand, Orchestrator
from mesh.orchestrator.sessions import SessionStore
from mesh.serving.apps import deploy_experts
from mesh.serving.cluster import AUTOSCALING_DEFAULTS
from mesh.serving.handle_transport import ServeTransport
from tests.support.models import iris_fields, iris_model

pytestmark = pytest.mark.slow

FLOWER = {"X": np.array([[5.1, 3.5, 1.4, 0.2]], np.float32)}
SCALE_TO_ZERO_BOUND_S = 60.0


def _manifest(name: str, model: Path, autoscaling: dict[str, object]) -> ExpertManifest:
    return ExpertManifest.model_validate(iris_fields(
        model, name, resources={"num_cpus": 0.25}, autoscaling=autoscaling))


IDLE: dict[str, object] = {"min_replicas": 0, "max_replicas": 2, "initial_replicas": 1,
        "target_ongoing_requests": 1, "upscale_delay_s": 0, "downscale_delay_s": 300}
STEADY: dict[str, object] = {"min_replicas": 1, "max_replicas": 1}


@pytest.fixture(scope="module")
def cluster(loopback_only_network: None, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Path, list[ExpertManifest]]]:
    import ray
    from ray import serve

    for key, value in AUTOSCALING_DEFAULTS.items():
        os.environ.setdefault(key, value)
    folder = tmp_path_factory.mktemp("autoscale")
    model = iris_model(folder)
    manifests = [_manifest("iris-idle", model, IDLE), _manifest("iris-steady", model, STEADY)]
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             log_to_driver=False, configure_logging=False)
    serve.start(proxy_location="Disabled")
    deploy_experts(manifests, progress=lambda _: None, timeout_s=180)
    yield folder, manifests
    serve.shutdown()
    ray.shutdown()


def _details() -> dict[str, Any]:
    from ray.serve.context import _get_global_client

    client = _get_global_client()
    assert client is not None
    details: dict[str, Any] = client.get_serve_details()
    return details


def _replica_ids() -> dict[str, set[str]]:
    apps = _details()["applications"]
    return {name: {r["replica_id"] for d in app["deployments"].values() for r in d["replicas"]
                   if r["state"] == "RUNNING"}
            for name, app in apps.items()}


def _autoscaling(app: str) -> dict[str, object]:
    details = _details()["applications"][app]
    deployment = app.split("@")[0]  # the application is name@version, its deployment the name
    config: dict[str, object] = details["deployments"][deployment]["deployment_config"][
        "autoscaling_config"]
    return config


def test_changing_one_experts_autoscaling_leaves_every_replica_running(
    cluster: tuple[Path, list[ExpertManifest]],
) -> None:
    _, manifests = cluster
    before = _replica_ids()
    assert before["iris-idle@1.0.0"] and before["iris-steady@1.0.0"]
    changed = manifests[0].model_copy(
        update={"autoscaling": manifests[0].autoscaling.model_copy(
            update={"downscale_delay_s": 2.0})})
    # What `mesh up` does on a running mesh: every manifest again, one of them edited.
    deploy_experts([changed, manifests[1]], progress=lambda _: None, timeout_s=120)
    assert _autoscaling("iris-idle@1.0.0")["downscale_delay_s"] == 2.0
    after = _replica_ids()
    assert after["iris-steady@1.0.0"] == before["iris-steady@1.0.0"]  # the other: untouched
    assert after["iris-idle@1.0.0"] == before["iris-idle@1.0.0"]  # lightweight, no restart


def _orchestrator(folder: Path, manifests: list[ExpertManifest]) -> Orchestrator:
    sessions = SessionStore(folder / "sessions.sqlite3")
    transport = ServeTransport([m.key for m in manifests])
    return Orchestrator(manifests, transport, sessions, OrchestratorConfig(port=0,
                                                                           metrics_port=None))


def test_idle_expert_scales_to_zero_then_a_request_waits_for_its_cold_start(
    cluster: tuple[Path, list[ExpertManifest]],
) -> None:
    folder, manifests = cluster
    orchestrator = _orchestrator(folder, manifests)
    sampler = ReplicaSampler(orchestrator.metrics, orchestrator.transport.states)

    async def scenario() -> tuple[float, float, object]:
        start = time.monotonic()
        while True:
            await sampler.sample_once()
            if orchestrator.metrics.ledger.replicas("iris-idle@1.0.0") == 0:
                break
            assert time.monotonic() - start < SCALE_TO_ZERO_BOUND_S, "never scaled to zero"
            await asyncio.sleep(0.5)
        to_zero = time.monotonic() - start
        t0 = time.monotonic()
        result = await orchestrator.ask(AskCommand(tensors=FLOWER, experts=["iris-idle"]),
                                        timeout_s=60)
        return to_zero, time.monotonic() - t0, result

    to_zero, cold_s, result = asyncio.run(scenario())
    timings = result.timings  # type: ignore[attr-defined]
    print(f"scale to zero {to_zero:.1f} s, cold start {cold_s:.2f} s "
          f"(reported {timings.cold_start_ms:.0f} ms)")
    assert result.parts[0].output.tensors  # type: ignore[attr-defined]
    assert timings.cold_start_ms > 0
    assert cold_s < 30
    states = asyncio.run(orchestrator.transport.states())
    assert states["iris-steady@1.0.0"].replicas == 1  # min_replicas 1: never released
    cold = orchestrator.metrics.registry.get_sample_value(
        "mesh_cold_starts_total", {"expert": "iris-idle", "version": "1.0.0",
                                   "organization": "test-botanic-garden"})
    assert cold == 1
    orchestrator.sessions.close()
