"""`mesh bench latency`: one expert, three ways to reach it, measured in one run.

* ``direct``: gRPC → the node's ExpertNodeService face (its own process) → DeploymentHandle →
  the expert's replica. No routing: the floor any serving layer adds to.
* ``mesh``: gRPC → the orchestrator (``mesh orchestrator``, its own process: validation,
  in-process routing, session kept in SQLite) → DeploymentHandle → replica.
* ``serve_composition``: gRPC → Ray Serve's gRPC proxy → a router deployment (same mesh Router,
  same AskResponse) → DeploymentHandle → replica. The peer the mesh must not be slower than.

All three reach the same replica of the demo ``breast-cancer`` expert (tabular ONNX) with the
same question, on a Ray cluster the bench starts for itself (loopback, own temp folder, random
GCS port) and always tears down. The load client is this process; every server is another
one, so the client never shares a GIL with what it measures. Each path gets a warm-up, then
concurrency 1 and 8, ``requests`` calls each; the paths are interleaved per concurrency level so
slow drift of the machine is not charged to one of them.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
import yaml

from mesh.bench.children import Child, child_env
from mesh.bench.loadgen import Call, Stats, run_load
from mesh.errors import MeshError

EXPERT = "breast-cancer"
QUESTION = (
    "Is this breast mass malignant? mean radius 17.99, mean texture 10.38, worst area 2019"
)
MODES = ("direct", "mesh", "serve_composition")
LEVELS = {"c1": 1, "c8": 8}
COMPOSITION_APP = "composition"
CALL_TIMEOUT_S = 30.0
WARMUP_CALLS = 40
STARTUP_TIMEOUT_S = 300.0

Say = Callable[[str], None]
Results = dict[str, dict[str, dict[str, float]]]


def _say(text: str) -> None:
    print(text, flush=True)


# ---- setting up ------------------------------------------------------------------------------


def _demo_artifacts(say: Say) -> Path:
    """The demo experts' models: built once into the state folder (as `mesh up` does), or
    wherever MESH_DEMO_ARTIFACTS points; also exports that variable for the children."""
    from mesh.cli.common import DEMO_CONFIG, demo_artifacts_dir
    from mesh.config import load_config
    from mesh.demo.build import build_demo

    out = demo_artifacts_dir(load_config(DEMO_CONFIG).state_path())
    say(f"[1/5] demo experts in {out} (built from public data on the first run)")
    build_demo(out)
    return out


def _write_config(work: Path, ray_address: str | None) -> Path:
    """A mesh config for this run: every demo manifest (so routing is the real decision among
    all demo experts), state in the run's folder, orchestrator on a free loopback port."""
    from mesh.cli.common import DEMO_CONFIG
    from mesh.config import load_config

    demo = load_config(DEMO_CONFIG)
    orchestrator = demo.orchestrator.model_dump(mode="json")
    orchestrator.update(host="127.0.0.1", port=0)
    data = {
        "experts": [str(p) for p in demo.manifest_paths()],
        "state_dir": str(work / "state"),
        "orchestrator": orchestrator,
        "ray": {"address": ray_address, "node_ip": "127.0.0.1", "namespace": "mesh-bench"},
        "router": demo.router.model_dump(mode="json"),
    }
    path = work / "mesh-bench.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _auth_env(work: Path) -> dict[str, str]:
    """Token authentication for the bench's cluster, with a token of its own (as `mesh up`
    does per state folder): every child gets it, nothing reads ~/.ray/auth_token."""
    token = work / "ray_auth_token"
    fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _echo_progress(say: Say) -> Callable[[str], None]:
    def on_line(line: str) -> None:
        if line.startswith("PROGRESS "):
            say("      " + line.removeprefix("PROGRESS "))

    return on_line


# ---- measuring -------------------------------------------------------------------------------


def _calls(addresses: Mapping[str, str]) -> tuple[dict[str, Call], list[grpc.aio.Channel]]:
    """One channel and one prepared request per path (HTTP/2 multiplexes the c=8 callers)."""
    from mesh.proto.v1 import (
        common_pb2,
        expert_pb2,
        expert_pb2_grpc,
        orchestrator_pb2,
        orchestrator_pb2_grpc,
    )

    channels = {mode: grpc.aio.insecure_channel(addresses[mode]) for mode in MODES}
    content = common_pb2.Content(text=QUESTION)
    infer = expert_pb2.InferRequest(expert=EXPERT, input=content)
    ask = orchestrator_pb2.AskRequest(input=content)
    node = expert_pb2_grpc.ExpertNodeServiceStub(channels["direct"])
    mesh = orchestrator_pb2_grpc.OrchestratorServiceStub(channels["mesh"])
    peer = orchestrator_pb2_grpc.OrchestratorServiceStub(channels["serve_composition"])
    app = (("application", COMPOSITION_APP),)

    def direct() -> Awaitable[Any]:
        return node.Infer(infer, timeout=CALL_TIMEOUT_S)

    def via_mesh() -> Awaitable[Any]:
        return mesh.Ask(ask, timeout=CALL_TIMEOUT_S)

    def via_serve() -> Awaitable[Any]:
        return peer.Ask(ask, timeout=CALL_TIMEOUT_S, metadata=app)

    calls: dict[str, Call] = {"direct": direct, "mesh": via_mesh, "serve_composition": via_serve}
    return calls, list(channels.values())


