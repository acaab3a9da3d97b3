"""mesh.serving.builder: the import path a Serve config (KubeRay's serveConfigV2) names. It
must return the same application `mesh up` deploys, and refuse bad args with the field named.
No Ray is started: building an application only binds a deployment."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from mesh.config import load_manifest
from mesh.errors import ConfigError
from mesh.serving import apps
from mesh.serving.builder import BuilderArgs, build_expert_app
from tests.helm.conftest import DEMO_MANIFESTS


@pytest.fixture(autouse=True)
def _artifacts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESH_DEMO_ARTIFACTS", "/opt/mesh/artifacts")


def test_builds_the_application_apps_py_builds_from_a_file() -> None:
    from ray.serve.deployment import Application

    path = DEMO_MANIFESTS / "breast-cancer.yaml"
    app = build_expert_app(BuilderArgs(manifest=str(path)))
    assert isinstance(app, Application)
    ours = app._bound_deployment
    theirs = apps.expert_application(load_manifest(path))._bound_deployment
    assert ours.name == theirs.name == "breast-cancer"
    assert ours.ray_actor_options == theirs.ray_actor_options
    assert ours._deployment_config == theirs._deployment_config
    assert ours.init_args == theirs.init_args  # the resolved manifest the replica loads
    assert ours.init_args[0]["model"]["path"] == "/opt/mesh/artifacts/breast_cancer.onnx"
    import ray

    assert not ray.is_initialized()  # building only binds; Serve starts replicas later


def test_builds_from_an_inline_manifest() -> None:
    data = yaml.safe_load((DEMO_MANIFESTS / "digits.yaml").read_text())
    data["autoscaling"] = {"min_replicas": 0, "max_replicas": 5}
    app = build_expert_app(BuilderArgs(manifest=data))
    config = app._bound_deployment._deployment_config
    assert (config.autoscaling_config.min_replicas, config.autoscaling_config.max_replicas) \
        == (0, 5)


def test_serve_validates_args_into_builder_args() -> None:
    """Serve passes the Serve config's args through the builder's annotation."""
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    with pytest.raises(ValidationError, match="manifests"):
        call_user_app_builder_with_args_if_necessary(
            build_expert_app, {"manifests": str(DEMO_MANIFESTS / "digits.yaml")})


def test_bad_inline_manifest_names_the_field() -> None:
    data = yaml.safe_load((DEMO_MANIFESTS / "digits.yaml").read_text())
    data["autoscaling"] = {"min_replicas": 3, "max_replicas": 1}
    with pytest.raises(ConfigError, match="max_replicas \\(1\\) is below min_replicas"):
        build_expert_app(BuilderArgs(manifest=data))


def test_missing_manifest_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        build_expert_app(BuilderArgs(manifest=str(tmp_path / "nope.yaml")))
