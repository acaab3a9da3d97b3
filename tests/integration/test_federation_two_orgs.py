"""Two organizations as separate processes on loopback: the hub (`mesh orchestrator`) and the
agricultural institute's node (`mesh node`), identities made with the real commands. Experts run
in-process here (`--local`); tests/e2e/test_two_orgs.py runs the same scenario on two Ray
clusters. Shown: a routed answer from the partner, the CLI refusing a wrong certificate, the
node SIGKILLed under bounded load (no request past its deadline, failures only inside the kill
window, recovery after restart), and the hub restarted with its registry intact."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from mesh.proto.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "mesh" / "demo" / "manifests"
AGRI = "prairie-agri-institute"
QUESTION = "Which barley variety yields best at Morris?"
LOCAL_QUESTION = "How do for loops work in Python?"
pytestmark = pytest.mark.slow


@dataclass
class TwoOrgs:
    """Files, ports and processes of one hub and one partner node on this machine."""

    root: Path
    env: dict[str, str]
    ray: bool
    hub_port: int = field(default_factory=free_port)
    registry_port: int = field(default_factory=free_port)
    node_port: int = field(default_factory=free_port)
    node_health_port: int = field(default_factory=free_port)
    hub: subprocess.Popen[bytes] | None = None
    node: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mesh.cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def setup(self) -> None:
        """The identities, exactly as the README's walk-through makes them."""
        r = self.root
        steps = [
            ("ca", "init", "--dir", "ca", "--name", "two-orgs"),
            ("keys", "init", "--organization", "hub-org", "--dir", "hub-keys"),
            ("keys", "init", "--organization", AGRI, "--dir", "agri-keys"),
            ("ca", "issue", "--dir", "ca", "--csr", "hub-keys/tls.csr", "--role", "hub",
             "--out", "hub-keys/tls.crt"),
            ("ca", "issue", "--dir", "ca", "--csr", "agri-keys/tls.csr", "--role", "node",
             "--organization", AGRI, "--out", "agri-keys/tls.crt"),
        ]
        for step in steps:
            done = self.cli(*step)
            assert done.returncode == 0, done.stdout + done.stderr
        gcs_hub, gcs_node = free_port(), free_port()
        (r / "hub.yaml").write_text(
            f"experts: [{MANIFESTS / 'breast-cancer.yaml'}, {MANIFESTS / 'python-docs.yaml'}]\n"
            f"state_dir: {r / 'hub-state'}\n"
            f"orchestrator: {{port: {self.hub_port}}}\n"
            f"ray: {{gcs_port: {gcs_hub}, num_cpus: 2}}\n"
            f"federation: {{port: {self.registry_port}, tls_cert: {r / 'hub-keys/tls.crt'}, "
            f"tls_key: {r / 'hub-keys/tls.key'}, tls_ca: {r / 'ca/ca.crt'}, "
            "heartbeat_interval_s: 0.5, heartbeat_ttl_s: 1.5}\n")
        (r / "node.yaml").write_text(
            f"experts: [{MANIFESTS / 'crop-yield.yaml'}]\n"
            f"state_dir: {r / 'node-state'}\n"
            f"orchestrator: {{port: {self.node_port}}}\n"
            f"ray: {{gcs_port: {gcs_node}, num_cpus: 2}}\n")
        done = self.cli("trust", "add", AGRI, "--public-key", "agri-keys/org.pub",
                        "-c", "hub.yaml")
        assert done.returncode == 0, done.stderr

    def partner_flags(self, keys: str = "agri-keys") -> list[str]:
        return ["--hub", f"127.0.0.1:{self.registry_port}", "--organization", AGRI,
                "--advertise", f"127.0.0.1:{self.node_port}",
                "--signing-key", f"{keys}/org.key", "--tls-cert", f"{keys}/tls.crt",
                "--tls-key", f"{keys}/tls.key", "--tls-ca", "ca/ca.crt"]

    def _spawn(self, args: list[str], log: str) -> subprocess.Popen[bytes]:
        out = open(self.root / log, "ab")  # noqa: SIM115 - the child owns it
        return subprocess.Popen([sys.executable, "-m", "mesh.cli", *args], env=self.env,
                                cwd=self.root, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def start_hub(self) -> None:
        if self.ray:
            up = self.cli("up", "-c", "hub.yaml", timeout=400)
            assert up.returncode == 0, up.stdout + up.stderr
            return
        self.hub = self._spawn(["orchestrator", "-c", "hub.yaml", "--local"], "hub.log")
        self.wait_hub()

    def stop_hub(self) -> None:
        if self.ray:
            # Only the orchestrator process: the hub's Ray cluster and experts stay up.
            import json
            pid = json.loads((self.root / "hub-state" / "run.json").read_text())[
                "orchestrator_pid"]
            os.kill(pid, signal.SIGTERM)
            _wait_gone(pid, 20)
            return
        assert self.hub is not None
        self.hub.send_signal(signal.SIGTERM)
        self.hub.wait(20)

    def start_node(self) -> None:
        extra = [] if self.ray else ["--local"]
        self.node = self._spawn(["node", "-c", "node.yaml", *extra, *self.partner_flags(),
                                 "--health-port", str(self.node_health_port)], "node.log")

    def kill_node(self) -> None:
        assert self.node is not None
        self.node.send_signal(signal.SIGKILL)
        self.node.wait(10)

    def stub(self) -> orchestrator_pb2_grpc.OrchestratorServiceStub:
        return orchestrator_pb2_grpc.OrchestratorServiceStub(
            grpc.insecure_channel(f"127.0.0.1:{self.hub_port}"))

    def wait_hub(self, within_s: float = 60) -> None:
        channel = grpc.insecure_channel(f"127.0.0.1:{self.hub_port}")
        grpc.channel_ready_future(channel).result(timeout=within_s)
        channel.close()

    def wait_partner_answers(self, within_s: float) -> float:
        """Seconds until the hub answers QUESTION with the partner's expert."""
        stub, start = self.stub(), time.monotonic()
        while time.monotonic() - start < within_s:
            try:
                r = stub.Ask(ask(QUESTION), timeout=5)
                if [p.expert for p in r.parts] == ["crop-yield"]:
                    return time.monotonic() - start
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the partner's expert did not answer within {within_s} s; "
                             f"see {self.root}/hub.log and node.log")

    def close(self) -> None:
        for p in (self.node, self.hub):
            if p is not None and p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(15)
                except subprocess.TimeoutExpired:
                    p.kill()
        if self.ray:
            self.cli("down", "-c", "node.yaml", timeout=120)
            self.cli("down", "-c", "hub.yaml", timeout=120)


