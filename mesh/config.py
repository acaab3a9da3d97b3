"""Manifests and the mesh config: typed models, YAML loading, errors that name file, field and fix.

Everything a user writes is a pydantic model that forbids unknown keys, so a typo in a manifest
fails at load time with the file, the field and a fix, instead of being silently ignored.
Requests on the wire are a different surface and tolerate unknown fields (see the proto docs).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mesh.errors import ConfigError

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ResourcesConfig(_Strict):
    """What one replica of the expert needs; passed to Ray Serve's ray_actor_options."""

    num_cpus: float = Field(1.0, ge=0)
    """CPUs reserved per replica (fractions allowed, e.g. 0.5)."""
    num_gpus: float = Field(0.0, ge=0)
    """GPUs reserved per replica (0 for CPU experts)."""
    memory_mb: int | None = Field(None, ge=1)
    """Memory reserved per replica, MiB; None reserves nothing."""
    accelerator_type: str | None = None
    """Ray accelerator type (e.g. "A10G"); only with num_gpus > 0."""

    @model_validator(mode="after")
    def _accelerator_needs_gpu(self) -> ResourcesConfig:
        if self.accelerator_type and self.num_gpus <= 0:
            raise ValueError(
                f"accelerator_type is '{self.accelerator_type}' but num_gpus is {self.num_gpus}; "
                "set num_gpus > 0 or remove accelerator_type"
            )
        return self


class AutoscalingConfig(_Strict):
    """Per-expert autoscaling, passed through to Ray Serve's autoscaling_config."""

    min_replicas: int = Field(1, ge=0)
    """Replicas kept when idle; 0 lets an idle expert scale to zero."""
    max_replicas: int = Field(1, ge=1)
    """Upper bound on replicas."""
    initial_replicas: int | None = Field(None, ge=0)
    """Replicas started at deploy time (default: min_replicas)."""
    target_ongoing_requests: float = Field(2.0, gt=0)
    """Requests in flight per replica the autoscaler aims for."""
    upscale_delay_s: float = Field(30.0, ge=0)
    """How long load must stay high before adding replicas."""
    downscale_delay_s: float = Field(600.0, ge=0)
    """How long load must stay low before removing replicas."""

    @model_validator(mode="after")
    def _bounds(self) -> AutoscalingConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas}); "
                "raise max_replicas or lower min_replicas"
            )
        if self.initial_replicas is not None and not (
            self.min_replicas <= self.initial_replicas <= self.max_replicas
        ):
            raise ValueError(
                f"initial_replicas ({self.initial_replicas}) must lie between min_replicas "
                f"({self.min_replicas}) and max_replicas ({self.max_replicas})"
            )
        return self


class OnnxSessionConfig(_Strict):
    """ONNX Runtime session options for a CPU expert."""

    intra_op_threads: int = Field(1, ge=0)
    """Threads inside one operator (0: ONNX Runtime decides)."""
    inter_op_threads: int = Field(1, ge=0)
    """Threads across operators (0: ONNX Runtime decides)."""
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    """Graph optimisation level."""


class OnnxModelConfig(_Strict):
    """An ONNX model and the task adapter that turns requests into its tensors and back."""

    path: str
    """The .onnx file: absolute, or relative to the manifest's folder; ${VAR} expands."""
    task: Literal["tabular-classification", "tabular-regression", "retrieval", "tensors"]
    """How requests map onto the model: a tabular model, a retrieval index, or raw tensors."""
    sidecar: str | None = None
    """JSON written with the model (feature names, labels, passages...); relative like path."""
    embedder: str | None = None
    """For retrieval: the embedding model, "minilm-int8" (bundled) or a path to an .onnx file."""
    session: OnnxSessionConfig = OnnxSessionConfig()
    """ONNX Runtime session options."""

    @model_validator(mode="after")
    def _task_needs(self) -> OnnxModelConfig:
        if self.task != "tensors" and not self.sidecar:
            raise ValueError(f"task '{self.task}' needs a sidecar file (set model.sidecar)")
        if self.task == "retrieval" and not self.embedder:
            raise ValueError("task 'retrieval' needs model.embedder (e.g. 'minilm-int8')")
        return self


