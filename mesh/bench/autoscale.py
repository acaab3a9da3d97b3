"""`mesh bench autoscale`: a bounded step load on three experts, and what their replicas cost.

Three bundled demo experts (tabular and image ONNX models) are deployed with scale-to-zero
autoscaling on a Ray cluster the bench starts for itself (loopback, its own temp folder and
token, torn down at the end). The mesh's own Orchestrator, in this process, calls them through
DeploymentHandles, as `mesh orchestrator` does (no gRPC hop: this bench measures scaling, not
the hop; `mesh bench latency` measures the hop). Load is closed-loop callers per expert — each
sends its next request as soon as the previous one answers — in four phases: idle, low, high,
idle, with a different load per expert. Replica counts are sampled every ``SAMPLE_S``; the
figures (mesh_bench.autoscale_plan) compare the replica-seconds used with a fixed fleet sized
for the peak and with the ideal, and report scale-up, scale-to-zero and cold-start times.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from mesh.bench.autoscale_plan import CallRecord, Phase, Policy, Recording, Sample, figures
from mesh.config import ExpertManifest, OrchestratorConfig
from mesh.errors import MeshError

# Hot, warm and cool: their loads differ in each phase (in-flight requests).
LOADS: dict[str, dict[str, int]] = {
    "breast-cancer": {"low": 2, "high": 6},
    "digits": {"low": 1, "high": 2},
    "diabetes-progression": {"high": 1},
}
PHASE_S = {"idle": 10.0, "low": 30.0, "high": 40.0, "cooldown": 40.0}
# A 12 s look-back (Serve's default is 30 s) so replicas follow a step of load sooner; Ray 2.60
# warns that 10 s or less will be refused (it must exceed the deprecated metrics_interval_s).
# docs/benchmarks.md compares runs with 30 s and 5 s.
POLICY = Policy(min_replicas=0, max_replicas=3, target_ongoing_requests=2.0,
                upscale_delay_s=0.0, downscale_delay_s=5.0, look_back_period_s=12.0)
NUM_CPUS = 0.1  # per replica: nine replicas at the peak must fit a 2-core machine
SAMPLE_S = 0.25
CALL_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 120.0
FAILURE_PAUSE_S = 0.1

Say = Callable[[str], None]


def _say(text: str) -> None:
    print(text, flush=True)


def bench_manifests(policy: Policy, say: Say) -> list[ExpertManifest]:
    """The demo experts of ``LOADS`` with the bench's autoscaling and a small CPU share."""
    from mesh.bench.expert import demo_manifest

    out: list[ExpertManifest] = []
    for name in LOADS:
        m = demo_manifest(name, say if not out else (lambda _: None))
        autoscaling = m.autoscaling.model_copy(update={
            "min_replicas": policy.min_replicas, "max_replicas": policy.max_replicas,
            "initial_replicas": None,
            "target_ongoing_requests": policy.target_ongoing_requests,
            "upscale_delay_s": policy.upscale_delay_s,
            "downscale_delay_s": policy.downscale_delay_s,
            "look_back_period_s": policy.look_back_period_s})
        resources = m.resources.model_copy(update={"num_cpus": NUM_CPUS})
        out.append(m.model_copy(update={"autoscaling": autoscaling, "resources": resources,
                                        "max_ongoing_requests": 8}))
    return out


async def _drive(orchestrator: object, recording: Recording, manifests: list[ExpertManifest],
                 say: Say) -> None:
    """Sample replicas and run the phases; everything bounded by the schedule and timeouts."""
    from mesh.bench.expert import sample_request
    from mesh.observability.exporter import ReplicaSampler
    from mesh.orchestrator.service import AskCommand, Orchestrator

    assert isinstance(orchestrator, Orchestrator)
    sampler = ReplicaSampler(orchestrator.metrics, orchestrator.transport.states, SAMPLE_S)
    requests = {m.name: sample_request(m) for m in manifests}
    keys = {m.name: m.key for m in manifests}  # replica counts are per version (its key)

    say("      waiting for every expert to be at zero replicas")
    settle = time.monotonic() + SETTLE_TIMEOUT_S
    while True:
        await sampler.sample_once()
        if all(orchestrator.metrics.ledger.replicas(k) == 0 for k in keys.values()):
            break
        if time.monotonic() > settle:
            raise RuntimeError("experts did not reach zero replicas before the load")
        await asyncio.sleep(0.5)

    t0 = time.monotonic()

    async def sample_loop() -> None:
        while True:
            await sampler.sample_once()
            counts = {n: orchestrator.metrics.ledger.replicas(k) or 0 for n, k in keys.items()}
            recording.samples.append(Sample(time.monotonic() - t0, counts))
            await asyncio.sleep(SAMPLE_S)

    async def caller(expert: str, until: float) -> None:
        while time.monotonic() < until:
            start = time.monotonic() - t0
            sample = requests[expert]
            cmd = AskCommand(text=sample.text, tensors=sample.tensors, experts=[expert])
            try:
                result = await orchestrator.ask(cmd, CALL_TIMEOUT_S)
                recording.calls.append(CallRecord(expert, start, time.monotonic() - t0, True,
                                                  result.timings.cold_start_ms))
            except MeshError as e:
                recording.calls.append(CallRecord(expert, start, time.monotonic() - t0, False,
                                                  error=f"{type(e).__name__}: {e}"[:200]))
                await asyncio.sleep(FAILURE_PAUSE_S)  # never spin on a failing expert

    sampling = asyncio.get_running_loop().create_task(sample_loop())
    try:
        end = t0
        for phase in recording.phases:
            end += phase.seconds
            say(f"      {phase.name:<8} {phase.seconds:>5.0f} s  load {dict(phase.load)}")
            callers = [caller(e, end) for e, n in phase.load.items() for _ in range(n)]
            await asyncio.gather(*callers)
            await asyncio.sleep(max(end - time.monotonic(), 0))
    finally:
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling


def _series(rec: Recording) -> dict[str, object]:
    """Samples and the schedule's load, for the plot (and anyone re-plotting the JSON)."""
    from mesh.bench.autoscale_plan import load_at

    return {
        "t": [round(s.t, 3) for s in rec.samples],
        "replicas": {e: [s.replicas.get(e, 0) for s in rec.samples] for e in rec.experts},
        "load": {e: [load_at(rec, s.t).get(e, 0) for s in rec.samples] for e in rec.experts},
        "ideal": {e: [rec.policy.ideal(load_at(rec, s.t).get(e, 0)) for s in rec.samples]
                  for e in rec.experts},
    }


def run(phase_s: Mapping[str, float], say: Say = _say) -> dict[str, object]:
    """One whole run: cluster up, deploy, load, figures, cluster down."""
    from mesh.bench.autoscale_plan import step_phases
    from mesh.bench.expert import _start_ray, _stop_ray
    from mesh.orchestrator.service import Orchestrator
    from mesh.orchestrator.sessions import SessionStore
    from mesh.serving.apps import deploy_experts
    from mesh.serving.cluster import AUTOSCALING_DEFAULTS
    from mesh.serving.handle_transport import ServeTransport

    phases: list[Phase] = step_phases(phase_s, LOADS)
    recording = Recording(phases, POLICY)
    say("[1/4] demo experts")
    manifests = bench_manifests(POLICY, say)
    for key, value in AUTOSCALING_DEFAULTS.items():
        os.environ.setdefault(key, value)
    with tempfile.TemporaryDirectory(prefix="mesh-bench-autoscale-") as tmp:
        work = Path(tmp)
        say("[2/4] starting a Ray cluster of the bench's own (loopback)")
        _start_ray(work)
        try:
            say(f"[3/4] deploying {', '.join(m.name for m in manifests)} (min 0 replicas)")
            deploy_experts(manifests, progress=lambda line: say("    " + line.strip()))
            sessions = SessionStore(work / "sessions.sqlite3")
            transport = ServeTransport([m.key for m in manifests])
            orchestrator = Orchestrator(manifests, transport, sessions,
                                        OrchestratorConfig(port=0, metrics_port=None))
            say(f"[4/4] step load, {recording.duration:.0f} s")
            asyncio.run(_drive(orchestrator, recording, manifests, say))
            sessions.close()
        finally:
            _stop_ray()
    result = figures(recording)
    result["policy"] = vars(POLICY) | {}
    result["phases"] = [{"name": p.name, "seconds": p.seconds, "load": dict(p.load)}
                        for p in phases]
    result["series"] = _series(recording)
    return result


def format_summary(r: Mapping[str, object]) -> str:
    rs = r["replica_seconds"]
    assert isinstance(rs, dict)
    lines = [
        f"replica-seconds: mesh {rs['mesh']}, fixed fleet for the peak {rs['peak_fleet']}, "
        f"ideal {rs['ideal']}  (mesh/ideal {r['ratio_to_ideal']}, "
        f"mesh/peak fleet {r['ratio_to_peak_fleet']})",
        f"requests {r['requests']}, failed {r['failed_requests']}",
        f"scale up {r['scale_up_s']} s, scale to zero {r['scale_to_zero_s']} s, "
        f"cold start {r['cold_start_s']} s (max of {r['cold_starts']}, "
        f"median {r['cold_start_s_median']} s)",
        f"during scale-up: p50 {r['p50_ms_during_scale_up']} ms, "
        f"p99 {r['p99_ms_during_scale_up']} ms",
    ]
    return "\n".join(lines)


def run_autoscale_bench(phase_s: Mapping[str, float], json_out: str | None,
                        plot_out: str | None) -> int:
    result = run(phase_s)
    _say("\n" + format_summary(result))
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
        _say(f"figures written to {json_out}")
    if plot_out:
        from mesh.bench.autoscale_plot import plot

        plot(result, Path(plot_out))
        _say(f"plot written to {plot_out}")
    return 0
