"""Dynamic batching on a real Ray Serve: concurrent requests share one model run, a bad request
fails alone, and `mesh bench expert` measures batched against unbatched."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from mesh.config import ExpertManifest, OnnxModelConfig
from mesh.errors import InvalidInput
from mesh.types import ExpertInput, ExpertOutput
from tests.support.models import iris_fields, iris_model

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]




def _fields(model: Path, **extra: Any) -> dict[str, Any]:
    return iris_fields(
        model, "iris-batched",
        model={"path": str(model), "task": "tensors",
               "batching": {"max_batch_size": 8, "wait_timeout_s": 0.05}},
        resources={"num_cpus": 0.25}, max_ongoing_requests=32, **extra)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return iris_model(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def batched(loopback_only_network: None, model: Path) -> Iterator[ExpertManifest]:
    import ray
    from ray import serve

    from mesh.serving.apps import deploy_experts

    manifest = ExpertManifest.model_validate(_fields(model))
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, num_cpus=2,
             log_to_driver=False, configure_logging=False)
    try:
        serve.start(proxy_location="Disabled")
        deploy_experts([manifest], progress=lambda _: None, timeout_s=180)
        yield manifest
    finally:
        serve.shutdown()
        ray.shutdown()


def test_concurrent_requests_share_a_run_and_errors_stay_apart(
    batched: ExpertManifest,
) -> None:
    import onnxruntime as ort

    from mesh.serving.handle_transport import ServeTransport

    path = batched.resolve(batched.model_as(OnnxModelConfig).path)
    name = ort.InferenceSession(str(path)).get_inputs()[0].name
    transport = ServeTransport([batched.key])
    good = ExpertInput(tensors={name: np.array([[6.7, 3.0, 5.2, 2.3]], dtype=np.float32)})
    bad = ExpertInput(tensors={name: np.zeros((1, 7), dtype=np.float32)})

    async def run() -> list[ExpertOutput | BaseException]:
        calls = [transport.infer(batched.name, bad if i == 3 else good, 30) for i in range(8)]
        return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(run())
    assert isinstance(results[3], InvalidInput) and name in str(results[3])
    answers = [r for i, r in enumerate(results) if i != 3]
    assert all(isinstance(r, ExpertOutput) for r in answers), answers
    outputs = [r for r in answers if isinstance(r, ExpertOutput)]
    labels = [int(next(v for k, v in o.tensors.items() if "label" in k).reshape(-1)[0])
              for o in outputs]
    assert labels == [2] * 7
    assert max(int(o.metadata["batch_size"]) for o in outputs) > 1, [o.metadata for o in outputs]


def test_bench_expert_prints_and_writes_both_variants(
    loopback_only_network: None, model: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "iris.yaml"
    fields = _fields(model)
    fields["model"].pop("batching")
    manifest.write_text(yaml.safe_dump(fields))
    out = tmp_path / "bench.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    done = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "bench", "expert", "--manifest", str(manifest),
         "--requests", "30", "--concurrency", "1,8", "--json", str(out)],
        capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "req/s x" in done.stdout and "c8" in done.stdout
    figures = json.loads(out.read_text())
    assert figures["expert"] == "iris-batched" and figures["requests"] == 30
    for variant in ("unbatched", "batched"):
        assert set(figures[variant]) == {"c1", "c8"}
        assert all(cell["rps"] > 0 and cell["p99_ms"] >= cell["p50_ms"]
                   for cell in figures[variant].values())
    assert figures["batched"]["c1"]["mean_batch"] == 1.0
