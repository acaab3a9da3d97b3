"""The RayService's serveConfigV2 is what Ray Serve accepts (Ray's own schema classes), and
deploys exactly what `mesh up` deploys: the builder returns the same application, and the
chart's per-expert overrides are the options mesh/serving/apps.py would derive."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from mesh.config import ExpertManifest, load_config, load_manifest, load_manifests
from mesh.serving import apps
from tests.helm.conftest import (
    CI_VALUES,
    Doc,
    local_manifest_path,
    one,
    serve_config,
)

Render = Callable[..., list[Doc]]
ids = [p.stem for p in CI_VALUES]


def _manifest(args: dict[str, Any]) -> ExpertManifest:
    given = args["manifest"]
    if isinstance(given, str):
        return load_manifest(local_manifest_path(given))
    return ExpertManifest.model_validate(given)


@pytest.mark.parametrize("values", CI_VALUES, ids=ids)
def test_serve_config_passes_rays_schema(render: Render, values: Path) -> None:
    from ray.serve.config import AutoscalingConfig
    from ray.serve.schema import ServeDeploySchema

    config = serve_config(render(values))
    schema = ServeDeploySchema.model_validate(config)
    checked = 0
    assert schema.proxy_location == "EveryNode"  # KubeRay's worker readiness probe needs it
    for app in schema.applications:
        assert app.import_path == "mesh.serving.builder:build_expert_app"
        assert app.route_prefix is None  # reached through handles, never over Serve's HTTP
        for deployment in app.deployments:
            # Unset options are Serve's DEFAULT sentinel; a set one is a dict Serve will apply.
            if isinstance(deployment.autoscaling_config, dict):
                AutoscalingConfig(**deployment.autoscaling_config)
                checked += 1
    assert checked == sum(
        "autoscaling_config" in d for a in config["applications"] for d in a.get("deployments", []))


@pytest.mark.parametrize("values", CI_VALUES, ids=ids)
def test_overrides_equal_what_apps_py_derives(render: Render, values: Path) -> None:
    """An override block replaces the manifest's block of that name, then maps to Serve's
    options exactly as mesh/serving/apps.py maps it."""
    docs = render(values)
    experts = {e["name"]: e for e in
               yaml.safe_load(_values_text(values)).get("experts", []) or []}
    for app in serve_config(docs)["applications"]:
        manifest = _manifest(app["args"])
        assert manifest.key == app["name"]  # the application is the expert version
        entry = experts.get(manifest.name, {})
        blocks = {k: entry[k] for k in ("resources", "autoscaling", "max_ongoing_requests")
                  if k in entry}
        effective = ExpertManifest.model_validate(
            {**manifest.model_dump(mode="json"), **blocks})
        expected = apps.deployment_options(effective)
        for override in app.get("deployments", []):
            assert override["name"] == manifest.name  # its one deployment: the expert
            for key, value in override.items():
                assert value == expected[key], (app["name"], key)


def _values_text(values: Path) -> str:
    return values.read_text()


@pytest.mark.parametrize("values", CI_VALUES, ids=ids)
def test_builder_builds_every_application(render: Render, values: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve's own builder call (the path KubeRay takes), without starting Ray."""
    from ray.serve._private.api import call_user_app_builder_with_args_if_necessary

    from mesh.serving.builder import build_expert_app

    monkeypatch.setenv("MESH_DEMO_ARTIFACTS", "/opt/mesh/artifacts")
    for app in serve_config(render(values))["applications"]:
        args = dict(app["args"])
        if isinstance(args["manifest"], str):
            args["manifest"] = str(local_manifest_path(args["manifest"]))
        built = call_user_app_builder_with_args_if_necessary(build_expert_app, args)
        deployment = built._bound_deployment
        assert app["name"] == f"{deployment.name}@{_manifest(app['args']).version}"
        expected = apps.deployment_options(_manifest(app["args"]).with_resolved_paths())
        assert deployment.ray_actor_options == expected["ray_actor_options"]
        assert deployment.max_ongoing_requests == expected["max_ongoing_requests"]


@pytest.mark.parametrize("values", CI_VALUES, ids=ids)
def test_mesh_config_loads_with_the_same_experts(render: Render, values: Path,
                                                 tmp_path: Path) -> None:
    """The ConfigMap's mesh.yaml is a valid MeshConfig naming the same experts as Serve."""
    docs = render(values)
    config_map = one(docs, "ConfigMap", "-config")
    data = yaml.safe_load(config_map["data"]["mesh.yaml"])
    inline = [d for d in docs if d["kind"] == "ConfigMap"
              and d["metadata"]["name"].endswith("-experts")]
    experts = []
    for entry in data["experts"]:
        if entry == "/etc/mesh/experts":
            folder = tmp_path / "experts"
            folder.mkdir()
            for name, text in inline[0]["data"].items():
                (folder / name).write_text(text)
            experts.append(str(folder))
        else:
            experts.append(str(local_manifest_path(entry)))
    data["experts"] = experts
    data["state_dir"] = str(tmp_path / "state")
    (tmp_path / "mesh.yaml").write_text(yaml.safe_dump(data))
    config = load_config(tmp_path / "mesh.yaml")
    assert config.orchestrator.host == "0.0.0.0"
    assert config.ray.address is not None and config.ray.address.endswith("-head-svc:6379")
    keys = sorted(m.key for m in load_manifests(config))
    assert keys == sorted(a["name"] for a in serve_config(docs)["applications"])