def _check_answer(mode: str, response: Any) -> None:
    """Refuse to measure unless every path really reached the breast-cancer expert."""
    reached = [response.expert] if mode == "direct" else [p.expert for p in response.parts]
    if reached != [EXPERT]:
        raise RuntimeError(
            f"{mode}: the question reached {reached or 'no expert'}, not ['{EXPERT}'], so the "
            f"paths would not be comparable; question: {QUESTION!r}"
        )


async def _first_answer(mode: str, call: Call, timeout_s: float = 60.0) -> None:
    """The first call of a path, retried while Serve's proxy learns the new application."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            _check_answer(mode, await call())
            return
        except grpc.RpcError as e:
            retryable = e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND)
            if not retryable or time.monotonic() > deadline:
                raise RuntimeError(f"{mode}: first call failed: {e.code().name}: "
                                   f"{e.details()}") from None
            await asyncio.sleep(0.5)


async def _measure(addresses: Mapping[str, str], requests: int, say: Say) -> Results:
    calls, channels = _calls(addresses)
    try:
        for mode in MODES:
            await _first_answer(mode, calls[mode])
            await run_load(calls[mode], WARMUP_CALLS, 8)
        say(f"      warm-up done ({WARMUP_CALLS} calls per path)")
        results: Results = {mode: {} for mode in MODES}
        for level, concurrency in LEVELS.items():
            for mode in MODES:
                stats: Stats = await run_load(calls[mode], requests, concurrency)
                results[mode][level] = stats.as_dict()
                say(f"      {mode:<18} c={concurrency}: p50 {stats.p50_ms:7.2f} ms  "
                    f"p99 {stats.p99_ms:7.2f} ms  {stats.rps:8.1f} req/s")
        return results
    finally:
        for channel in channels:
            await channel.close()


# ---- reporting -------------------------------------------------------------------------------


def ratios(results: Results) -> dict[str, float]:
    """mesh ÷ serve_composition: rps (above 1: the mesh is faster) and p50 (below 1: faster)."""
    out: dict[str, float] = {}
    for level in LEVELS:
        m, s = results["mesh"][level], results["serve_composition"][level]
        out[f"rps_{level}"] = m["rps"] / s["rps"]
        out[f"p50_{level}"] = m["p50_ms"] / s["p50_ms"]
    return out


NOISE = 0.05
"""Throughput differences under 5 % are within run-to-run noise on a shared 2-core machine."""


def verdict(r: Mapping[str, float]) -> str:
    """One line: is the mesh slower than the peer (by throughput, beyond noise)?"""
    slower = {lv: r[f"rps_{lv}"] for lv in LEVELS if r[f"rps_{lv}"] < 1.0}
    if not slower:
        return "verdict: the mesh is not slower than the Serve composition"
    if all(v >= 1.0 - NOISE for v in slower.values()):
        return ("verdict: the mesh is on par with the Serve composition (within "
                f"{NOISE:.0%}, run-to-run noise) at " + ", ".join(slower))
    return "verdict: the mesh is SLOWER than the Serve composition at " + ", ".join(
        f"{lv} (x{v:.2f})" for lv, v in slower.items())


def format_table(results: Results, requests: int) -> str:
    """The side-by-side table and the mesh-versus-peer ratios, as printed."""
    head = f"{'path':<18}" + "".join(
        f" | {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}" for _ in LEVELS
    )
    levels = f"{'':<18}" + "".join(f" | {'concurrency ' + str(c):^26}" for c in LEVELS.values())
    rows = [levels, head, "-" * len(head)]
    for mode in MODES:
        cells = "".join(
            f" | {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['rps']:8.1f}"
            for r in (results[mode][level] for level in LEVELS)
        )
        rows.append(f"{mode:<18}{cells}")
    r = ratios(results)
    rows.append("")
    rows.append(
        "mesh vs serve_composition: throughput "
        + ", ".join(f"x{r['rps_' + lv]:.2f} at c={c}" for lv, c in LEVELS.items())
        + "; p50 "
        + ", ".join(f"x{r['p50_' + lv]:.2f} at c={c}" for lv, c in LEVELS.items())
    )
    rows.append(verdict(r))
    rows.append(f"({requests} requests per cell, question routed to '{EXPERT}')")
    return "\n".join(rows)


# ---- the run ---------------------------------------------------------------------------------


def _run(requests: int, serve_env: Mapping[str, str], say: Say) -> Results:
    _demo_artifacts(say)
    python = sys.executable
    with tempfile.TemporaryDirectory(prefix="mesh-bench-", ignore_cleanup_errors=True) as tmp:
        work = Path(tmp)
        env = child_env({**_auth_env(work), **serve_env})
        children: list[Child] = []
        try:
            config = _write_config(work, None)
            grpc_port = _free_port()
            say("[2/5] starting Ray on 127.0.0.1 (own cluster, about 10 s) and deploying "
                f"'{EXPERT}' and the Serve-composition router"
                + (f"; Serve env: {dict(serve_env)}" if serve_env else ""))
            t0 = time.monotonic()
            host = Child("Ray host", [
                python, "-m", "mesh.bench.cluster_host", "--config", str(config),
                "--deploy", EXPERT, "--temp-dir", str(work / "ray"),
                "--grpc-port", str(grpc_port), "--http-port", str(_free_port()),
                "--composition-app", COMPOSITION_APP,
            ], work / "cluster_host.log", env, stdin_pipe=True)
            children.append(host)
            gcs = host.wait_for(r"^READY (\S+)", STARTUP_TIMEOUT_S, _echo_progress(say))[1]
            say(f"      done in {time.monotonic() - t0:.1f} s")

            config = _write_config(work, gcs)
            say("[3/5] starting the orchestrator and the node face (own processes)")
            t0 = time.monotonic()
            orch = Child("orchestrator", [
                python, "-m", "mesh.cli", "orchestrator", "--config", str(config), "--port", "0",
            ], work / "orchestrator.log", env)
            children.append(orch)
            node = Child("node face", [
                python, "-m", "mesh.bench.node_face", "--config", str(config),
                "--expert", EXPERT, "--port", "0",
            ], work / "node_face.log", env)
            children.append(node)
            pattern = r"serving on (\S+:\d+)"
            addresses = {
                "mesh": orch.wait_for(pattern, STARTUP_TIMEOUT_S)[1],
                "direct": node.wait_for(pattern, STARTUP_TIMEOUT_S)[1],
                "serve_composition": f"127.0.0.1:{grpc_port}",
            }
            say(f"      done in {time.monotonic() - t0:.1f} s: " + ", ".join(
                f"{k} {v}" for k, v in addresses.items()))

            say(f"[4/5] measuring: warm-up, then c=1 and c=8, {requests} requests each")
            return asyncio.run(_measure(addresses, requests, say))
        finally:
            say("[5/5] tearing down (servers, Serve, Ray)")
            for child in reversed(children):
                child.stop()
            # Ray's reaper normally takes the cluster down with its owner; this catches strays.
            from mesh.serving.cluster import stop_local_cluster

            stop_local_cluster(work / "ray")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_latency_bench(requests: int, json_out: str | None,
                      serve_env: Mapping[str, str] | None = None, say: Say = _say) -> int:
    """Run the bench, print the table; with ``json_out``, write
    ``{"direct": R, "mesh": R, "serve_composition": R}``, each R
    ``{"c1": {"p50_ms", "p99_ms", "rps"}, "c8": {...}}``. Returns the exit code.

    ``serve_env`` is set for every process of the bench's Ray cluster and for the processes
    holding handles (e.g. ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1``).
    """
    if requests < 1:
        print("mesh bench: --requests must be at least 1", file=sys.stderr)
        return 2
    # SIGTERM tears down like Ctrl-C does (children also get it through PR_SET_PDEATHSIG).
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        results = _run(requests, dict(serve_env or {}), say)
    except KeyboardInterrupt:
        print("mesh bench: interrupted; servers and Ray were stopped", file=sys.stderr)
        return 130
    except (RuntimeError, OSError, MeshError, grpc.RpcError) as e:
        print(f"mesh bench: {e}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    say("")
    say(format_table(results, requests))
    if json_out:
        Path(json_out).write_text(json.dumps({m: results[m] for m in MODES}, indent=2) + "\n",
                                  encoding="utf-8")
        say(f"figures written to {json_out}")
    return 0


def parse_env(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` strings → a dict; raises ValueError naming the malformed one."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--serve-env '{pair}' is not KEY=VALUE")
        out[key] = value
    return out
