"""Manifests and the mesh config: typed models, YAML loading, errors that name file, field and fix.

Everything a user writes is a pydantic model that forbids unknown keys, so a typo in a manifest
fails at load time with the file, the field and a fix, instead of being silently ignored.
Requests on the wire are a different surface and tolerate unknown fields (see the proto docs).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mesh.errors import ConfigError, ModelLoadError
from mesh.types import expert_key

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,39}$")


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
    downscale_to_zero_delay_s: float | None = Field(None, ge=0)
    """How long an expert at one replica must stay idle before releasing it (min_replicas 0);
    None uses downscale_delay_s."""
    look_back_period_s: float | None = Field(None, gt=0)
    """Window the load is averaged over before deciding (Serve's default, 30 s, when None); a
    shorter window follows a step of load sooner (measured: 1 -> 3 replicas in ~30 s with the
    default, see docs/benchmarks.md)."""

    def serve_options(self) -> dict[str, Any]:
        """Serve's ``autoscaling_config`` (field names are Serve's own; unset options left out
        so Serve's defaults apply). One mapping for every runtime's deployment."""
        cfg: dict[str, Any] = {
            "min_replicas": self.min_replicas,
            "max_replicas": self.max_replicas,
            "target_ongoing_requests": self.target_ongoing_requests,
            "upscale_delay_s": self.upscale_delay_s,
            "downscale_delay_s": self.downscale_delay_s,
        }
        for optional in ("initial_replicas", "downscale_to_zero_delay_s", "look_back_period_s"):
            value = getattr(self, optional)
            if value is not None:
                cfg[optional] = value
        return cfg

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
    allow_spinning: bool = False
    """Let idle worker threads spin waiting for work: a little less latency for a busy core
    each; off because experts share small machines (only matters with threads > 1)."""


_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


class _ModelBlock(_Strict):
    """What every runtime's ``model`` block shares: which of its fields are file paths."""

    file_fields: ClassVar[tuple[str, ...]] = ()
    """Fields that name files relative to the manifest's folder (resolved before deploy)."""
    checked_before_deploy: ClassVar[bool] = True
    """Whether the hub checks those files exist (False where they live on other machines)."""

    def local_files(self) -> dict[str, str]:
        """File fields that are set and name local paths (not storage URIs), by field name."""
        if not self.checked_before_deploy:
            return {}
        out = {}
        for name in self.file_fields:
            value = getattr(self, name)
            if value and not _SCHEME.match(value):
                out[name] = value
        return out


class BatchingConfig(_Strict):
    """Ray Serve dynamic batching (``@serve.batch``) for a CPU expert.

    Concurrent requests wait up to ``wait_timeout_s`` to share one model run; worth it when one
    run of many rows costs about as much as one row (small tabular and tensor models).
    """

    max_batch_size: int = Field(16, ge=1, le=1024)
    """Most requests answered by one model run."""
    wait_timeout_s: float = Field(0.002, ge=0, le=1)
    """Longest a request waits for others to join its batch, seconds."""


class OnnxModelConfig(_ModelBlock):
    """An ONNX model and the task adapter that turns requests into its tensors and back."""

    file_fields: ClassVar[tuple[str, ...]] = ("path", "sidecar")
    runtime: Literal["onnx"] = Field("onnx", exclude=True, repr=False)
    """Discriminator, copied from the manifest's ``runtime`` by the loader; never written."""
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
    batching: BatchingConfig | None = None
    """Dynamic batching of concurrent requests into one model run; None runs them one by one."""

    @model_validator(mode="after")
    def _task_needs(self) -> OnnxModelConfig:
        if self.task != "tensors" and not self.sidecar:
            raise ValueError(f"task '{self.task}' needs a sidecar file (set model.sidecar)")
        if self.task == "retrieval" and not self.embedder:
            raise ValueError("task 'retrieval' needs model.embedder (e.g. 'minilm-int8')")
        return self


class OpenAIModelConfig(_ModelBlock):
    """An OpenAI-compatible chat/completions endpoint (vLLM's server, llama.cpp, Ollama, a
    hosted API) used as an expert. The API key never sits in the manifest: it comes from an
    environment variable or a secret file the manifest names."""

    file_fields: ClassVar[tuple[str, ...]] = ("api_key_file",)
    runtime: Literal["openai"] = Field("openai", exclude=True, repr=False)
    """Discriminator, copied from the manifest's ``runtime`` by the loader; never written."""
    base_url: str
    """The API root, e.g. "http://127.0.0.1:8000/v1" (chat/completions is appended)."""
    model: str
    """Model name the endpoint knows (its ``model`` field)."""
    api_key_env: str | None = None
    """Environment variable that holds the API key (in the replica's environment)."""
    api_key_file: str | None = None
    """Secret file whose first line is the API key; relative to the manifest's folder."""
    system_prompt: str | None = None
    """Instructions sent as the system message before the conversation."""
    max_tokens: int | None = Field(None, ge=1)
    """Longest answer in tokens; None lets the endpoint decide."""
    temperature: float | None = Field(None, ge=0, le=2)
    """Sampling temperature; None lets the endpoint decide."""
    timeout_s: float = Field(60.0, gt=0)
    """Longest one call to the endpoint may take, seconds."""
    max_retries: int = Field(1, ge=0, le=5)
    """Retries of connection errors, 429 and 5xx answers (the client backs off between them)."""

    @model_validator(mode="before")
    @classmethod
    def _no_key_in_manifest(cls, data: Any) -> Any:
        if isinstance(data, dict) and "api_key" in data:
            raise ValueError(
                "api_key must not be written in a manifest (manifests are shared and signed); "
                "put the key in an environment variable named by api_key_env, or in a secret "
                "file named by api_key_file"
            )
        return data

    @model_validator(mode="after")
    def _one_key_source(self) -> OpenAIModelConfig:
        if self.api_key_env and self.api_key_file:
            raise ValueError(
                f"api_key_env ('{self.api_key_env}') and api_key_file ('{self.api_key_file}') "
                "are both set; keep one"
            )
        if not _SCHEME.match(self.base_url):
            raise ValueError(
                f"base_url '{self.base_url}' has no scheme; write e.g. 'http://127.0.0.1:8000/v1'"
            )
        return self


class OipModelConfig(_ModelBlock):
    """A model behind a server speaking the KServe Open Inference Protocol v2 over gRPC
    (Triton, KServe, Seldon MLServer): named tensors in, named tensors out."""

    runtime: Literal["oip"] = Field("oip", exclude=True, repr=False)
    """Discriminator, copied from the manifest's ``runtime`` by the loader; never written."""
    target: str
    """The server's gRPC address, "host:port"."""
    model_name: str
    """Model name on that server."""
    model_version: str = ""
    """Model version on that server; empty lets the server pick."""
    outputs: list[str] = []
    """Output tensors to ask for; empty returns every output the model has."""
    timeout_s: float = Field(30.0, gt=0)
    """Longest one inference call may take, seconds."""

    @field_validator("target")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, _, port = v.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"target '{v}' is not 'host:port'; write e.g. '127.0.0.1:8081'")
        return v


