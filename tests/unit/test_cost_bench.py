"""The figures of `mesh bench autoscale` from a made-up recording: replica-seconds of the mesh,
a fixed fleet and the ideal; scale-up and scale-to-zero times; latency during scale-up."""

from __future__ import annotations

import pytest

from mesh.bench.autoscale_plan import (
    CallRecord,
    Policy,
    Recording,
    Sample,
    figures,
    step_phases,
)

POLICY = Policy(min_replicas=0, max_replicas=3, target_ongoing_requests=2)


def _recording() -> Recording:
    phases = step_phases({"idle": 10, "low": 10, "high": 10, "cooldown": 10},
                         {"hot": {"low": 2, "high": 6}, "cool": {"high": 1}})
    rec = Recording(phases, POLICY)
    # hot: 0 until 11 s, 1 until 23 s, 3 until 33 s, 0 after; cool: 1 from 21 s to 35 s.
    for t in range(0, 41):
        hot = 0 if t < 11 else 1 if t < 23 else 3 if t < 33 else 0
        cool = 1 if 21 <= t < 35 else 0
        rec.samples.append(Sample(float(t), {"hot": hot, "cool": cool}))
    rec.calls += [CallRecord("hot", 10.0, 12.0, True, cold_start_ms=2000.0),
                  CallRecord("hot", 20.5, 20.6, True), CallRecord("hot", 21.0, 21.3, True),
                  CallRecord("cool", 20.0, 21.5, True, cold_start_ms=1500.0),
                  CallRecord("hot", 30.0, 30.01, False, error="ExpertUnavailable: x")]
    return rec


def test_policy_ideal_is_zero_when_idle_and_clamped() -> None:
    assert [POLICY.ideal(n) for n in (0, 1, 2, 3, 6, 100)] == [0, 1, 1, 2, 3, 3]


def test_replica_seconds_against_the_fleet_and_the_ideal() -> None:
    r = figures(_recording())
    # ideal: hot 10 s x 1 + 10 s x 3, cool 10 s x 1
    assert r["replica_seconds"] == {"mesh": 12 + 30 + 14, "peak_fleet": (3 + 1) * 40,
                                    "ideal": 50}
    assert r["ratio_to_ideal"] == pytest.approx(56 / 50, abs=1e-3)


def test_times_and_latency() -> None:
    r = figures(_recording())
    assert r["scale_up_s"] == 3.0  # hot reached 3 replicas at 23 s, the high phase began at 20
    assert r["per_expert"]["cool"]["scale_up_s"] == 1.0  # type: ignore[index]
    assert r["scale_to_zero_s"] == 5.0  # cool released its replica at 35 s
    assert r["cold_start_s"] == 2.0 and r["cold_starts"] == 2
    assert r["failed_requests"] == 1
    assert r["errors"] == {"ExpertUnavailable: x": 1}
    # calls started in [20 s, 23 s]: 100 ms, 300 ms and cool's 1.5 s cold start
    assert r["p99_ms_during_scale_up"] == 1500.0
    assert r["p50_ms_during_scale_up"] == 300.0
