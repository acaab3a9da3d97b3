"""docs/helm-values.md documents every value of values.yaml (and names no value that is gone)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import yaml

from tests.conftest import REPO
from tests.helm.conftest import CHART

DOC = REPO / "docs" / "helm-values.md"
FREE_FORM = {"resources", "rayStartParams", "settings", "router", "volume", "labels",
             "annotations", "nodeSelector", "affinity"}
"""Values whose keys are the user's (Kubernetes or mesh config objects): documented whole."""


def _paths(value: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(value, dict) and value and prefix.rsplit(".", 1)[-1] not in FREE_FORM:
        for key, sub in value.items():
            yield from _paths(sub, f"{prefix}.{key}" if prefix else key)
    else:
        yield prefix


def test_every_value_is_documented() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    documented = set(re.findall(r"^\| `([^`]+)` \|", DOC.read_text(), flags=re.M))
    # `experts[].name` documents the list `experts` field by field
    documented = {d.split("[]", 1)[0] for d in documented}
    paths = set(_paths(values))
    missing = paths - documented
    assert not missing, f"values not in {DOC.name}: {sorted(missing)}"
    stale = documented - paths
    assert not stale, f"{DOC.name} documents values that do not exist: {sorted(stale)}"