class VllmModelConfig(_ModelBlock):
    """A GPU LLM served by Ray Serve LLM (``ray.serve.llm``, vLLM engine). Accelerator type and
    GPUs per replica come from ``resources``, replicas from ``autoscaling``."""

    file_fields: ClassVar[tuple[str, ...]] = ("path",)
    checked_before_deploy: ClassVar[bool] = False  # weights sit on the GPU nodes
    runtime: Literal["vllm"] = Field("vllm", exclude=True, repr=False)
    """Discriminator, copied from the manifest's ``runtime`` by the loader; never written."""
    path: str
    """Model weights: a folder (relative to the manifest's folder) or a storage URI
    (s3://, gs://) the GPU nodes can read; never a hub name fetched at run time."""
    served_name: str | None = None
    """Model id clients and the engine use; default: the expert's name."""
    tensor_parallel_size: int = Field(1, ge=1)
    """GPUs one replica spreads the model over; must equal resources.num_gpus."""
    max_model_len: int | None = Field(None, ge=16)
    """Longest prompt + answer in tokens; None takes the model's own limit."""
    gpu_memory_utilization: float | None = Field(None, gt=0, le=1)
    """Share of each GPU's memory the engine may take; None keeps vLLM's default."""
    dtype: Literal["auto", "float16", "bfloat16", "float32"] = "auto"
    """Weights' data type on the GPU."""
    max_tokens: int = Field(512, ge=1)
    """Longest answer in tokens."""
    temperature: float = Field(0.0, ge=0, le=2)
    """Sampling temperature (0: greedy, reproducible answers)."""
    system_prompt: str | None = None
    """Instructions sent as the system message before the conversation."""


ModelConfig = Annotated[
    OnnxModelConfig | OpenAIModelConfig | OipModelConfig | VllmModelConfig,
    Field(discriminator="runtime"),
]
"""The ``model`` block of a manifest; its fields depend on the manifest's ``runtime``."""

