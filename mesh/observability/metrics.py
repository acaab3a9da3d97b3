"""The orchestrator's Prometheus metrics, in a registry of their own.

A registry per ``MeshMetrics`` (not prometheus_client's global one) so two orchestrators in one
test process never collide, and so /metrics shows exactly the mesh's series plus the ones the
collectors below add on each scrape:

* ``mesh_replica_seconds_total`` and ``mesh_expert_cost_per_request_replica_seconds`` come from
  the ``CostLedger`` (mesh.observability.cost), read at scrape time so they are never stale;
* ``mesh_breaker_state`` reads each partner node's circuit breaker through the transport;
* ``ray_serve_*`` are Ray Serve's own series, passed through from Ray's metrics export port
  (mesh.observability.ray_metrics), so one scrape target shows both sides of a hop.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from mesh.observability.cost import CostLedger
from mesh.types import expert_name, key_version

# Seconds: a route is ~1-5 ms, an expert call ~5 ms warm and ~2 s from zero replicas.
_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_SLOW = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_COLD = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0)

# Breaker states as numbers a dashboard can threshold on: 0 healthy, 2 banned.
BREAKER_VALUES = {"CLOSED": 0.0, "HALF_OPEN": 1.0, "OPEN": 2.0}


class MeshMetrics:
    """Every series the orchestrator records; one instance per orchestrator process."""

    def __init__(self, ledger: CostLedger | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.ledger = ledger or CostLedger({})
        r = self.registry
        self.asks = Counter(
            "mesh_asks", "Ask/AskStream calls by final gRPC status code.", ["code"], registry=r)
        self.requests = Counter(
            "mesh_expert_requests",
            "Calls to experts by expert, version, organization and gRPC status code.",
            ["expert", "version", "organization", "code"], registry=r)
        self.route_seconds = Histogram(
            "mesh_route_seconds", "Time spent routing one request.", buckets=_FAST, registry=r)
        self.route_reviews = Counter(
            "mesh_route_reviews",
            "Requests the review model decided again because the first model was unsure "
            "(mesh.router.review): its share of mesh_route_seconds_count is the review's cost.",
            registry=r)
        self.expert_seconds = Histogram(
            "mesh_expert_seconds", "Time one expert took to answer, seen by the orchestrator.",
            ["expert", "version", "organization"], buckets=_SLOW, registry=r)
        self.fanout = Histogram(
            "mesh_fanout_experts", "Experts called for one request (0: out of scope).",
            buckets=(0, 1, 2, 3, 4, 5, 8), registry=r)
        self.cold_starts = Counter(
            "mesh_cold_starts", "Requests that found their expert at zero replicas.",
            ["expert", "version", "organization"], registry=r)
        self.cold_start_seconds = Histogram(
            "mesh_cold_start_seconds",
            "Latency of expert calls that started from zero replicas (includes the cold start).",
            ["expert", "version"], buckets=_COLD, registry=r)
        self.replicas = Gauge(
            "mesh_expert_replicas", "Replicas running per expert version at the last sample.",
            ["expert", "version", "organization"], registry=r)
        self.tenant_requests = Counter(
            "mesh_tenant_requests",
            "Calls by tenant and outcome: admitted, throttled (over its rate or concurrency "
            "quota: RESOURCE_EXHAUSTED), denied (an expert outside its allowed set); calls "
            "without a valid credential count under tenant \"\" as unauthenticated.",
            ["tenant", "outcome"], registry=r)
        self.tenant_in_flight = Gauge(
            "mesh_tenant_in_flight", "Admitted calls of a tenant in flight in this process.",
            ["tenant"], registry=r)
        r.register(_LedgerCollector(self.ledger))

    def add_collector(self, collector: Collector) -> None:
        """Register a scrape-time collector (breakers, Ray Serve's pass-through)."""
        self.registry.register(collector)

    def record_expert_call(self, key: str, organization: str, code: str, seconds: float,
                           cold: bool) -> None:
        """One call to an expert version (``key``, name@version); ``cold`` when it found the
        version at zero replicas."""
        expert, version = expert_name(key), key_version(key)
        self.requests.labels(expert, version, organization, code).inc()
        self.expert_seconds.labels(expert, version, organization).observe(seconds)
        self.ledger.count_request(key)
        if cold:
            self.cold_starts.labels(expert, version, organization).inc()
            self.cold_start_seconds.labels(expert, version).observe(seconds)

    def set_replicas(self, counts: dict[str, int]) -> None:
        """Replicas per expert version (keys name@version)."""
        for key, n in counts.items():
            self.replicas.labels(expert_name(key), key_version(key),
                                 self.ledger.organization(key)).set(n)


class _LedgerCollector(Collector):
    """Replica-seconds and cost per request, read from the ledger at scrape time."""

    def __init__(self, ledger: CostLedger) -> None:
        self.ledger = ledger

    def collect(self) -> Iterable[Metric]:
        seconds = CounterMetricFamily(
            "mesh_replica_seconds",
            "Replica-seconds held per expert version and organization; device is cpu or gpu.",
            labels=["expert", "version", "organization", "device"])
        cost = GaugeMetricFamily(
            "mesh_expert_cost_per_request_replica_seconds",
            "Replica-seconds per request answered, since the orchestrator started.",
            labels=["expert", "version", "organization", "device"])
        for row in self.ledger.rows():
            labels = [expert_name(row.expert), key_version(row.expert), row.organization,
                      row.device]
            seconds.add_metric(labels, row.replica_seconds)
            if row.requests:
                cost.add_metric(labels, row.cost_per_request)
        yield seconds
        yield cost


class BreakerCollector(Collector):
    """``mesh_breaker_state{node}`` from whatever ``nodes`` returns: (address, state name)."""

    def __init__(self, nodes: Callable[[], Iterable[tuple[str, str]]]) -> None:
        self.nodes = nodes

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "mesh_breaker_state",
            "Circuit breaker of each partner node: 0 closed, 1 half-open, 2 open.",
            labels=["node"])
        for address, state in self.nodes():
            family.add_metric([address], BREAKER_VALUES.get(state, 2.0))
        yield family


def breaker_nodes(transport: Any) -> Callable[[], list[tuple[str, str]]]:
    """Reads breaker states from a federated hub's transport (``CompositeTransport.remote``,
    a ``RemoteTransport``); a transport without partners reports none."""

    def read() -> list[tuple[str, str]]:
        remote = getattr(transport, "remote", None)
        if remote is None:
            return []
        seen: dict[str, str] = {}
        for expert in remote.experts():
            try:
                node = remote.node_of(expert)
            except Exception:  # removed between the two calls
                continue
            seen[node.address] = node.breaker.state.name
        return sorted(seen.items())

    return read