class ExpertManifest(_Strict):
    """An expert's card: who owns it, what it knows, how to run and scale it."""

    name: str
    """Unique name: lowercase letters, digits and dashes, at most 63 characters."""
    version: str = "1.0.0"
    """Version; part of the expert's identity."""
    organization: str
    """Organization that owns and answers for the expert."""
    description: str = Field(min_length=10)
    """What the expert knows, in a sentence or two; the router reads it."""
    examples: list[str] = Field(min_length=3)
    """Requests the expert is good at (at least 3); the router learns from them."""
    tags: list[str] = []
    """Domain tags (healthcare, agriculture, ...)."""
    languages: list[str] = ["en"]
    """Languages the expert answers in (BCP 47 codes)."""
    input_kind: Literal["text", "tensors", "text+tensors"] = "text"
    """What the expert takes: text, named tensors, or either."""
    runtime: Literal["onnx"]
    """Runtime that runs the model."""
    model: OnnxModelConfig
    """The model and how requests map onto it."""
    resources: ResourcesConfig = ResourcesConfig()
    """Per-replica resources."""
    autoscaling: AutoscalingConfig = AutoscalingConfig()
    """Autoscaling bounds and targets."""
    max_ongoing_requests: int = Field(8, ge=1)
    """Requests one replica accepts at once before Serve queues them."""

    source_dir: Path | None = Field(None, exclude=True)
    """Folder of the manifest file; relative model paths resolve against it (set by the loader)."""

    @field_validator("name")
    @classmethod
    def _name_shape(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                f"'{v}' is not a valid expert name; use lowercase letters, digits and dashes "
                "(e.g. 'crop-disease'), at most 63 characters"
            )
        return v

    @field_validator("examples")
    @classmethod
    def _examples_not_blank(cls, v: list[str]) -> list[str]:
        blank = [i for i, e in enumerate(v) if not e.strip()]
        if blank:
            raise ValueError(f"examples {blank} are blank; every example must be a real request")
        return v

    def with_resolved_paths(self) -> ExpertManifest:
        """A copy whose model files are absolute paths, so it can run on any process or host
        that sees the same files (Serve replicas do not inherit the CLI's environment)."""
        model = self.model.model_copy(
            update={
                "path": str(self.resolve(self.model.path)),
                "sidecar": str(self.resolve(self.model.sidecar)) if self.model.sidecar else None,
            }
        )
        return self.model_copy(update={"model": model})

    def resolve(self, relative: str) -> Path:
        """Expand ${VARS} and resolve a model-relative path against the manifest's folder."""
        expanded = Path(os.path.expandvars(relative)).expanduser()
        if expanded.is_absolute() or self.source_dir is None:
            return expanded
        return (self.source_dir / expanded).resolve()


class OrchestratorConfig(_Strict):
    """The hub's gRPC server."""

    host: str = "127.0.0.1"
    """Address to bind; loopback by default so nothing is exposed unless asked."""
    port: int = Field(50051, ge=0, le=65535)
    """Port to bind (0 picks a free one)."""
    max_text_bytes: int = Field(1_000_000, ge=1)
    """Largest text accepted (UTF-8 bytes); larger gets RESOURCE_EXHAUSTED."""
    max_message_bytes: int = Field(16 * 1024 * 1024, ge=1024)
    """Largest gRPC message the server receives."""
    default_timeout_s: float = Field(30.0, gt=0)
    """Deadline for a request whose client set none."""
    history_turns: int = Field(4, ge=0)
    """Previous turns passed to the router and experts as context."""
    session_db: str = "sessions.sqlite3"
    """SQLite file for sessions, relative to state_dir."""
    grace_s: float = Field(5.0, ge=0)
    """Seconds in-flight requests get to finish on shutdown."""


class RayConfig(_Strict):
    """How the mesh reaches Ray."""

    address: str | None = None
    """Existing cluster to join ("host:port"); None starts a local one."""
    node_ip: str = "127.0.0.1"
    """IP Ray advertises; loopback keeps a laptop mesh off the network."""
    gcs_port: int = Field(6380, ge=1, le=65535)
    """GCS port of a local cluster started by `mesh up`."""
    num_cpus: int | None = Field(None, ge=1)
    """CPUs a local cluster offers (None: all of them)."""
    namespace: str = "mesh"
    """Ray namespace of the mesh's own actors."""


class RouterConfig(_Strict):
    """The first router: nearest manifest examples in embedding space."""

    threshold: float | None = Field(None, ge=0, le=1)
    """Score below which a request is out of scope; None calibrates it from the manifests."""
    multi_expert_margin: float = Field(0.03, ge=0, le=1)
    """Other experts within this margin of the best one also answer (compound requests)."""
    max_experts: int = Field(3, ge=1)
    """Most experts one request fans out to."""
    fallback_expert: str | None = None
    """Expert that answers out-of-scope requests; None answers 'no expert covers this'."""


