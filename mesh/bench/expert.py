"""`mesh bench expert`: one ONNX expert on Ray Serve, with and without dynamic batching.

Both variants of the same manifest are deployed side by side on a Ray cluster the bench starts
for itself (loopback, its own temp folder and token, torn down at the end): ``unbatched`` runs
one model call per request (``ExpertReplica``), ``batched`` gathers concurrent requests with
``@serve.batch`` into one call (``BatchedExpertReplica``). Each gets one replica with the same
CPU reservation and ``max_ongoing_requests``, and is reached the way the orchestrator reaches
experts (``ServeTransport``, a DeploymentHandle in this process). At each concurrency level the
two are measured one after the other, ``requests`` calls each, after a warm-up.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mesh.bench.loadgen import Stats, run_load
from mesh.config import BatchingConfig, ExpertManifest, OnnxModelConfig
from mesh.errors import MeshError
from mesh.types import ExpertInput

VARIANTS = ("unbatched", "batched")
DEFAULT_EXPERT = "breast-cancer"
DEFAULT_LEVELS = (1, 8, 32)
CALL_TIMEOUT_S = 30.0
WARMUP_CALLS = 40
BENCH_NUM_CPUS = 0.25  # the same reservation for both variants: fits any machine

Say = Callable[[str], None]
Results = dict[str, dict[str, dict[str, float]]]


def _say(text: str) -> None:
    print(text, flush=True)


def demo_manifest(name: str, say: Say) -> ExpertManifest:
    """A bundled demo expert's manifest, its model built into the state folder if needed."""
    from mesh.cli.common import DEMO_CONFIG, demo_artifacts_dir
    from mesh.config import load_config, load_manifests
    from mesh.demo.build import build_demo

    config = load_config(DEMO_CONFIG)
    out = demo_artifacts_dir(config.state_path())
    say(f"demo experts in {out} (built from public data on the first run)")
    build_demo(out)
    manifests = {m.name: m for m in load_manifests(config)}
    if name not in manifests:
        raise ValueError(f"no demo expert '{name}'; demo experts: {sorted(manifests)}")
    return manifests[name]


def variants(m: ExpertManifest, batching: BatchingConfig, max_ongoing: int
             ) -> dict[str, ExpertManifest]:
    """The two manifests the bench deploys: same model, with and without batching."""
    if not isinstance(m.model, OnnxModelConfig):
        raise ValueError(f"expert '{m.name}' has runtime '{m.runtime}'; the bench compares "
                         "batching of onnx experts")
    out = {}
    for variant in VARIANTS:
        model = m.model.model_copy(
            update={"batching": batching if variant == "batched" else None})
        out[variant] = m.with_resolved_paths().model_copy(update={
            "name": f"{m.name}-{variant}", "model": model,
            "resources": m.resources.model_copy(update={"num_cpus": BENCH_NUM_CPUS}),
            "autoscaling": m.autoscaling.model_copy(
                update={"min_replicas": 1, "max_replicas": 1, "initial_replicas": None}),
            "max_ongoing_requests": max_ongoing,
        })
    return out


def sample_request(m: ExpertManifest) -> ExpertInput:
    """What every call sends: the manifest's first example, or zeros shaped like the model's
    first input for tensor-only experts."""
    if m.input_kind != "tensors":
        return ExpertInput(text=m.examples[0])
    import onnxruntime as ort

    model = m.model_as(OnnxModelConfig)
    first = ort.InferenceSession(str(m.resolve(model.path))).get_inputs()[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in first.shape]
    dtype = np.float64 if "double" in first.type else np.float32
    return ExpertInput(tensors={first.name: np.zeros(shape, dtype=dtype)})


def _start_ray(work: Path) -> None:
    """A local cluster with a token of its own. Ray reads RAY_AUTH_* into its C++ config when
    first imported, so the config is refreshed if Ray was imported before the token existed."""
    already_imported = "ray" in sys.modules
    token = work / "ray_auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    os.environ.update({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)})
    import ray
    from ray import serve

    if already_imported:
        from ray._raylet import Config  # type: ignore[attr-defined]

        Config.initialize("")
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False,
             configure_logging=False, namespace="mesh-bench-expert",
             _temp_dir=str(work / "ray"))
    serve.start(proxy_location="Disabled")


def _stop_ray() -> None:
    import ray
    from ray import serve

    try:
        serve.shutdown()
    finally:
        ray.shutdown()


