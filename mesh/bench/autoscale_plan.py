"""The figures of `mesh bench autoscale`, computed from what a run recorded (pure, no Ray).

A run is a step load: phases (idle, low, high, idle) each giving every expert a number of
requests kept in flight (closed-loop callers). From the replica counts sampled during the run
and every call's start, end and outcome, this module derives:

* replica-seconds of the mesh (the samples integrated over the run), of a fixed fleet sized for
  the peak (each expert's largest ideal count, held the whole run), and of the ideal (at each
  moment exactly the replicas the load needs: ``ceil(in_flight / target_ongoing_requests)``
  clamped to the expert's bounds, 0 when idle);
* time to scale up (high phase start → the expert runs its ideal count), time to scale to zero
  (last idle phase start → zero replicas), cold start (the mesh's own report in Timings);
* p50 and p99 of the calls started while experts were scaling up; failed calls.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from mesh.bench.loadgen import percentile


@dataclass(frozen=True)
class Phase:
    """A stretch of the run with a constant load: in-flight requests per expert."""

    name: str
    seconds: float
    load: Mapping[str, int]


@dataclass(frozen=True)
class Policy:
    """The autoscaling every bench expert gets (the manifest fields of the same names)."""

    min_replicas: int = 0
    max_replicas: int = 3
    target_ongoing_requests: float = 2.0
    upscale_delay_s: float = 0.0
    downscale_delay_s: float = 5.0
    look_back_period_s: float = 12.0

    def ideal(self, in_flight: int) -> int:
        """Replicas the load needs now: none when idle, else enough for the target."""
        need = math.ceil(in_flight / self.target_ongoing_requests) if in_flight > 0 else 0
        return min(max(need, self.min_replicas), self.max_replicas)


@dataclass(frozen=True)
class Sample:
    """Replicas running per expert at ``t`` seconds after the load started."""

    t: float
    replicas: Mapping[str, int]


@dataclass(frozen=True)
class CallRecord:
    """One request: which expert, when (seconds after the load started), how it went."""

    expert: str
    start: float
    end: float
    ok: bool
    cold_start_ms: float = 0.0
    error: str = ""


@dataclass
class Recording:
    """Everything a run saw."""

    phases: Sequence[Phase]
    policy: Policy
    samples: list[Sample] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)

    @property
    def experts(self) -> list[str]:
        return sorted({e for p in self.phases for e in p.load})

    @property
    def duration(self) -> float:
        return sum(p.seconds for p in self.phases)

    def phase_starts(self) -> list[float]:
        starts, t = [], 0.0
        for p in self.phases:
            starts.append(t)
            t += p.seconds
        return starts


def step_phases(seconds: Mapping[str, float], load: Mapping[str, Mapping[str, int]]
                ) -> list[Phase]:
    """Phases idle → low → high → idle from per-phase lengths and per-expert loads."""
    names = ("idle", "low", "high", "cooldown")
    return [Phase(n, seconds[n], {e: load[e].get(n, 0) for e in load}) for n in names]


def ideal_replica_seconds(rec: Recording) -> float:
    return sum(p.seconds * rec.policy.ideal(p.load.get(e, 0))
               for p in rec.phases for e in rec.experts)


def peak_fleet_replica_seconds(rec: Recording) -> float:
    peak = {e: max(rec.policy.ideal(p.load.get(e, 0)) for p in rec.phases)
            for e in rec.experts}
    return sum(peak.values()) * rec.duration


def mesh_replica_seconds(rec: Recording) -> float:
    """The samples as a step function (each count holds until the next sample), over the run."""
    total = 0.0
    samples = sorted(rec.samples, key=lambda s: s.t)
    for here, after in itertools.pairwise(samples):
        lo, hi = max(here.t, 0.0), min(after.t, rec.duration)
        if hi > lo:
            total += (hi - lo) * sum(here.replicas.values())
    return total


def _first_time(rec: Recording, expert: str, since: float, until: float,
                reached: int, at_least: bool) -> float | None:
    for s in sorted(rec.samples, key=lambda s: s.t):
        if s.t < since or s.t > until:
            continue
        n = s.replicas.get(expert, 0)
        if (n >= reached) if at_least else (n <= reached):
            return s.t - since
    return None


def scale_up_times(rec: Recording) -> dict[str, float | None]:
    """Per expert whose ideal count grows in the high phase: seconds to reach it (None: never,
    within the phase)."""
    starts = rec.phase_starts()
    i = next(k for k, p in enumerate(rec.phases) if p.name == "high")
    high, before = rec.phases[i], rec.phases[i - 1]
    out: dict[str, float | None] = {}
    for e in rec.experts:
        target = rec.policy.ideal(high.load.get(e, 0))
        if target > rec.policy.ideal(before.load.get(e, 0)):
            out[e] = _first_time(rec, e, starts[i], starts[i] + high.seconds, target, True)
    return out


def scale_to_zero_times(rec: Recording) -> dict[str, float | None]:
    """Seconds from the last phase's start (all idle) to zero replicas, per expert."""
    start = rec.phase_starts()[-1]
    return {e: _first_time(rec, e, start, rec.duration, 0, False) for e in rec.experts}


