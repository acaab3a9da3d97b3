"""`mesh bench routing` end to end, on small slices of real public data (../shared/data).

Runs the real command as a subprocess, as a user would: the real router and embedder, real
scikit-learn baselines. Slices keep it to seconds; the figures are checked for shape and sanity
(well above chance), never against the issue's targets, which are for full runs on held-out data.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow  # ~45 s on 2 shared cores: embeds, fits and routes three systems

SYSTEM_KEYS = {"accuracy", "macro_f1", "oos_recall", "oos_precision", "p50_ms", "p99_ms", "n"}


def _bench(tmp_path: Path, *args: str) -> tuple[dict[str, Any], str]:
    out = tmp_path / "routing.json"
    proc = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "bench", "routing", *args, "--json", str(out)],
        capture_output=True, text=True, timeout=300,  # hang guard; e5 folds are slow on busy cores
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr[-3000:]}"
    return json.loads(out.read_text()), proc.stdout


def _systems(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert set(doc["baselines"]) == {"tfidf_lr", "minilm_lr"}
    return {"router": doc["router"], **doc["baselines"]}


def _check_sane(system: str, res: dict[str, Any], n: int, has_oos: bool) -> None:
    assert set(res) >= SYSTEM_KEYS, system
    assert res["n"] == n, system
    for key in ("accuracy", "macro_f1"):
        assert 0.0 <= res[key] <= 1.0, (system, key, res[key])
    for key in ("oos_recall", "oos_precision"):
        if has_oos:
            assert 0.0 <= res[key] <= 1.0, (system, key, res[key])
        else:
            assert res[key] is None, (system, key)
    assert 0 < res["p50_ms"] <= res["p99_ms"] < 5_000, (system, res)
    assert all(math.isfinite(v) for v in res.values() if isinstance(v, float)), system


def test_clinc150_domains_slice(shared: Path, tmp_path: Path) -> None:
    data = shared / "data" / "clinc150" / "clinc150_trainval.json"
    doc, stdout = _bench(tmp_path, "--dataset", "clinc150-domains", "--train", str(data),
                         "--eval", str(data), "--max-train-per-class", "20", "--max-eval", "150")
    systems = _systems(doc)
    n = doc["router"]["n"]
    assert 140 <= n <= 160
    for name, res in systems.items():
        _check_sane(name, res, n, has_oos=True)
    # 10 domains: chance is 10%; even 20 examples per domain give far more.
    assert doc["router"]["accuracy"] >= 0.6, doc["router"]
    assert doc["baselines"]["minilm_lr"]["accuracy"] >= 0.5, doc["baselines"]
    assert doc["router"]["build_s"] > 0
    assert "'val' + 'oos_val'" in doc["setup"]["data"]
    for name in systems:
        assert name in stdout
    assert "router / tfidf_lr:" in stdout


def test_snips_hindi_folds(shared: Path, tmp_path: Path) -> None:
    data = shared / "data" / "snips_hindi" / "dev.tsv"
    doc, _ = _bench(tmp_path, "--dataset", "snips-hindi", "--train", str(data), "--folds", "3")
    systems = _systems(doc)
    assert doc["router"]["n"] == 138  # every row routed exactly once over the folds
    assert len(doc["setup"]["train_rows_per_fold"]) == 3
    for name, res in systems.items():
        _check_sane(name, res, 138, has_oos=False)
    # 7 intents: chance is ~14-23% (largest class). Character n-grams read Devanagari well.
    assert doc["baselines"]["tfidf_lr"]["accuracy"] >= 0.5, doc["baselines"]
    assert doc["router"]["accuracy"] >= 0.3, doc["router"]


def test_refuses_eval_and_folds_together(shared: Path, tmp_path: Path) -> None:
    data = shared / "data" / "snips_hindi" / "dev.tsv"
    proc = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "bench", "routing", "--dataset", "snips-hindi",
         "--train", str(data), "--eval", str(data), "--folds", "3"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    assert "not allowed with argument" in proc.stderr