def _wait_gone(pid: int, within_s: float) -> None:
    from mesh.runstate import pid_alive

    deadline = time.monotonic() + within_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def ask(text: str) -> orchestrator_pb2.AskRequest:
    return orchestrator_pb2.AskRequest(input=common_pb2.Content(text=text))


@dataclass
class Outcome:
    start: float
    end: float
    ok: bool  # answered by the partner's expert
    code: str


class Load:
    """``clients`` threads asking QUESTION at most ``rate_hz`` each, deadline ``deadline_s``."""

    def __init__(self, address: str, clients: int = 2, rate_hz: float = 10.0,
                 deadline_s: float = 2.0) -> None:
        self.address, self.deadline_s, self.period = address, deadline_s, 1.0 / rate_hz
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        stub = orchestrator_pb2_grpc.OrchestratorServiceStub(grpc.insecure_channel(self.address))
        for _ in range(100_000):  # bounded; stop() ends it long before
            if self._stop.is_set():
                return
            t0 = time.monotonic()
            try:
                r = stub.Ask(ask(QUESTION), timeout=self.deadline_s)
                ok, code = [p.expert for p in r.parts] == ["crop-yield"], "OK"
            except grpc.RpcError as e:
                ok, code = False, e.code().name
            t1 = time.monotonic()
            with self._lock:
                self.outcomes.append(Outcome(t0, t1, ok, code))
            time.sleep(max(self.period - (t1 - t0), 0))

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.deadline_s + 5)


def kill_and_restart_under_load(orgs: TwoOrgs, recover_within_s: float) -> dict[str, float]:
    """The node is killed and restarted while clients ask; returns measured times."""
    with Load(f"127.0.0.1:{orgs.hub_port}") as load:
        time.sleep(2.0)
        killed = time.monotonic()
        orgs.kill_node()
        time.sleep(2.0)
        restarted = time.monotonic()
        orgs.start_node()
        back = orgs.wait_partner_answers(recover_within_s) + restarted
        time.sleep(2.0)
    outcomes = load.outcomes
    assert len(outcomes) > 40
    worst = max(o.end - o.start for o in outcomes)
    assert worst <= load.deadline_s + 0.5, f"a request waited {worst:.2f} s"
    failed = [o for o in outcomes if not o.ok]
    assert failed, "killing the node changed nothing?"
    assert all(killed - 0.1 <= o.end and o.start <= back + 0.1 for o in failed), [
        (round(o.start - killed, 2), o.code) for o in failed if o.start < killed or o.start > back]
    assert all(o.ok for o in outcomes if o.start > back + 0.1)
    assert all(o.ok for o in outcomes if o.end < killed)
    codes = sorted({o.code for o in failed})
    assert set(codes) <= {"OK", "UNAVAILABLE", "DEADLINE_EXCEEDED"}, codes
    return {"requests": len(outcomes), "failed": len(failed), "worst_s": worst,
            "recovered_after_restart_s": back - restarted}


@pytest.fixture(scope="module")
def orgs(demo_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoOrgs]:
    root = tmp_path_factory.mktemp("two-orgs")
    env = {**os.environ, "MESH_DEMO_ARTIFACTS": str(demo_artifacts)}
    env.pop("MESH_STATE_DIR", None)
    o = TwoOrgs(root, env, ray=False)
    try:
        o.setup()
        o.start_hub()
        o.start_node()
        yield o
    finally:
        o.close()


