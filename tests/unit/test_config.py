"""Manifests and mesh configs: good files load, bad ones name file, field, problem and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.config import load_config, load_manifest, load_manifests
from mesh.errors import ConfigError

FIXTURES = Path(__file__).parent / "configs"


def test_good_manifest_loads_with_defaults() -> None:
    m = load_manifest(FIXTURES / "good_expert.yaml")
    assert m.name == "wheat-rust"
    assert m.autoscaling.min_replicas == 0 and m.autoscaling.max_replicas == 3
    assert m.resources.num_cpus == 0.5
    assert m.resolve(m.model.path) == (FIXTURES / "models" / "rust.onnx").resolve()


@pytest.mark.parametrize(
    ("fixture", "field", "words"),
    [
        ("bad_unknown_field.yaml", "autoscaling.max_replica", "Extra inputs"),
        ("bad_scaling_bounds.yaml", "autoscaling", "max_replicas (1) is below min_replicas (2)"),
        ("bad_name.yaml", "name", "not a valid expert name"),
        ("bad_runtime.yaml", "runtime", "'onnx'"),
        ("bad_few_examples.yaml", "examples", "at least 3"),
        ("bad_gpu_accel.yaml", "resources", "set num_gpus > 0"),
    ],
)
def test_bad_manifest_names_file_field_and_fix(fixture: str, field: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_manifest(FIXTURES / fixture)
    message = str(info.value)
    assert fixture in message
    assert f"field '{field}'" in message, message
    assert words in message, message


def test_unknown_field_suggests_a_fix() -> None:
    with pytest.raises(ConfigError) as info:
        load_manifest(FIXTURES / "bad_unknown_field.yaml")
    assert "Fix: remove it, or check its spelling" in str(info.value)


def test_not_yaml_and_missing_file() -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_manifest(FIXTURES / "bad_syntax.yaml")
    with pytest.raises(ConfigError, match="does not exist"):
        load_manifest(FIXTURES / "nope.yaml")


def test_mesh_config_requires_experts(tmp_path: Path) -> None:
    path = tmp_path / "mesh.yaml"
    path.write_text("experts: []\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "field 'experts'" in str(info.value)


def test_duplicate_expert_names_name_both_files(tmp_path: Path) -> None:
    good = (FIXTURES / "good_expert.yaml").read_text()
    (tmp_path / "experts").mkdir()
    (tmp_path / "experts" / "a.yaml").write_text(good)
    (tmp_path / "experts" / "b.yaml").write_text(good)
    (tmp_path / "mesh.yaml").write_text("experts: [experts]\n")
    config = load_config(tmp_path / "mesh.yaml")
    with pytest.raises(ConfigError) as info:
        load_manifests(config)
    assert "already defined by" in str(info.value) and "a.yaml" in str(info.value)


def test_two_versions_of_one_expert_load_side_by_side(tmp_path: Path) -> None:
    good = (FIXTURES / "good_expert.yaml").read_text()
    (tmp_path / "experts").mkdir()
    (tmp_path / "experts" / "a.yaml").write_text(good)
    (tmp_path / "experts" / "b.yaml").write_text(good + "\nversion: 9.1.0\n")
    (tmp_path / "mesh.yaml").write_text("experts: [experts]\n")
    manifests = load_manifests(load_config(tmp_path / "mesh.yaml"))
    assert len({m.name for m in manifests}) == 1
    assert {m.key.split("@")[1] for m in manifests} == {manifests[0].version, "9.1.0"}


def test_a_version_with_a_space_is_refused_with_the_allowed_shape(tmp_path: Path) -> None:
    bad = (FIXTURES / "good_expert.yaml").read_text() + "\nversion: 1.0 beta\n"
    (tmp_path / "x.yaml").write_text(bad)
    with pytest.raises(ConfigError) as info:
        load_manifest(tmp_path / "x.yaml")
    assert "version" in str(info.value) and "letters, digits, dots" in str(info.value)


def test_demo_config_is_valid() -> None:
    demo = Path(__file__).resolve().parents[2] / "mesh" / "demo" / "mesh.yaml"
    config = load_config(demo)
    manifests = load_manifests(config)
    assert len(manifests) >= 4
    assert len({m.organization for m in manifests}) >= 3
