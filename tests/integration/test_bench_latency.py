"""`mesh bench latency` end to end: its own Ray, three paths to one expert, figures in JSON.

Runs the real command as a subprocess (as a user would), with few requests so it stays well
under 90 s; the figures themselves are checked only for shape and sanity, never for speed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MODES = {"direct", "mesh", "serve_composition"}
LEVELS = {"c1", "c8"}
FIELDS = {"p50_ms", "p99_ms", "rps"}


def test_bench_latency_writes_sane_figures(
    loopback_only_network: None, demo_artifacts: Path, tmp_path: Path
) -> None:
    out = tmp_path / "lat.json"
    env = {**os.environ, "MESH_DEMO_ARTIFACTS": str(demo_artifacts),
           "MESH_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "bench", "latency", "--requests", "20",
         "--json", str(out)],
        env=env, capture_output=True, text=True, timeout=150,
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert "mesh vs serve_composition" in proc.stdout

    data = json.loads(out.read_text())
    assert set(data) == MODES
    for mode, result in data.items():
        assert set(result) == LEVELS, mode
        for level, cell in result.items():
            assert set(cell) == FIELDS, (mode, level)
            for field, value in cell.items():
                assert isinstance(value, float | int), (mode, level, field)
                assert math.isfinite(value) and value > 0, (mode, level, field, value)
            assert cell["p99_ms"] >= cell["p50_ms"], (mode, level, cell)
            assert cell["p50_ms"] < 30_000, (mode, level, cell)  # under the call deadline
