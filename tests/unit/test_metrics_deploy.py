"""deploy/prometheus and deploy/grafana stay in step with the code: the scrape target is the
orchestrator's default metrics port, and every mesh_* series a rule or a panel queries is one
the orchestrator really exports (a renamed metric breaks this test, not a dashboard)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import generate_latest

from mesh.config import OrchestratorConfig
from mesh.observability.cost import CostLedger, ExpertPrice
from mesh.observability.metrics import BreakerCollector, MeshMetrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERIES = re.compile(r"\b((?:mesh|ray_serve)_[a-z0-9_]+)\b")


def _exported() -> set[str]:
    """Sample names of a MeshMetrics with every series touched once."""
    metrics = MeshMetrics(CostLedger({"iris@1.0.0": ExpertPrice("garden", 1.0, 0.0)}))
    metrics.add_collector(BreakerCollector(lambda: [("node:1", "CLOSED")]))
    metrics.ledger.sample(0.0, {"iris@1.0.0": 1})
    metrics.ledger.sample(1.0, {"iris@1.0.0": 1})
    metrics.record_expert_call("iris@1.0.0", "garden", "OK", 0.01, cold=True)
    metrics.set_replicas({"iris@1.0.0": 1})
    metrics.route_seconds.observe(0.001)
    metrics.fanout.observe(1)
    metrics.asks.labels("OK").inc()
    metrics.tenant_requests.labels("clinic", "admitted").inc()
    metrics.tenant_in_flight.labels("clinic").set(0)
    text = generate_latest(metrics.registry).decode()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines()
            if line and not line.startswith("#")}


def _queries() -> list[str]:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((DEPLOY / "grafana" / "mesh-dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return exprs


def test_scrape_target_is_the_orchestrators_metrics_port() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "mesh-orchestrator")
    target = job["static_configs"][0]["targets"][0]
    assert target == f"127.0.0.1:{OrchestratorConfig().metrics_port}"
    assert (DEPLOY / "prometheus" / config["rule_files"][0]).is_file()


def test_every_mesh_series_queried_is_exported() -> None:
    exported = _exported()
    queried = {name for e in _queries() for name in SERIES.findall(e)}
    mesh_names = {n for n in queried if n.startswith("mesh_")}
    assert mesh_names, "no mesh_* series queried"
    assert mesh_names <= exported, sorted(mesh_names - exported)


def test_dashboard_panels_have_unique_ids_and_a_datasource() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "mesh-dashboard.json").read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["datasource"]["uid"] == "${datasource}" for p in dashboard["panels"])
