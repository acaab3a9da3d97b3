"""The orchestrator's metrics with a real expert in-process (LocalTransport, no Ray, no socket):
requests by expert, organization and status code, latencies, fan-out, cold starts reported in
the response's timings, breaker state, and Ray's page filtered to ``ray_serve_*``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import numpy as np
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from mesh import review_model
from mesh.config import ExpertManifest, OrchestratorConfig, RouterConfig
from mesh.errors import ExpertNotFound
from mesh.experts.transport import LocalTransport
from mesh.federation.breaker import CircuitBreaker
from mesh.observability.exporter import ReplicaSampler
from mesh.observability.metrics import BreakerCollector
from mesh.observability.ray_metrics import RayServeCollector, keep_serve_lines
from mesh.orchestrator.service import AskCommand, Orchestrator
from mesh.orchestrator.sessions import SessionStore
from tests.support.models import iris_fields, iris_model

FLOWER = {"X": np.array([[5.1, 3.5, 1.4, 0.2]], np.float32)}




@pytest.fixture(scope="module")
def orchestrator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orchestrator]:
    folder = tmp_path_factory.mktemp("metrics")
    manifest = ExpertManifest.model_validate(
        iris_fields(iris_model(folder), resources={"num_cpus": 0.5}))
    sessions = SessionStore(folder / "sessions.sqlite3")
    yield Orchestrator([manifest], LocalTransport([manifest]), sessions,
                       OrchestratorConfig(port=0, metrics_port=None))
    sessions.close()


def _families(o: Orchestrator) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = generate_latest(o.metrics.registry).decode()
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def _value(o: Orchestrator, name: str, **labels: str) -> float:
    return sum(v for lab, v in _families(o).get(name, []) if labels.items() <= lab.items())


def _ask(o: Orchestrator, **kwargs: object) -> object:
    return asyncio.run(o.ask(AskCommand(**kwargs)))  # type: ignore[arg-type]


def test_a_request_is_counted_by_expert_organization_and_code(orchestrator: Orchestrator) -> None:
    before = _value(orchestrator, "mesh_expert_requests_total", expert="iris", code="OK")
    _ask(orchestrator, tensors=FLOWER, experts=["iris"])
    assert _value(orchestrator, "mesh_expert_requests_total", expert="iris",
                  organization="test-botanic-garden", code="OK") == before + 1
    assert _value(orchestrator, "mesh_asks_total", code="OK") >= 1
    assert _value(orchestrator, "mesh_expert_seconds_count", expert="iris") >= 1
    assert _value(orchestrator, "mesh_fanout_experts_count") >= 1
    assert _value(orchestrator, "mesh_route_seconds_count") >= 1


def test_a_failed_request_is_counted_with_its_status(orchestrator: Orchestrator) -> None:
    with pytest.raises(ExpertNotFound):
        _ask(orchestrator, tensors=FLOWER, experts=["no-such-expert"])
    assert _value(orchestrator, "mesh_asks_total", code="NOT_FOUND") == 1


def test_an_expert_at_zero_replicas_is_a_cold_start_in_timings_and_metrics(
    orchestrator: Orchestrator,
) -> None:
    ledger = orchestrator.metrics.ledger
    ledger.sample(time.monotonic(), {"iris@1.0.0": 0})
    result = _ask(orchestrator, tensors=FLOWER, experts=["iris"])
    assert result.timings.cold_start_ms > 0  # type: ignore[attr-defined]
    assert _value(orchestrator, "mesh_cold_starts_total", expert="iris") == 1
    # Answered since the sample: it has a replica now, though no sample says so yet.
    warm = _ask(orchestrator, tensors=FLOWER, experts=["iris"])
    assert warm.timings.cold_start_ms == 0  # type: ignore[attr-defined]
    ledger.sample(time.monotonic(), {"iris@1.0.0": 1})
    warm = _ask(orchestrator, tensors=FLOWER, experts=["iris"])
    assert warm.timings.cold_start_ms == 0  # type: ignore[attr-defined]
    assert _value(orchestrator, "mesh_cold_starts_total", expert="iris") == 1


def test_sampler_feeds_replica_seconds_and_cost_per_request(orchestrator: Orchestrator) -> None:
    now = [time.monotonic() + 1.0]
    sampler = ReplicaSampler(orchestrator.metrics, orchestrator.transport.states,
                             clock=lambda: now[0])

    async def two_samples() -> None:
        await sampler.sample_once()
        now[0] += 4.0
        await sampler.sample_once()

    asyncio.run(two_samples())
    assert _value(orchestrator, "mesh_expert_replicas", expert="iris") == 1
    seconds = _value(orchestrator, "mesh_replica_seconds_total", expert="iris", device="cpu")
    assert seconds >= 4.0
    row = orchestrator.costs()["iris@1.0.0"]
    assert row.requests >= 1
    assert row.cost_per_request == pytest.approx(row.replica_seconds / row.requests)


def test_breaker_state_is_a_number_per_node() -> None:
    breaker = CircuitBreaker()
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(BreakerCollector(lambda: [("10.0.0.7:50061", breaker.state.name)]))
    assert registry.get_sample_value("mesh_breaker_state", {"node": "10.0.0.7:50061"}) == 0
    breaker.trip()
    assert registry.get_sample_value("mesh_breaker_state", {"node": "10.0.0.7:50061"}) == 2


RAY_PAGE = """# HELP ray_serve_num_deployment_http_error_requests errors
# TYPE ray_serve_num_deployment_http_error_requests_total counter
ray_serve_num_deployment_http_error_requests_total{deployment="iris"} 0.0
# HELP ray_object_store_memory memory
# TYPE ray_object_store_memory gauge
ray_object_store_memory{Location="MMAP_SHM"} 1.0
# HELP ray_serve_deployment_queued_queries queued
# TYPE ray_serve_deployment_queued_queries gauge
ray_serve_deployment_queued_queries{deployment="iris"} 3.0
"""


def test_only_ray_serve_series_pass_through() -> None:
    kept = keep_serve_lines(RAY_PAGE)
    assert "ray_object_store_memory" not in kept
    assert "ray_serve_deployment_queued_queries{" in kept
    names = {f.name for f in text_string_to_metric_families(kept)}
    assert len(names) == 2
    assert all(n.startswith("ray_serve_") for n in names)


def test_ray_collector_skips_a_node_that_does_not_answer() -> None:
    collector = RayServeCollector(urls=lambda: ["http://127.0.0.1:9/metrics"], timeout_s=0.5)
    assert list(collector.collect()) == []


@pytest.mark.skipif(not review_model.available(), reason="the review model's packages are "
                    "not installed (pip install 'mesh[review]')")
def test_reviewed_requests_are_counted(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With a review band covering every score, each routed text request is reviewed once."""
    folder = tmp_path_factory.mktemp("reviews")
    manifest = ExpertManifest.model_validate(iris_fields(iris_model(folder)))
    sessions = SessionStore(folder / "sessions.sqlite3")
    try:
        o = Orchestrator([manifest], LocalTransport([manifest]), sessions,
                         OrchestratorConfig(port=0, metrics_port=None),
                         RouterConfig(review_band=1.0))
        assert o.router.wait_for_review(300)
        before = _value(o, "mesh_route_reviews_total")
        _ask(o, text="Which iris species has petals 1.4 cm long and 0.2 cm wide?", tensors=FLOWER)
        _ask(o, tensors=FLOWER, experts=["iris"])  # named expert: not routed, not reviewed
        assert _value(o, "mesh_route_reviews_total") == before + 1
    finally:
        sessions.close()
