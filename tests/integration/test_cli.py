"""The `mesh` command as a user meets it: fast help, clear errors, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "unit" / "configs"


def mesh(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mesh.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=REPO, env=env)


def test_help_does_not_import_ray_or_onnxruntime() -> None:
    code = ("import sys; from mesh.cli import build_parser; build_parser().format_help(); "
            "heavy = [m for m in ('ray', 'onnxruntime', 'sklearn') if m in sys.modules]; "
            "print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
    helped = mesh("--help")
    assert helped.returncode == 0
    for command in ("up", "down", "ask", "route", "experts", "bench"):
        assert command in helped.stdout


def test_up_with_a_bad_config_names_file_and_field(tmp_path: Path) -> None:
    config = tmp_path / "mesh.yaml"
    config.write_text(f"experts: [{BAD / 'bad_scaling_bounds.yaml'}]\nstate_dir: {tmp_path}\n")
    out = mesh("up", "-c", str(config))
    assert out.returncode == 2
    assert "bad_scaling_bounds.yaml" in out.stderr and "field 'autoscaling'" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "run.json").exists()  # refused before starting anything


def test_ask_without_a_running_mesh_says_how_to_start_one() -> None:
    out = mesh("ask", "hello", "--address", f"127.0.0.1:{free_port()}")
    assert out.returncode == 1
    assert "mesh up" in out.stderr and "Traceback" not in out.stderr


def test_up_refuses_missing_model_files_before_starting_anything(tmp_path: Path) -> None:
    config = tmp_path / "mesh.yaml"
    config.write_text(f"experts: [{BAD / 'good_expert.yaml'}]\nstate_dir: {tmp_path}\n")
    out = mesh("up", "-c", str(config))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "field 'model.path'" in out.stderr and "rust.onnx does not exist" in out.stderr
    assert "wheat-rust" in out.stderr
    assert not (tmp_path / "run.json").exists()