RUNTIME_NAMES = ("onnx", "openai", "oip", "vllm")
"""Every runtime a manifest may name."""

_Block = TypeVar("_Block", OnnxModelConfig, OpenAIModelConfig, OipModelConfig, VllmModelConfig)


class ExpertManifest(_Strict):
    """An expert's card: who owns it, what it knows, how to run and scale it."""

    name: str
    """Unique name: lowercase letters, digits and dashes, at most 63 characters."""
    version: str = "1.0.0"
    """Version; part of the expert's identity (``name@version``): two versions of one expert can
    serve side by side, with a traffic split (`mesh canary`)."""
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
    runtime: Literal["onnx", "openai", "oip", "vllm"]
    """Runtime that runs the model: onnx (CPU), openai (an OpenAI-compatible endpoint), oip (an
    Open Inference Protocol v2 server), vllm (a GPU LLM on Ray Serve LLM)."""
    model: ModelConfig
    """The model and how requests map onto it; its fields depend on ``runtime``."""
    resources: ResourcesConfig = ResourcesConfig()
    """Per-replica resources."""
    autoscaling: AutoscalingConfig = AutoscalingConfig()
    """Autoscaling bounds and targets."""
    max_ongoing_requests: int = Field(8, ge=1)
    """Requests one replica accepts at once before Serve queues them."""

    source_dir: Path | None = Field(None, exclude=True)
    """Folder of the manifest file; relative model paths resolve against it (set by the loader)."""

    @model_validator(mode="before")
    @classmethod
    def _runtime_picks_model_block(cls, data: Any) -> Any:
        """Copy ``runtime`` into the model block, where it selects the block's class; the YAML
        names the runtime once, at the top, as it always has."""
        if isinstance(data, dict) and isinstance(data.get("model"), dict):
            runtime = data.get("runtime")
            if runtime in RUNTIME_NAMES and "runtime" not in data["model"]:
                data = {**data, "model": {**data["model"], "runtime": runtime}}
        return data

    @model_validator(mode="after")
    def _gpu_runtime_needs_gpus(self) -> ExpertManifest:
        m = self.model
        if isinstance(m, VllmModelConfig):
            gpus = self.resources.num_gpus
            if gpus < 1 or gpus != m.tensor_parallel_size:
                raise ValueError(
                    f"runtime 'vllm' has resources.num_gpus {gpus} and "
                    f"model.tensor_parallel_size {m.tensor_parallel_size}; set both to the GPUs "
                    "one replica uses (at least 1)"
                )
        if m.runtime != self.runtime:
            raise ValueError(
                f"model block is for runtime '{m.runtime}' but runtime is '{self.runtime}'; "
                "remove model.runtime"
            )
        return self

    @property
    def key(self) -> str:
        """``name@version``: this version's identity (its Serve application's name)."""
        return expert_key(self.name, self.version)

    @field_validator("version")
    @classmethod
    def _version_shape(cls, v: str) -> str:
        if not _VERSION.match(v):
            raise ValueError(
                f"'{v}' is not a valid version; use letters, digits, dots, dashes, underscores "
                "and plus signs (e.g. '1.2.0' or '2024-06-rc1'), at most 40 characters"
            )
        return v

    def model_as(self, kind: type[_Block]) -> _Block:
        """The model block as the class a runtime expects; ModelLoadError when the manifest
        names another runtime (a programming error caught before any model is opened)."""
        if not isinstance(self.model, kind):
            raise ModelLoadError(
                self.name, f"runtime '{self.runtime}' has no {kind.__name__} model block"
            )
        return self.model

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
        update = {}
        for field in self.model.file_fields:
            value = getattr(self.model, field)
            if value and not _SCHEME.match(value):
                update[field] = str(self.resolve(value))
        return self.model_copy(update={"model": self.model.model_copy(update=update)})

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
    metrics_port: int | None = Field(9090, ge=0, le=65535)
    """Port of the Prometheus endpoint (http://host:port/metrics) of `mesh orchestrator`, on
    ``host``; None turns it off, 0 picks a free one."""
    tls_cert: str | None = None
    """The orchestrator's certificate from the mesh CA (PEM; relative to the config file). With
    ``tls_key`` and ``tls_ca`` set, the port serves mutual TLS: clients present a certificate
    from the mesh CA (`mesh ca issue --role client`), whose common name can stand for a tenant
    (`mesh tenants set NAME --cert-subject "ORG client"`) instead of a token."""
    tls_key: str | None = None
    """The orchestrator's TLS private key (PEM)."""
    tls_ca: str | None = None
    """The mesh CA's certificate (PEM): client certificates must be signed by it."""

    @model_validator(mode="after")
    def _tls_all_or_none(self) -> OrchestratorConfig:
        given = [f for f in ("tls_cert", "tls_key", "tls_ca") if getattr(self, f)]
        if given and len(given) != 3:
            raise ValueError(
                f"only {', '.join(given)} set; give tls_cert, tls_key and tls_ca together "
                "(mutual TLS for clients) or none of them")
        return self
    metrics_sample_s: float = Field(1.0, gt=0)
    """How often replica counts are sampled: replica-seconds, the replicas gauge, and the check
    that marks a request as a cold start (its expert was at zero replicas)."""


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
    """The router: similarity to manifest examples, a linear head, a calibrated threshold."""

    threshold: float | None = Field(None, ge=0, le=1)
    """Similarity below which a request is out of scope; None calibrates it from the manifests."""
    head: bool = True
    """Fit the linear head over all experts' examples (see mesh.router.head); false routes on
    per-expert similarity alone."""
    multilingual: bool = True
    """Route requests the English model cannot read (Hindi, any non-Latin script, confidently
    non-English text) with the multilingual model (see mesh.router.multilingual)."""
    review: bool = True
    """Ask the stronger review model (all-mpnet-base-v2, when its packages are installed) about
    English requests the first model is unsure of (see mesh.router.review)."""
    review_gap: float = Field(0.3, ge=0, le=1)
    """Review when the best two experts' scores are closer than this (0.3: ~15% of CLINC150's
    requests reviewed in all, 98.1% in-scope accuracy at 89% out-of-scope recall; 0.1: 10%)."""
    review_band: float = Field(0.1, ge=0, le=1)
    """Review when the best expert's similarity is this close to the threshold, either side."""
    multi_expert_margin: float = Field(0.03, ge=0, le=1)
    """Other experts within this margin of the best one also answer (compound requests)."""
    max_experts: int = Field(3, ge=1)
    """Most experts one request fans out to."""
    fallback_expert: str | None = None
    """Expert that answers out-of-scope requests; None answers 'no expert covers this'."""