class MeshConfig(_Strict):
    """The root config of one mesh (hub): experts, orchestrator, Ray, router."""

    experts: list[str] = Field(min_length=1)
    """Manifest files or folders of manifests; relative to this file."""
    state_dir: str = "~/.mesh"
    """Where sessions, logs and pid files live."""
    orchestrator: OrchestratorConfig = OrchestratorConfig()
    """The hub's gRPC server."""
    ray: RayConfig = RayConfig()
    """How to reach Ray."""
    router: RouterConfig = RouterConfig()
    """Router settings."""

    source_dir: Path | None = Field(None, exclude=True)
    """Folder of the config file (set by the loader)."""

    def state_path(self) -> Path:
        """The state folder, created if missing; the MESH_STATE_DIR variable overrides it."""
        path = Path(os.path.expandvars(os.environ.get("MESH_STATE_DIR") or self.state_dir))
        path = path.expanduser()
        if not path.is_absolute() and self.source_dir is not None:
            path = self.source_dir / path
        path.mkdir(parents=True, exist_ok=True)
        return path

    def manifest_paths(self) -> list[Path]:
        """Every manifest file named by ``experts`` (folders expand to their *.yaml files)."""
        base = self.source_dir or Path.cwd()
        found: list[Path] = []
        for entry in self.experts:
            path = Path(os.path.expandvars(entry)).expanduser()
            path = path if path.is_absolute() else base / path
            if path.is_dir():
                found.extend(sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml")))
            else:
                found.append(path)
        return found


_FIXES = {
    "extra_forbidden": "remove it, or check its spelling against docs/architecture.md",
    "missing": "add it",
    "literal_error": "use one of the listed values",
    "too_short": "add more entries",
}


def _problems(err: ValidationError) -> list[tuple[str, str, str]]:
    out = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        out.append((field, msg, _FIXES.get(e["type"], "")))
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), [("(file)", "does not exist", "check the path")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(
            str(path), [("(file)", f"is not valid YAML: {e}", "fix the syntax")]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            str(path), [("(top level)", "must be a mapping of fields", "write `name: value` lines")]
        )
    return data


_Loaded = TypeVar("_Loaded", ExpertManifest, MeshConfig)


def _load(path: str | Path, model: type[_Loaded]) -> _Loaded:
    path = Path(path)
    data = _read_yaml(path)
    try:
        return model(**data, source_dir=path.resolve().parent)
    except ValidationError as e:
        raise ConfigError(str(path), _problems(e)) from None


def load_manifest(path: str | Path) -> ExpertManifest:
    """Load one expert manifest; raises ConfigError naming the file, field and fix."""
    return _load(path, ExpertManifest)


def load_config(path: str | Path) -> MeshConfig:
    """Load the mesh config; raises ConfigError naming the file, field and fix."""
    return _load(path, MeshConfig)


def load_manifests(config: MeshConfig) -> list[ExpertManifest]:
    """Load every manifest of a mesh; duplicate names are an error naming both files."""
    manifests: list[ExpertManifest] = []
    seen: dict[str, Path] = {}
    paths = config.manifest_paths()
    if not paths:
        raise ConfigError(
            "mesh config", [("experts", "names no manifest files", "point it at *.yaml manifests")]
        )
    for p in paths:
        m = load_manifest(p)
        if m.name in seen:
            raise ConfigError(
                str(p),
                [("name", f"'{m.name}' is already used by {seen[m.name]}", "rename one expert")],
            )
        seen[m.name] = p
        manifests.append(m)
    return manifests


def unset_variables(text: str) -> list[str]:
    """The ``$VAR`` / ``${VAR}`` names in ``text`` that the environment does not set (in order,
    once each): what to name when a path that uses them points nowhere."""
    names = re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text)
    return [n for n in dict.fromkeys(names) if n not in os.environ]


def check_model_files(manifest: ExpertManifest) -> None:
    """Refuse a manifest whose model files are missing, before anything is deployed.

    Loading a manifest does not need its files (a hub routes to experts it does not host);
    deploying one does, and a missing file found here is one clear error instead of replicas
    failing to start on Ray Serve.
    """
    problems = []
    for field, relative in (("model.path", manifest.model.path),
                            ("model.sidecar", manifest.model.sidecar)):
        if relative and not manifest.resolve(relative).is_file():
            unset = unset_variables(relative)
            fix = (f"set {', '.join(unset)}" if unset
                   else "build the model first, or correct the path")
            problems.append((field, f"file {manifest.resolve(relative)} does not exist", fix))
    if problems:
        where = manifest.source_dir or "?"
        raise ConfigError(f"manifest of expert '{manifest.name}' (in {where})", problems)
