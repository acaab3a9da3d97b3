"""`mesh bench admission` runs end to end on a small slice and reports every case."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_bench_admission_reports_each_case_and_both_counter_runs(tmp_path: Path) -> None:
    out = tmp_path / "admission.json"
    done = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "bench", "admission", "--calls", "50",
         "--seconds", "0.5", "--json", str(out)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    figures = json.loads(out.read_text())
    assert len(figures["per_call"]) == 4
    assert all(0 < c["p50_us"] <= c["p99_us"] for c in figures["per_call"].values())
    assert figures["counters_per_s"]["1_process"] > 0 and figures["counters_per_s"]["2_process"] > 0
    assert "2 processes / 1 process" in done.stdout
