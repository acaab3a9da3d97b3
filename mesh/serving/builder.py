"""Serve application builder for declarative deploys (KubeRay ``serveConfigV2``, ``serve deploy``).

`mesh up` builds applications in Python; on Kubernetes, Serve builds them itself from a config
that names an import path and passes ``args``. This module is that import path:

    applications:
      - name: crop-yield
        import_path: mesh.serving.builder:build_expert_app
        args: {manifest: /opt/mesh/manifests/crop-yield.yaml}   # or the manifest inline

It returns exactly the application ``mesh.serving.apps.expert_application`` builds, so an
expert runs the same on a laptop and on KubeRay. Options the Serve config sets under
``deployments:`` (resources, autoscaling) override the manifest's, which is Serve's own rule.

No ``from __future__ import annotations`` here on purpose: Serve inspects the builder's
annotation at run time to validate ``args`` into ``BuilderArgs``, and a string annotation
would skip that validation.
"""

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from mesh.config import ExpertManifest, load_manifest
from mesh.errors import ConfigError


class BuilderArgs(BaseModel):
    """The ``args`` of one expert's application in a Serve config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    manifest: str | dict[str, Any]
    """A manifest file visible to every Ray pod, or the manifest's fields inline."""


def manifest_from_args(args: BuilderArgs) -> ExpertManifest:
    """The manifest ``args`` names or carries; a bad one raises ConfigError naming the field."""
    if isinstance(args.manifest, str):
        return load_manifest(args.manifest)
    try:
        return ExpertManifest.model_validate(args.manifest)
    except ValidationError as e:
        problems = [
            (".".join(str(p) for p in err["loc"]) or "(top level)",
             err["msg"].removeprefix("Value error, "), "")
            for err in e.errors()
        ]
        raise ConfigError("inline manifest in the Serve config's args", problems) from None


def build_expert_app(args: BuilderArgs) -> Any:
    """Serve calls this with an application's ``args``; returns the expert's bound deployment.

    The application is named after the expert version, ``name@version`` (its manifest's
    ``key``), which is how the orchestrator finds it (``serve.get_app_handle(key)``); the Serve
    config's application name must therefore equal the manifest's key (the chart renders it so).
    """
    from mesh.serving.apps import expert_application

    return expert_application(manifest_from_args(args))