def _worst(values: Mapping[str, float | None], bound: float) -> float:
    """The slowest expert; one that never got there counts as the whole window."""
    return max((bound if v is None else v for v in values.values()), default=0.0)


def figures(rec: Recording) -> dict[str, object]:
    """The JSON of one run (the keys the issue asks for, plus per-expert detail)."""
    ideal = ideal_replica_seconds(rec)
    mesh = mesh_replica_seconds(rec)
    starts = rec.phase_starts()
    i_high = next(k for k, p in enumerate(rec.phases) if p.name == "high")
    up = scale_up_times(rec)
    scale_up = _worst(up, rec.phases[i_high].seconds)
    window_end = starts[i_high] + max(scale_up, 1.0)
    during = sorted((c.end - c.start) * 1000 for c in rec.calls
                    if c.ok and starts[i_high] <= c.start <= window_end)
    zero = scale_to_zero_times(rec)
    cold = [c.cold_start_ms / 1000 for c in rec.calls if c.ok and c.cold_start_ms > 0]
    return {
        "replica_seconds": {"mesh": round(mesh, 1), "peak_fleet": round(
            peak_fleet_replica_seconds(rec), 1), "ideal": round(ideal, 1)},
        "ratio_to_ideal": round(mesh / ideal, 3) if ideal else None,
        "ratio_to_peak_fleet": round(mesh / peak_fleet_replica_seconds(rec), 3),
        "failed_requests": sum(1 for c in rec.calls if not c.ok),
        "errors": dict(Counter(c.error for c in rec.calls if not c.ok).most_common(3)),
        "requests": len(rec.calls),
        "scale_to_zero_s": round(_worst(zero, rec.phases[-1].seconds), 2),
        "scale_up_s": round(scale_up, 2),
        "cold_start_s": round(max(cold), 2) if cold else None,
        "cold_start_s_median": round(sorted(cold)[len(cold) // 2], 2) if cold else None,
        "cold_starts": len(cold),
        "p50_ms_during_scale_up": round(percentile(during, 50), 1) if during else None,
        "p99_ms_during_scale_up": round(percentile(during, 99), 1) if during else None,
        "per_expert": {
            e: {"scale_up_s": up.get(e), "scale_to_zero_s": zero.get(e)} for e in rec.experts
        },
    }


def load_at(rec: Recording, t: float) -> dict[str, int]:
    """In-flight load per expert that the schedule sets at ``t``."""
    for start, p in zip(rec.phase_starts(), rec.phases, strict=True):
        if start <= t < start + p.seconds:
            return dict(p.load)
    return {e: 0 for e in rec.experts}