class FederationConfig(_Strict):
    """Partner organizations joining this hub: the registry's mutual-TLS port, trust, health.

    Off unless ``port`` is set (or `mesh orchestrator --federation-port`); TLS files come from
    `mesh ca` and resolve against the config file's folder; ``trust_list`` and ``registry_db``
    against the state folder.
    """

    port: int | None = Field(None, ge=0, le=65535)
    """Port of the RegistryService (mutual TLS); None keeps federation off, 0 picks one."""
    host: str = "127.0.0.1"
    """Address the registry binds."""
    tls_cert: str | None = None
    """The hub's certificate from the mesh CA (PEM)."""
    tls_key: str | None = None
    """The hub's TLS private key (PEM)."""
    tls_ca: str | None = None
    """The mesh CA's certificate (PEM): peers must present certificates it signed."""
    trust_list: str = "trust.yaml"
    """Organizations allowed to publish, with their public keys (`mesh trust add`)."""
    registry_db: str = "registry.sqlite3"
    """SQLite file of the registry (WAL), relative to the state folder."""
    heartbeat_interval_s: float = Field(1.0, gt=0)
    """Seconds between a node's heartbeats."""
    heartbeat_ttl_s: float = Field(3.0, gt=0)
    """An expert leaves routing when its node's last heartbeat is older than this."""
    breaker_failures: int = Field(3, ge=1)
    """Consecutive failed calls that open a node's circuit breaker."""
    breaker_open_s: float = Field(0.5, gt=0)
    """First ban of an open breaker before a half-open probe, seconds (doubles per failure)."""
    breaker_max_open_s: float = Field(8.0, gt=0)
    """Longest ban, seconds."""
    retry_attempts: int = Field(2, ge=1, le=5)
    """Attempts per call to a node when it answers UNAVAILABLE (1: no retry)."""
    retry_budget_ratio: float = Field(0.2, ge=0, le=1)
    """Retries allowed per request over the last 10 s (plus one per second)."""

    @model_validator(mode="after")
    def _ttl_above_interval(self) -> FederationConfig:
        if self.heartbeat_ttl_s <= self.heartbeat_interval_s:
            raise ValueError(
                f"heartbeat_ttl_s ({self.heartbeat_ttl_s}) must exceed heartbeat_interval_s "
                f"({self.heartbeat_interval_s}); use about three intervals"
            )
        return self