def test_partner_expert_answers_through_the_hub(orgs: TwoOrgs) -> None:
    assert orgs.wait_partner_answers(30) < 30
    listed = {e.card.name: (e.card.organization, e.status)
              for e in orgs.stub().ListExperts(orchestrator_pb2.ListExpertsRequest(),
                                               timeout=10).experts}
    assert listed["crop-yield"] == (AGRI, "HEALTHY")
    assert listed["python-docs"][1] == "HEALTHY"


def test_node_health_port_answers_plaintext_probes(orgs: TwoOrgs) -> None:
    """Kubelet-style probes have no certificate: the node's health port serves them."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    orgs.wait_partner_answers(30)
    with grpc.insecure_channel(f"127.0.0.1:{orgs.node_health_port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                          timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_publish_with_a_certificate_from_another_ca_is_refused(orgs: TwoOrgs) -> None:
    for step in (("ca", "init", "--dir", "rogue-ca", "--name", "rogue"),
                 ("keys", "init", "--organization", AGRI, "--dir", "rogue-keys"),
                 ("ca", "issue", "--dir", "rogue-ca", "--csr", "rogue-keys/tls.csr", "--role",
                  "node", "--out", "rogue-keys/tls.crt")):
        assert orgs.cli(*step).returncode == 0
    (orgs.root / "rogue-keys" / "ca.crt").write_bytes((orgs.root / "ca/ca.crt").read_bytes())
    flags = orgs.partner_flags("rogue-keys")
    flags[flags.index("--tls-ca") + 1] = "ca/ca.crt"
    done = orgs.cli("publish", str(MANIFESTS / "crop-yield.yaml"), *flags)
    assert done.returncode == 1 and "UNAUTHENTICATED" in done.stderr, done.stderr


def test_node_killed_under_load_then_restarted(orgs: TwoOrgs) -> None:
    orgs.wait_partner_answers(30)
    measured = kill_and_restart_under_load(orgs, recover_within_s=30)
    print("kill/restart:", measured)


def test_hub_restart_keeps_the_registry(orgs: TwoOrgs) -> None:
    orgs.wait_partner_answers(30)
    orgs.stop_hub()
    orgs.start_hub()
    listed = {e.card.name: e.card.organization
              for e in orgs.stub().ListExperts(orchestrator_pb2.ListExpertsRequest(),
                                               timeout=10).experts}
    assert listed.get("crop-yield") == AGRI  # known at once, before any heartbeat
    assert orgs.wait_partner_answers(10) < 10
    local = orgs.stub().Ask(ask(LOCAL_QUESTION), timeout=10)
    assert [p.expert for p in local.parts] == ["python-docs"]


BREAST_QUESTION = "Is this breast mass malignant? mean radius 17.99, worst area 2019"


def _p50(samples: list[float]) -> float:
    return sorted(samples)[len(samples) // 2]


def measure_hop(orgs: TwoOrgs, n: int = 100) -> dict[str, float]:
    """Median milliseconds, one request at a time: a hub-local tabular expert through the hub,
    the partner's tabular expert through the hub, and the partner's expert called directly on
    its node over mTLS with the hub's certificate (what the hop adds beyond the expert)."""
    from mesh.federation.tls import TlsFiles, channel_credentials
    from mesh.proto.v1 import expert_pb2, expert_pb2_grpc

    stub = orgs.stub()
    out: dict[str, float] = {}
    for label, text, expert in (("hub_local_ask_ms", BREAST_QUESTION, "breast-cancer"),
                                ("hub_to_partner_ask_ms", QUESTION, "crop-yield")):
        request = orchestrator_pb2.AskRequest(input=common_pb2.Content(text=text),
                                              experts=[expert])
        stub.Ask(request, timeout=10)  # warm
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            stub.Ask(request, timeout=10)
            times.append((time.perf_counter() - t0) * 1000)
        out[label] = _p50(times)
    r = orgs.root
    tls = TlsFiles(r / "hub-keys/tls.crt", r / "hub-keys/tls.key", r / "ca/ca.crt")
    channel = grpc.secure_channel(f"127.0.0.1:{orgs.node_port}", channel_credentials(tls))
    node = expert_pb2_grpc.ExpertNodeServiceStub(channel)
    infer = expert_pb2.InferRequest(expert="crop-yield", input=common_pb2.Content(text=QUESTION))
    node.Infer(infer, timeout=10)
    times, expert_ms = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        resp = node.Infer(infer, timeout=10)
        times.append((time.perf_counter() - t0) * 1000)
        expert_ms.append(resp.latency_ms)
    channel.close()
    out["node_direct_infer_ms"] = _p50(times)
    out["node_reported_expert_ms"] = _p50(expert_ms)
    return {k: round(v, 2) for k, v in out.items()}


def test_cross_organization_hop_cost(orgs: TwoOrgs) -> None:
    orgs.wait_partner_answers(30)
    measured = measure_hop(orgs)
    print("hop cost (in-process experts):", measured)
    assert measured["hub_to_partner_ask_ms"] < 1000
