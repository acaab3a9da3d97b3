"""deploy/Dockerfile cannot be built here (no image registry), so check what ties it to the
chart and the package: the tag the chart defaults to, the paths and user the chart relies on,
and that every file it copies exists."""

from __future__ import annotations

import re

import yaml

from tests.conftest import REPO
from tests.helm.conftest import CHART, IMAGE_MANIFESTS

DOCKERFILE = REPO / "deploy" / "Dockerfile"


def _text() -> str:
    return DOCKERFILE.read_text()


def test_chart_default_image_is_this_release() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    # pyproject's [project] version (tomllib is 3.11+, the package supports 3.10)
    version = re.search(r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    assert version is not None
    assert values["image"]["tag"] == ""  # empty: appVersion
    assert chart["appVersion"] == version.group(1)
    assert f"-t {values['image']['repository']}:{chart['appVersion']}" in _text()


def test_installs_the_package_with_the_lock() -> None:
    text = _text()
    assert "ARG PYTHON_IMAGE=python:3.11-slim" in text
    assert "pip install -c requirements.lock '.[review]'" in text
    assert "MESH_CACHE_DIR=/opt/mesh/cache /opt/venv/bin/python -m mesh.review_model" in text
    assert "python -m mesh.demo.build /opt/mesh/artifacts" in text
    assert "MESH_DEMO_ARTIFACTS=/opt/mesh/artifacts" in text


def test_copies_only_files_that_exist() -> None:
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", _text(), flags=re.M):
        for path in source.split():
            assert (REPO / path).exists(), path


def test_paths_and_user_match_the_chart() -> None:
    text = _text()
    assert f"COPY mesh/demo/manifests {IMAGE_MANIFESTS}" in text
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for expert in values["experts"]:
        assert expert["manifestFile"].startswith(IMAGE_MANIFESTS + "/")
        name = expert["manifestFile"].removeprefix(IMAGE_MANIFESTS + "/")
        assert (REPO / "mesh" / "demo" / "manifests" / name).is_file()
    assert "USER 1000:1000" in text  # the chart's runAsUser / fsGroup
    assert "wget" in text  # KubeRay's probes call it inside Ray containers


def test_chart_ray_version_is_the_locked_ray() -> None:
    """KubeRay checks features (token auth) against rayVersion; it must be what the image has."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    locked = re.search(r"^ray==(\S+)$", (REPO / "requirements.lock").read_text(), re.M)
    assert locked is not None
    assert values["ray"]["version"] == locked.group(1)
