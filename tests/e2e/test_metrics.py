"""Scraping a running mesh (`mesh up`: Ray, Serve, the orchestrator process): the orchestrator's
/metrics shows requests by expert, organization and code, routing and expert latency, replicas
and replica-seconds, and passes Ray Serve's own ``ray_serve_*`` series through; `mesh experts`
shows replicas and cost."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mesh.proto.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "mesh" / "demo" / "manifests"
pytestmark = pytest.mark.slow

QUESTION = ("Is this breast mass malignant? mean radius 20.6, mean texture 29.3, "
            "worst area 2027, worst concave points 0.265")


class RunningMesh:
    def __init__(self, config: Path, env: dict[str, str], port: int, metrics_port: int) -> None:
        self.config, self.env = config, env
        self.address = f"127.0.0.1:{port}"
        self.metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mesh.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, cwd=REPO)

    def scrape(self) -> dict[str, list[tuple[dict[str, str], float]]]:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as resp:
            text = resp.read().decode()
        out: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out.setdefault(s.name, []).append((s.labels, s.value))
        return out


@pytest.fixture(scope="module")
def mesh(loopback_only_network: None, demo_artifacts: Path,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMesh]:
    state = tmp_path_factory.mktemp("metrics-mesh")
    port, metrics_port, gcs = free_port(), free_port(), free_port()
    config = state / "mesh.yaml"
    config.write_text(
        f"experts: [{MANIFESTS / 'breast-cancer.yaml'}, {MANIFESTS / 'digits.yaml'}]\n"
        f"state_dir: {state}\n"
        f"orchestrator: {{port: {port}, metrics_port: {metrics_port}, metrics_sample_s: 0.5}}\n"
        f"ray: {{gcs_port: {gcs}, num_cpus: 2}}\n"
    )
    env = {**os.environ, "MESH_DEMO_ARTIFACTS": str(demo_artifacts), "MESH_STATE_DIR": str(state)}
    m = RunningMesh(config, env, port, metrics_port)
    try:
        up = m.cli("up", "-c", str(config))
        assert up.returncode == 0, up.stdout + up.stderr
        yield m
    finally:
        m.cli("down", "-c", str(config), timeout=120)


def _sum(samples: dict[str, list[tuple[dict[str, str], float]]], name: str,
         **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, []) if labels.items() <= lab.items())


def test_metrics_of_a_running_mesh(mesh: RunningMesh) -> None:
    channel = grpc.insecure_channel(mesh.address)
    stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
    for _ in range(3):
        r = stub.Ask(orchestrator_pb2.AskRequest(input=common_pb2.Content(text=QUESTION)),
                     timeout=60)
        assert [p.expert for p in r.parts] == ["breast-cancer"]
    with pytest.raises(grpc.RpcError):
        stub.Ask(orchestrator_pb2.AskRequest(input=common_pb2.Content(text="")), timeout=30)
    channel.close()

    samples = mesh.scrape()
    assert _sum(samples, "mesh_expert_requests_total", expert="breast-cancer",
                organization="lakeside-hospital", code="OK") == 3
    assert _sum(samples, "mesh_asks_total", code="OK") == 3
    assert _sum(samples, "mesh_asks_total", code="INVALID_ARGUMENT") == 1
    assert _sum(samples, "mesh_route_seconds_count") == 3
    assert _sum(samples, "mesh_expert_seconds_count", expert="breast-cancer") == 3
    assert _sum(samples, "mesh_fanout_experts_sum") == 3
    assert _sum(samples, "mesh_expert_replicas", expert="digits") == 1

    # Replica-seconds grow while replicas are held; Ray exports its series every few seconds.
    # The dashboard's Ray Serve panels must query series this Ray really exports.
    dashboard = (REPO / "deploy" / "grafana" / "mesh-dashboard.json").read_text()
    wanted = set(re.findall(r"\b(ray_serve_[a-z0-9_]+)", dashboard))
    assert wanted
    deadline = time.monotonic() + 90
    while True:
        samples = mesh.scrape()
        seconds = _sum(samples, "mesh_replica_seconds_total", expert="digits", device="cpu")
        if wanted <= set(samples) and seconds > 0:
            break
        assert time.monotonic() < deadline, (
            f"replica-seconds {seconds}; missing {sorted(wanted - set(samples))}")
        time.sleep(1)
    assert _sum(samples, "mesh_expert_cost_per_request_replica_seconds",
                expert="breast-cancer") > 0


def test_mesh_experts_shows_replicas_and_cost(mesh: RunningMesh) -> None:
    out = mesh.cli("experts", "--address", mesh.address, "--by-organization", timeout=60)
    assert out.returncode == 0, out.stderr
    table, _, orgs = out.stdout.partition("\n\n")
    rows = {line.split()[0]: line.split() for line in table.splitlines()[1:]}
    # EXPERT VERSION SHARE(share role) ORGANIZATION RUNTIME DEVICE REPLICA-S REQUESTS
    # REPLICA-S/REQ REPLICAS STATUS
    row = rows["breast-cancer"]
    assert row[1:4] == ["1.0.0", "100%", "stable"]
    assert row[6] == "cpu" and float(row[7]) > 0 and int(row[8]) >= 3 and float(row[9]) > 0
    assert row[-2] == "1" and row[-1] == "HEALTHY"
    assert rows["digits"][8] == "0" and rows["digits"][9] == "-"  # no request: no cost per one
    by_org = {line.split()[0]: line.split() for line in orgs.splitlines()[1:]}
    assert by_org["lakeside-hospital"][1] == "cpu" and float(by_org["lakeside-hospital"][2]) > 0
