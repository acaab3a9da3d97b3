"""`mesh bench autoscale` end to end with short phases: it runs, loads three experts from zero
and back, writes the JSON the issue asks for and a plot, and no request fails."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

KEYS = {"replica_seconds", "ratio_to_ideal", "failed_requests", "scale_to_zero_s", "scale_up_s",
        "cold_start_s", "p99_ms_during_scale_up"}


def test_bench_autoscale_writes_its_figures(loopback_only_network: None, demo_artifacts: Path,
                                            tmp_path: Path) -> None:
    out, png = tmp_path / "autoscale.json", tmp_path / "autoscale.png"
    run = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "bench", "autoscale", "--idle-s", "2", "--low-s", "6",
         "--high-s", "8", "--cooldown-s", "25", "--json", str(out), "--plot", str(png)],
        capture_output=True, text=True, timeout=400, cwd=REPO)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result) >= KEYS
    assert set(result["replica_seconds"]) == {"mesh", "peak_fleet", "ideal"}
    assert result["failed_requests"] == 0, result["errors"]
    assert result["requests"] > 0
    assert 0 < result["replica_seconds"]["mesh"] < result["replica_seconds"]["peak_fleet"]
    assert result["cold_starts"] >= 1  # every expert started the run at zero replicas
    assert png.stat().st_size > 10_000
