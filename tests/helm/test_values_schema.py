"""Bad values are refused before anything renders, each with a message that says what is
wrong; and the schema's expert blocks stay in step with mesh/config.py."""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from mesh.config import AutoscalingConfig, ExpertManifest, ResourcesConfig
from tests.helm.conftest import BAD_VALUES, CHART, run_helm, template_args


def _expected(values: Path) -> str:
    first = values.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{values.name}: first line must be '# expect: ...'"
    return first.removeprefix("# expect: ").strip()


@pytest.mark.parametrize("values", BAD_VALUES, ids=lambda p: p.stem)
def test_bad_values_are_refused_with_a_clear_message(helm: str, values: Path) -> None:
    out = run_helm(helm, *template_args(values))
    assert out.returncode != 0, f"{values.name} rendered, but should have been refused"
    assert _expected(values) in out.stderr, out.stderr


def test_there_are_bad_values_files() -> None:
    assert len(BAD_VALUES) >= 10


def _schema() -> dict[str, typing.Any]:
    schema: dict[str, typing.Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema


@pytest.mark.parametrize(("definition", "model"), [
    ("manifest", ExpertManifest),
    ("expertResources", ResourcesConfig),
    ("expertAutoscaling", AutoscalingConfig),
])
def test_schema_blocks_mirror_the_config_models(definition: str,
                                                model: type[typing.Any]) -> None:
    fields = {name for name, f in model.model_fields.items() if not f.exclude}
    assert set(_schema()["definitions"][definition]["properties"]) == fields


def test_schema_runtimes_are_the_manifests_runtimes() -> None:
    runtimes = typing.get_args(ExpertManifest.model_fields["runtime"].annotation)
    assert sorted(_schema()["definitions"]["manifest"]["properties"]["runtime"]["enum"]) == \
        sorted(runtimes)