class AuthConfig(_Strict):
    """Who may call the hub: tenants with tokens or client certificates (`mesh tenants`), and
    their quotas. Tenants live in ``<state_dir>/tenants.sqlite3``; quota counters, shared by
    every orchestrator process of the hub, in ``<state_dir>/quota.sqlite3``."""

    required: bool | None = None
    """Refuse calls without a credential (UNAUTHENTICATED). None: required unless the
    orchestrator listens on loopback only (the embedded `mesh up` runs open, and says so)."""
    refresh_s: float = Field(0.2, gt=0, le=5)
    """How often each orchestrator checks the tenants file for changes: a new, rotated or
    revoked token takes effect within this time, without a restart."""
    lease_s: float = Field(120.0, gt=0)
    """Longest a request holds a place in its tenant's concurrency limit: the place of a request
    whose orchestrator died comes back after this (keep it above the longest deadline)."""


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
    federation: FederationConfig = FederationConfig()
    """Partner organizations (hub side): off unless federation.port is set."""
    auth: AuthConfig = AuthConfig()
    """Tenants, credentials and quotas."""

    def auth_required(self) -> bool:
        """Whether calls need a credential: as configured, else unless loopback-only."""
        if self.auth.required is not None:
            return self.auth.required
        return not is_loopback(self.orchestrator.host)

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


_BLOCKS: dict[str, type[_ModelBlock]] = {
    "onnx": OnnxModelConfig, "openai": OpenAIModelConfig, "oip": OipModelConfig,
    "vllm": VllmModelConfig,
}


def _model_fields(runtime: str) -> str:
    block = _BLOCKS[runtime]
    return ", ".join(n for n in block.model_fields if n != "runtime")


def validation_problems(err: ValidationError) -> list[tuple[str, str, str]]:
    """``(field, problem, fix)`` for each error of a manifest or config, as ConfigError takes
    them: the model block's union tag is taken out of field paths (users never wrote it), and
    an unknown model field lists the fields its runtime takes."""
    errors = err.errors()
    runtime_wrong = any(e["loc"][:1] == ("runtime",) for e in errors)
    out = []
    for e in errors:
        loc = list(e["loc"])
        if e["type"] in ("union_tag_invalid", "union_tag_not_found") and runtime_wrong:
            continue  # the runtime's own error says it; the model block cannot be chosen
        fix = _FIXES.get(e["type"], "")
        if loc[:1] == ["model"] and len(loc) > 1 and loc[1] in _BLOCKS:
            runtime = str(loc.pop(1))  # pydantic puts the union's tag in the path; users never
            if e["type"] == "extra_forbidden":  # wrote it, so it is taken out
                fix = f"remove it; runtime '{runtime}' takes model fields: {_model_fields(runtime)}"
        field = ".".join(str(p) for p in loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        out.append((field, msg, fix))
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
        raise ConfigError(str(path), validation_problems(e)) from None


def load_manifest(path: str | Path) -> ExpertManifest:
    """Load one expert manifest; raises ConfigError naming the file, field and fix."""
    return _load(path, ExpertManifest)


def is_loopback(host: str) -> bool:
    """True when ``host`` is a loopback address or ``localhost`` (nothing off this machine can
    connect)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_config(path: str | Path) -> MeshConfig:
    """Load the mesh config; raises ConfigError naming the file, field and fix."""
    return _load(path, MeshConfig)


def load_manifests(config: MeshConfig) -> list[ExpertManifest]:
    """Load every manifest of a mesh. Several versions of one expert may be listed (they serve
    side by side); the same name and version twice is an error naming both files."""
    manifests: list[ExpertManifest] = []
    seen: dict[str, Path] = {}
    paths = config.manifest_paths()
    if not paths:
        raise ConfigError(
            "mesh config", [("experts", "names no manifest files", "point it at *.yaml manifests")]
        )
    for p in paths:
        m = load_manifest(p)
        if m.key in seen:
            raise ConfigError(
                str(p),
                [("version", f"'{m.name}' version '{m.version}' is already defined by "
                  f"{seen[m.key]}", "rename one expert, or give this file a new version")],
            )
        seen[m.key] = p
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
    for name, relative in manifest.model.local_files().items():
        field = f"model.{name}"
        if not manifest.resolve(relative).is_file():
            unset = unset_variables(relative)
            fix = (f"set {', '.join(unset)}" if unset
                   else "build the model first, or correct the path")
            problems.append((field, f"file {manifest.resolve(relative)} does not exist", fix))
    if problems:
        where = manifest.source_dir or "?"
        raise ConfigError(f"manifest of expert '{manifest.name}' (in {where})", problems)
