"""Cost accounting: replica-seconds integrate sampled replica counts, CPU and GPU apart, per
expert and per organization, and cost per request divides by the requests answered."""

from __future__ import annotations

import pytest

from mesh.config import ExpertManifest
from mesh.observability.cost import CostLedger, ExpertPrice, prices


def _ledger() -> CostLedger:
    return CostLedger({
        "iris": ExpertPrice("garden", 0.5, 0.0),
        "llm": ExpertPrice("garden", 1.0, 1.0),
        "tumour": ExpertPrice("clinic", 1.0, 0.0),
    })


def test_counts_hold_until_the_next_sample() -> None:
    ledger = _ledger()
    ledger.sample(100.0, {"iris": 1, "llm": 0, "tumour": 2})
    ledger.sample(110.0, {"iris": 3})  # 10 s at 1 / 0 / 2 replicas
    ledger.sample(115.0, {"iris": 0, "tumour": 0})  # 5 s at 3 / 0 / 2
    ledger.sample(200.0, {})  # 85 s at zero: costs nothing
    rows = {r.expert: r for r in ledger.rows()}
    assert rows["iris"].replica_seconds == pytest.approx(10 * 1 + 5 * 3)
    assert rows["tumour"].replica_seconds == pytest.approx(10 * 2 + 5 * 2)
    assert rows["llm"].replica_seconds == 0
    assert rows["iris"].replicas == 0
    assert ledger.replicas("iris") == 0
    assert ledger.replicas("unknown") is None


def test_cost_per_request_and_devices_apart() -> None:
    ledger = _ledger()
    ledger.sample(0.0, {"iris": 2, "llm": 1, "tumour": 1})
    ledger.sample(30.0, {})
    for _ in range(6):
        ledger.count_request("iris")
    ledger.count_request("llm")
    rows = {r.expert: r for r in ledger.rows()}
    assert rows["iris"].cost_per_request == pytest.approx(60 / 6)
    assert rows["llm"].device == "gpu" and rows["iris"].device == "cpu"
    assert rows["tumour"].cost_per_request == 0  # no request yet: no division by zero
    orgs = {o.organization: o for o in ledger.by_organization()}
    assert orgs["garden"].cpu_replica_seconds == pytest.approx(60)
    assert orgs["garden"].gpu_replica_seconds == pytest.approx(30)
    assert orgs["garden"].requests == 7
    assert orgs["clinic"].cpu_replica_seconds == pytest.approx(30)


def test_a_clock_going_backwards_charges_nothing() -> None:
    ledger = _ledger()
    ledger.sample(50.0, {"iris": 4})
    ledger.sample(40.0, {"iris": 4})
    assert ledger.row("iris").replica_seconds == 0  # type: ignore[union-attr]


def test_prices_come_from_the_manifest_resources() -> None:
    m = ExpertManifest.model_validate({
        "name": "gpu-expert", "organization": "lab", "description": "A test expert on a GPU.",
        "examples": ["one", "two", "three"], "input_kind": "text", "runtime": "openai",
        "model": {"base_url": "http://127.0.0.1:9/v1", "model": "m"},
        "resources": {"num_cpus": 2, "num_gpus": 0.5},
    })
    assert prices([m])["gpu-expert@1.0.0"] == ExpertPrice("lab", 2.0, 0.5)
    assert prices([m])["gpu-expert@1.0.0"].device == "gpu"


def test_cold_means_zero_replicas_and_no_answer_since_the_sample() -> None:
    ledger = _ledger()
    assert not ledger.is_cold("iris")  # never sampled: unknown is not cold
    ledger.sample(10.0, {"iris": 0, "tumour": 1})
    assert ledger.is_cold("iris") and not ledger.is_cold("tumour")
    ledger.answered("iris", 10.5)  # the cold start finished; the next sample is not in yet
    assert not ledger.is_cold("iris")
    ledger.sample(20.0, {"iris": 0})  # released again
    assert ledger.is_cold("iris")
