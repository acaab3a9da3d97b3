"""Every rendered object is valid for the API server that will receive it: built-in kinds
against Kubernetes' own schemas (kubernetes-validate, strict about unknown fields), the
RayService against the KubeRay CRD's schema, made strict the same way."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.conftest import CI_VALUES, Doc, by_kind

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="needs kubernetes-validate (pip install kubernetes-validate)")
jsonschema = pytest.importorskip("jsonschema")

KUBERNETES = "1.31"
"""Oldest Kubernetes the docs promise to support; its schemas are the strictest for us."""
CRD_KINDS = {"RayService", "ServiceMonitor"}

Render = Callable[..., list[Doc]]


def strict(schema: Any) -> Any:
    """The schema with unknown fields refused wherever it lists fields, as the API server does
    (it prunes or rejects them) unless a field says x-kubernetes-preserve-unknown-fields."""
    if isinstance(schema, dict):
        out = {k: strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="session")
def rayservice_validator(kuberay_crds: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the CRD is 1 MB of YAML
    crd = yaml.load((kuberay_crds / "ray.io_rayservices.yaml").read_text(), Loader=loader)
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    schema = strict(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    return jsonschema.Draft7Validator(schema)


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_builtin_objects_match_kubernetes_schemas(render: Render, values: Path) -> None:
    checked = 0
    for doc in render(values):
        if doc["kind"] in CRD_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, KUBERNETES, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']}: {e.message} at "
                        f"{'/'.join(str(p) for p in e.path)}")
        checked += 1
    assert checked >= 3  # ConfigMap, Deployment, Service at the least


@pytest.mark.parametrize("values", CI_VALUES, ids=lambda p: p.stem)
def test_rayservice_matches_the_kuberay_crd(render: Render, values: Path,
                                            rayservice_validator: Any) -> None:
    (rayservice,) = by_kind(render(values), "RayService")
    errors = sorted(rayservice_validator.iter_errors(rayservice), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_strict_crd_check_catches_a_misspelt_field(render: Render,
                                                   rayservice_validator: Any) -> None:
    (rayservice,) = by_kind(render(None), "RayService")
    bad = copy.deepcopy(rayservice)
    bad["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["maxReplica"] = 3
    assert any("maxReplica" in e.message for e in rayservice_validator.iter_errors(bad))


def test_servicemonitor_has_the_operator_fields(render: Render) -> None:
    """No ServiceMonitor CRD ships offline; check the fields Prometheus Operator requires."""
    monitors = [d for d in render(CI_VALUES[[p.stem for p in CI_VALUES].index(
        "hub-production-values")]) if d["kind"] == "ServiceMonitor"]
    assert len(monitors) == 1
    spec = monitors[0]["spec"]
    assert monitors[0]["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(spec) == {"selector", "endpoints"}
    for endpoint in spec["endpoints"]:
        assert set(endpoint) <= {"port", "path", "interval"} and endpoint["port"] == "metrics"
