"""The demo build: real models from public data, idempotent, with manifests that fit a laptop."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mesh.config import load_config, load_manifest, load_manifests
from mesh.demo import build
from mesh.demo.questions import DEMO_QUESTIONS
from mesh.experts import build_expert
from mesh.experts.onnx.sidecar import TabularSidecar, TensorsSidecar
from mesh.types import ExpertInput

DEMO = Path(build.__file__).resolve().parent


def test_second_build_skips_and_leaves_files_alone(demo_artifacts: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in demo_artifacts.iterdir()}
    lines: list[str] = []
    assert build.build_demo(demo_artifacts, log=lines.append) == demo_artifacts.resolve()
    assert lines == [f"demo experts in {demo_artifacts.resolve()} are up to date"]
    assert {p.name: p.stat().st_mtime_ns for p in demo_artifacts.iterdir()} == before


def test_stamp_detects_missing_files_and_other_versions(
    demo_artifacts: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(demo_artifacts, copy)
    assert build.is_up_to_date(copy)
    (copy / "digits.onnx").unlink()
    assert not build.is_up_to_date(copy)
    shutil.copy(demo_artifacts / "digits.onnx", copy / "digits.onnx")
    stamp = json.loads((copy / build.STAMP).read_text(encoding="utf-8"))
    stamp["fingerprint"]["version"] = build.BUILD_VERSION - 1
    (copy / build.STAMP).write_text(json.dumps(stamp), encoding="utf-8")
    assert not build.is_up_to_date(copy)
    assert not build.is_up_to_date(tmp_path / "empty")


def test_cli_on_an_up_to_date_folder(
    demo_artifacts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert build.main([str(demo_artifacts)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_artifacts_are_small(demo_artifacts: Path) -> None:
    for files in build.FILES.values():
        for name in files:
            size = (demo_artifacts / name).stat().st_size
            assert 0 < size < 4_000_000, f"{name} is {size} bytes"


def test_models_are_credible_on_held_out_data(demo_artifacts: Path) -> None:
    """Metrics the build measured on its 20 % held-out split; a broken pipeline fails these."""

    def tabular(name: str) -> TabularSidecar:
        return TabularSidecar.model_validate_json((demo_artifacts / name).read_text("utf-8"))

    cancer = tabular("breast_cancer.json")
    assert cancer.metrics["accuracy"] >= 0.93 and cancer.data.n_train == 455
    assert cancer.labels == ["malignant", "benign"] and len(cancer.features) == 30
    assert tabular("crop_yield.json").metrics["mae"] < 7  # yields span 14-66 bushels/acre
    assert tabular("diabetes.json").metrics["mae"] < 55  # target spans 25-346
    digits = TensorsSidecar.model_validate_json((demo_artifacts / "digits.json").read_text("utf-8"))
    assert digits.metrics["accuracy"] >= 0.93
    docs = json.loads((demo_artifacts / "python_docs.json").read_text("utf-8"))
    assert 300 <= len(docs["passages"]) <= 2000
    assert {p["topic"] for p in docs["passages"]} >= {"for", "with", "yield", "import"}


def test_default_mesh_config_names_every_demo_expert() -> None:
    config = load_config(DEMO / "mesh.yaml")
    names = sorted(m.name for m in load_manifests(config))
    assert names == sorted(build.BUILDERS)
    assert config.state_dir == "~/.mesh"


@pytest.mark.parametrize("path", sorted((DEMO / "manifests").glob("*.yaml")), ids=lambda p: p.stem)
def test_manifest_shape(path: Path) -> None:
    m = load_manifest(path)
    assert m.name == path.stem
    assert 12 <= len(m.examples) <= 20
    assert len(set(m.examples)) == len(m.examples)
    assert m.languages == ["en"] and m.tags
    assert 0.25 <= m.resources.num_cpus <= 0.5
    assert (m.autoscaling.min_replicas, m.autoscaling.max_replicas) == (1, 2)
    assert m.model.path.startswith("${MESH_DEMO_ARTIFACTS}/")


def test_all_demo_experts_fit_two_cores_beside_the_orchestrator() -> None:
    total = sum(load_manifest(p).resources.num_cpus for p in (DEMO / "manifests").glob("*.yaml"))
    assert total <= 1.5


def test_examples_are_distinct_between_experts() -> None:
    seen: dict[str, str] = {}
    for path in (DEMO / "manifests").glob("*.yaml"):
        m = load_manifest(path)
        for example in m.examples:
            assert example.lower() not in seen, f"{m.name} repeats {seen.get(example.lower())}"
            seen[example.lower()] = m.name


def test_demo_questions_are_answered_by_their_experts(demo_artifacts: Path) -> None:
    assert 5 <= len(DEMO_QUESTIONS) <= 8
    examples = {
        e.lower() for p in (DEMO / "manifests").glob("*.yaml") for e in load_manifest(p).examples
    }
    for question, name in DEMO_QUESTIONS:
        assert question.lower() not in examples
        expert = build_expert(load_manifest(DEMO / "manifests" / f"{name}.yaml"))
        out = expert.infer(ExpertInput(text=question))
        assert out.text and out.metadata.get("n_given") != "0", (question, out.text)
        if name == "python-docs":
            assert float(out.metadata["score"]) >= 0.4, (question, out.metadata)