async def _measure(apps: dict[str, str], request: ExpertInput, levels: Sequence[int],
                   requests: int, say: Say) -> Results:
    from mesh.serving.handle_transport import ServeTransport

    transport = ServeTransport(list(apps.values()))
    batch_sizes: list[int] = []

    def call_for(app: str) -> Callable[[], Any]:
        async def call() -> None:
            out = await transport.infer(app, request, CALL_TIMEOUT_S)
            if "batch_size" in out.metadata:
                batch_sizes.append(int(out.metadata["batch_size"]))
        return call

    calls = {variant: call_for(app) for variant, app in apps.items()}
    for variant in VARIANTS:
        await run_load(calls[variant], WARMUP_CALLS, 8)
    say(f"warm-up done ({WARMUP_CALLS} calls each)")
    results: Results = {variant: {} for variant in VARIANTS}
    for level in levels:
        for variant in VARIANTS:
            batch_sizes.clear()
            stats: Stats = await run_load(calls[variant], requests, level)
            cell = stats.as_dict()
            if batch_sizes:
                cell["mean_batch"] = round(sum(batch_sizes) / len(batch_sizes), 2)
            results[variant][f"c{level}"] = cell
            say(f"  {variant:<9} c={level:<3} {stats.rps:8.1f} req/s  p50 {stats.p50_ms:7.2f} ms"
                f"  p99 {stats.p99_ms:7.2f} ms")
    await transport.close()
    return results


def format_table(results: Results, expert: str, requests: int, batching: BatchingConfig) -> str:
    """Batched vs unbatched, side by side per concurrency level."""
    wait_ms = batching.wait_timeout_s * 1000
    lines = [
        f"expert {expert}: {requests} requests per cell, one replica each, "
        f"batches of at most {batching.max_batch_size}, wait {wait_ms:g} ms",
        f"{'':<6}| {'unbatched':^26} | {'batched':^38} |",
        f"{'':<6}| {'req/s':>9} {'p99 ms':>8} {'p50 ms':>7} | {'req/s':>9} {'p99 ms':>8} "
        f"{'p50 ms':>7} {'batch':>9} | {'req/s x':>7}",
    ]
    for level in results["unbatched"]:
        u, b = results["unbatched"][level], results["batched"][level]
        lines.append(
            f"{level:<6}| {u['rps']:9.1f} {u['p99_ms']:8.2f} {u['p50_ms']:7.2f} | "
            f"{b['rps']:9.1f} {b['p99_ms']:8.2f} {b['p50_ms']:7.2f} "
            f"{b.get('mean_batch', 0):9.2f} | {b['rps'] / u['rps']:7.2f}"
        )
    return "\n".join(lines)


def run_expert_bench(
    manifest: ExpertManifest, requests: int, levels: Sequence[int], batching: BatchingConfig,
    json_out: str | None, say: Say = _say,
) -> int:
    """Deploy both variants, measure, print the table; with ``json_out`` write
    ``{"expert", "requests", "batching", "unbatched": R, "batched": R}``, each R
    ``{"c1": {"p50_ms", "p99_ms", "rps"[, "mean_batch"]}, ...}``. Returns the exit code."""
    from mesh.config import check_model_files
    from mesh.serving.apps import deploy_experts

    if requests < 1 or not levels or min(levels) < 1:
        print("mesh bench expert: --requests and every concurrency must be at least 1",
              file=sys.stderr)
        return 2
    try:
        check_model_files(manifest)
        pair = variants(manifest, batching, max(max(levels), manifest.max_ongoing_requests))
        request = sample_request(manifest)
        with tempfile.TemporaryDirectory(prefix="mesh-bench-expert-") as tmp:
            say("starting a Ray cluster of the bench's own (loopback)")
            _start_ray(Path(tmp))
            try:
                deploy_experts(list(pair.values()), progress=say, timeout_s=300)
                apps = {variant: m.key for variant, m in pair.items()}
                results = asyncio.run(_measure(apps, request, levels, requests, say))
            finally:
                _stop_ray()
    except KeyboardInterrupt:
        print("mesh bench expert: interrupted; Ray was stopped", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError, MeshError) as e:
        print(f"mesh bench expert: {e}", file=sys.stderr)
        return 1
    say("")
    say(format_table(results, manifest.name, requests, batching))
    if json_out:
        figures = {"expert": manifest.name, "requests": requests,
                   "batching": batching.model_dump(), **results}
        Path(json_out).write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        say(f"figures written to {json_out}")
    return 0
