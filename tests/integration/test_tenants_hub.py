"""Tenants on a real hub: two `mesh orchestrator` processes sharing one state folder, called
over gRPC with tokens. The admitted rate holds the quota across both processes, a token
revoked with `mesh tenants revoke` is refused within a second by both, credentials and allowed
experts are enforced, tokens never reach the logs, and usage is a Prometheus metric."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from mesh.config import load_config
from mesh.proto.v1 import orchestrator_pb2
from mesh.proto.v1.orchestrator_pb2_grpc import OrchestratorServiceStub
from mesh.tenants import Limits, Tenant, TenantStore, store_path
from tests.support.hub import ask_iris, iris_mesh, metrics_port, orchestrator_process, stub

pytestmark = pytest.mark.slow

RPS, BURST = 25.0, 10


@dataclass
class Hub:
    config: Path
    stubs: list[OrchestratorServiceStub]
    logs: list[Path]
    tenants: TenantStore


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    folder = tmp_path_factory.mktemp("tenants")
    config = iris_mesh(folder, extra="auth: {required: true, refresh_s: 0.2}\n")
    tenants = TenantStore(store_path(load_config(config).state_path()))
    tenants.create(Tenant("acme", limits=Limits(rps=RPS, burst=BURST)))
    tenants.create(Tenant("quiet", experts=("crop-yield",)))
    tenants.create(Tenant("free"))
    tenants.create(Tenant("metered", expert_limits={"iris": Limits(rps=0.5, burst=2)}))
    logs = [folder / "orchestrator-a.log", folder / "orchestrator-b.log"]
    with ExitStack() as stack:
        ports = [stack.enter_context(orchestrator_process(config, log))[0] for log in logs]
        yield Hub(config, [stub(p) for p in ports], logs, tenants)


def _auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _code(call: object) -> grpc.StatusCode:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as e:
        return e.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_calls_without_a_valid_credential_are_unauthenticated(hub: Hub) -> None:
    client = hub.stubs[0]
    assert _code(lambda: client.Ask(ask_iris())) == grpc.StatusCode.UNAUTHENTICATED
    forged = "mesh_000000000000_" + "x" * 43
    assert _code(lambda: client.Ask(ask_iris(), metadata=_auth(forged))) == \
        grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as info:
        client.ListExperts(orchestrator_pb2.ListExpertsRequest())
    assert "mesh tenants" in info.value.details()  # says how to get a credential


def test_an_expert_outside_the_allowed_set_is_permission_denied(hub: Hub) -> None:
    token = hub.tenants.issue_token("quiet")
    client = hub.stubs[1]
    with pytest.raises(grpc.RpcError) as info:
        client.Ask(ask_iris(), metadata=_auth(token))
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'quiet' may not use expert 'iris'" in info.value.details()
    listed = client.ListExperts(orchestrator_pb2.ListExpertsRequest(), metadata=_auth(token))
    assert [e.card.name for e in listed.experts] == []  # it sees only what it may use


def test_a_session_is_visible_to_its_tenant_only(hub: Hub) -> None:
    mine, other = hub.tenants.issue_token("free"), hub.tenants.issue_token("acme")
    first = hub.stubs[0].Ask(ask_iris(), metadata=_auth(mine))
    assert _code(lambda: hub.stubs[1].Ask(ask_iris(first.session_id), metadata=_auth(other))
                 ) == grpc.StatusCode.NOT_FOUND
    assert _code(lambda: hub.stubs[1].Ask(ask_iris(first.session_id), metadata=_auth(mine))
                 ) == grpc.StatusCode.OK


def _hammer(client: OrchestratorServiceStub, token: str, until: float,
            outcomes: list[tuple[float, grpc.StatusCode, str]]) -> None:
    for _ in range(3000):  # bounded in count as well as in time
        if time.monotonic() >= until:
            return
        try:
            client.Ask(ask_iris(), metadata=_auth(token), timeout=10)
            outcomes.append((time.monotonic(), grpc.StatusCode.OK, ""))
        except grpc.RpcError as e:
            trailers = dict(e.trailing_metadata() or ())  # type: ignore[attr-defined]
            outcomes.append((time.monotonic(), e.code(), trailers.get("retry-after-ms", "")))


def test_quota_holds_within_ten_percent_across_two_orchestrator_processes(hub: Hub) -> None:
    token = hub.tenants.issue_token("acme")
    time.sleep(0.5)  # both orchestrators have seen the new token
    outcomes: list[tuple[float, grpc.StatusCode, str]] = []
    start = time.monotonic()
    until = start + 4.0
    workers = [threading.Thread(target=_hammer, args=(hub.stubs[i % 2], token, until, outcomes))
               for i in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    admitted = [t for t, code, _ in outcomes if code == grpc.StatusCode.OK]
    throttled = [hint for _, code, hint in outcomes if code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert {code for _, code, _ in outcomes} <= {grpc.StatusCode.OK,
                                                grpc.StatusCode.RESOURCE_EXHAUSTED}
    elapsed = max(admitted) - start
    expected = BURST + RPS * elapsed
    print(f"admitted {len(admitted)} of {len(outcomes)} in {elapsed:.2f} s, quota allows "
          f"{expected:.1f} ({len(admitted) / expected - 1:+.1%})")
    assert abs(len(admitted) - expected) <= 0.1 * expected, (len(admitted), expected)
    assert len(throttled) > len(admitted)  # the load really was over the quota
    assert all(hint and int(hint) > 0 for hint in throttled)  # retry-after on every refusal
    # Usage per tenant, from each process's /metrics, adds up to what the clients saw.
    total = 0.0
    for log in hub.logs:
        url = f"http://127.0.0.1:{metrics_port(log)}/metrics"
        text = urllib.request.urlopen(url, timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith('mesh_tenant_requests_total{outcome="throttled",tenant="acme"}'):
                total += float(line.rsplit(" ", 1)[1])
    assert total == len(throttled)


def test_a_revoked_token_is_refused_by_every_orchestrator_within_a_second(hub: Hub) -> None:
    token = hub.tenants.issue_token("free")
    token_id = token.split("_", 2)[1]
    for client in hub.stubs:
        client.Ask(ask_iris(), metadata=_auth(token))
    done = subprocess.run([sys.executable, "-m", "mesh.cli", "tenants", "revoke", token_id,
                           "-c", str(hub.config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    revoked_at = time.monotonic()
    refused: dict[int, float] = {}
    while len(refused) < len(hub.stubs) and time.monotonic() - revoked_at < 5:
        for i, client in enumerate(hub.stubs):
            if i not in refused and _code(lambda c=client: c.Ask(ask_iris(), metadata=_auth(
                    token))) == grpc.StatusCode.UNAUTHENTICATED:
                refused[i] = time.monotonic() - revoked_at
        time.sleep(0.02)
    print(f"revoked token refused after {sorted(round(v, 3) for v in refused.values())} s")
    assert len(refused) == 2 and max(refused.values()) < 1.0, refused


def test_tokens_never_reach_the_logs(hub: Hub) -> None:
    token = hub.tenants.issue_token("free")
    hub.stubs[0].Ask(ask_iris(), metadata=_auth(token))
    _code(lambda: hub.stubs[0].Ask(ask_iris(), metadata=_auth(token[:-3] + "abc")))
    secret = token.split("_", 2)[2]  # the secret may itself contain "_"
    for log in hub.logs:
        assert secret not in log.read_text()
        assert secret[:-3] not in log.read_text()


def test_a_per_expert_limit_applies_to_calls_of_that_expert(hub: Hub) -> None:
    token = hub.tenants.issue_token("metered")
    codes = [_code(lambda i=i: hub.stubs[i % 2].Ask(ask_iris(), metadata=_auth(token)))
             for i in range(3)]
    assert codes == [grpc.StatusCode.OK, grpc.StatusCode.OK,
                     grpc.StatusCode.RESOURCE_EXHAUSTED]
    with pytest.raises(grpc.RpcError) as info:
        hub.stubs[0].Ask(ask_iris(), metadata=_auth(token))
    assert "expert 'iris'" in info.value.details() and "rps=0.5" in info.value.details()
    retry_ms = int(dict(info.value.trailing_metadata())["retry-after-ms"])  # type: ignore[attr-defined]
    assert 0 < retry_ms <= 2000
