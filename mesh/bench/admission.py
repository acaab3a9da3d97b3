"""`mesh bench admission`: what tenants and quotas cost per call, and whether the shared quota
counters keep up with several orchestrator processes.

Two measurements in one run, on files in a fresh temporary folder:

* per call, in one process: ``Admission`` open (no tenants), with a token and no limits, with a
  rate limit, and with rate + concurrency limits for the tenant and for the expert (all set high
  enough never to refuse), each the whole admit / release of one call, side by side;
* the shared counters alone: acquire + release per second by 1 and by 2 processes (4 threads
  each) on one SQLite file, the set-up of two orchestrator processes of one hub.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from mesh.observability.metrics import MeshMetrics
from mesh.orchestrator.admission import Admission
from mesh.tenants import Authenticator, Limits, QuotaLimiter, Tenant, TenantStore

HIGH = Limits(rps=1e9, burst=1_000_000_000, concurrent=1_000_000)
"""Limits that never refuse: the cost measured is the bookkeeping, not throttling."""


def _per_call_us(admission: Admission, metadata: list[tuple[str, str]], calls: int
                 ) -> list[float]:
    async def run() -> list[float]:
        out = []
        for _ in range(calls):
            t0 = time.perf_counter()
            tenant = admission.identify(metadata)
            async with admission.admitted(tenant) as gate:
                await gate.experts(["iris"])
            out.append((time.perf_counter() - t0) * 1e6)
        return out

    return asyncio.run(run())


def _counter_worker(path: str, seconds: float, threads: int, queue: object) -> None:
    limiter = QuotaLimiter(Path(path))
    count = [0] * threads
    stop = time.monotonic() + seconds

    def loop(i: int) -> None:
        while time.monotonic() < stop:
            limiter.release(limiter.acquire("bench", HIGH))
            count[i] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    queue.put(sum(count))  # type: ignore[attr-defined]


def _counters_per_s(path: Path, processes: int, threads: int, seconds: float) -> float:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_counter_worker, args=(str(path), seconds, threads, queue))
             for _ in range(processes)]
    for p in procs:
        p.start()
    total = sum(queue.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join(30)
    return total / seconds


def run_admission_bench(calls: int, seconds: float, json_out: str | None,
                        say: Callable[[str], None] = print) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = TenantStore(folder / "tenants.sqlite3")
        store.create(Tenant("plain"))
        store.create(Tenant("rated", limits=Limits(rps=1e9, burst=1_000_000_000)))
        store.create(Tenant("metered", limits=HIGH, expert_limits={"iris": HIGH}))
        plain, rated = store.issue_token("plain"), store.issue_token("rated")
        metered = store.issue_token("metered")
        quota = QuotaLimiter(folder / "q.sqlite3")
        metrics = MeshMetrics()
        cases = {
            "open (no tenants)": (Admission.open(metrics), []),
            "token, no limits": (
                Admission(Authenticator(store, True), quota, metrics),
                [("authorization", f"Bearer {plain}")]),
            "token, rate limit": (
                Admission(Authenticator(store, True), quota, metrics),
                [("authorization", f"Bearer {rated}")]),
            "token, rate + concurrency, per tenant and per expert": (
                Admission(Authenticator(store, True), quota, metrics),
                [("authorization", f"Bearer {metered}")]),
        }
        results: dict[str, dict[str, float]] = {}
        base = None
        say(f"per call ({calls} calls each, one process):")
        for name, (admission, metadata) in cases.items():
            _per_call_us(admission, metadata, min(calls, 200))  # warm up
            us = sorted(_per_call_us(admission, metadata, calls))
            p50, p99 = statistics.median(us), us[int(len(us) * 0.99) - 1]
            base = base or p50
            results[name] = {"p50_us": p50, "p99_us": p99}
            say(f"  {name:<54} p50 {p50:8.1f} us   p99 {p99:8.1f} us   x{p50 / base:.1f}")
        counters: dict[str, float] = {}
        say(f"shared counters, acquire + release per second ({seconds:.0f} s each):")
        for processes in (1, 2):
            rate = _counters_per_s(folder / "counters.sqlite3", processes, 4, seconds)
            counters[f"{processes}_process"] = rate
            say(f"  {processes} process(es) x 4 threads: {rate:10.0f} /s")
        say(f"  2 processes / 1 process: x{counters['2_process'] / counters['1_process']:.2f}")
    if json_out:
        Path(json_out).write_text(json.dumps({"per_call": results, "counters_per_s": counters},
                                             indent=2))
    return 0
