"""Ray Serve applications built from manifests: one application per expert, each with its own
resources and autoscaling, so every expert scales (and fails) on its own."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from mesh.config import ExpertManifest, OnnxModelConfig
from mesh.errors import ExpertUnavailable
from mesh.serving.replica import ExpertReplica

Progress = Callable[[str], None]


def actor_options(m: ExpertManifest) -> dict[str, Any]:
    """Serve's ray_actor_options for a manifest's resources."""
    r = m.resources
    opts: dict[str, Any] = {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus}
    if r.memory_mb:
        opts["memory"] = r.memory_mb * 1024 * 1024
    if r.accelerator_type:
        opts["accelerator_type"] = r.accelerator_type
    return opts


def autoscaling_config(m: ExpertManifest) -> dict[str, Any]:
    """Serve's autoscaling_config for a manifest (field names are Serve's own)."""
    return m.autoscaling.serve_options()


def deployment_options(m: ExpertManifest) -> dict[str, Any]:
    """Every option the expert's deployment is created with."""
    return {
        "name": m.name,
        "ray_actor_options": actor_options(m),
        "autoscaling_config": autoscaling_config(m),
        "max_ongoing_requests": m.max_ongoing_requests,
        "health_check_period_s": 10.0,
        "health_check_timeout_s": 30.0,
    }


def code_version(m: ExpertManifest) -> str:
    """The replica's identity for Serve: everything in the manifest except ``autoscaling``.

    Without it Serve gives every ``serve.run`` a random version and restarts every replica, so
    a re-run of `mesh up` would restart all experts. With it, an unchanged expert is left alone and
    an autoscaling change is a lightweight update applied to running replicas; a change to the
    model or resources still rolls the replicas.
    """
    data = m.model_dump(mode="json", exclude={"autoscaling"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def replica_class(m: ExpertManifest) -> type[ExpertReplica]:
    """The deployment class for a manifest: batched when its model block asks for batching."""
    from mesh.serving.replica import BatchedExpertReplica

    if isinstance(m.model, OnnxModelConfig) and m.model.batching is not None:
        return BatchedExpertReplica
    return ExpertReplica


def expert_application(m: ExpertManifest) -> Any:
    """The Serve application for one expert: a bound deployment named after the expert.

    Every runtime but ``vllm`` runs in an ExpertReplica (batched or not); a ``vllm`` expert is
    Ray Serve LLM's engine deployment with a small face in front (``vllm_application``).
    """
    if m.runtime == "vllm":
        return vllm_application(m)
    from ray import serve

    resolved = m.with_resolved_paths()
    deployment = serve.deployment(**deployment_options(resolved))(replica_class(resolved))
    # Ray 2.60 removed the public ``version`` argument yet still honours it internally (the
    # config-file path hashes its import path the same way); tests/integration/test_autoscale.py
    # fails if a future Ray stops honouring it.
    deployment = deployment.options(version=code_version(resolved), _internal=True)
    return deployment.bind(resolved.model_dump(mode="json"))


def ingress_options(m: ExpertManifest) -> dict[str, Any]:
    """Options of a vLLM expert's face: named after the expert, scaled like it, no GPU (the
    engine deployment behind it holds the GPUs)."""
    options = deployment_options(m)
    options["ray_actor_options"] = {"num_cpus": 0.1}
    return options


def vllm_application(m: ExpertManifest) -> Any:
    """A ``vllm`` expert: Ray Serve LLM's engine deployment (from the manifest's LLMConfig) and
    a VllmIngress named after the expert in front of it. Raises ModelLoadError naming the
    ``gpu`` extra where vLLM is not installed."""
    from mesh.experts.vllm import require_gpu_stack, serve_llm_config

    require_gpu_stack(m)
    from ray.serve.llm import LLMConfig, build_llm_deployment

    engine = build_llm_deployment(LLMConfig(**serve_llm_config(m)), name_prefix=f"{m.name}-")
    return vllm_face(m, engine)


def vllm_face(m: ExpertManifest, engine: Any, request_type: Any = None) -> Any:
    """The expert's face (a VllmIngress named after it) bound in front of ``engine``, a bound
    deployment with Ray Serve LLM's ``chat`` contract."""
    from ray import serve

    from mesh.experts.vllm.ingress import VllmIngress

    resolved = m.with_resolved_paths()
    face = serve.deployment(**ingress_options(resolved))(VllmIngress)
    return face.bind(resolved.model_dump(mode="json"), engine, request_type)


def deploy_experts(
    manifests: Sequence[ExpertManifest], progress: Progress = print, timeout_s: float = 300.0
) -> None:
    """Deploy (or update) one application per expert version (named ``name@version``, so two
    versions serve side by side) and wait until all are RUNNING.

    Applications are submitted together, so replicas start in parallel; progress reports each
    expert as it becomes ready.
    """
    from ray import serve
    from ray.serve.api import RunTarget

    targets = [
        RunTarget(target=expert_application(m), name=m.key, route_prefix=None) for m in manifests
    ]
    serve.run_many(targets, wait_for_applications_running=False)
    wait_running([m.key for m in manifests], progress, timeout_s)


def wait_running(
    names: Sequence[str], progress: Progress = print, timeout_s: float = 300.0
) -> None:
    """Poll Serve until every named application is RUNNING; raise with its message if one fails."""
    from ray import serve
    from ray.serve.schema import ApplicationStatus

    pending = set(names)
    deadline = time.monotonic() + timeout_s
    while pending:
        apps = serve.status().applications
        for name in sorted(pending):
            app = apps.get(name)
            if app is None:
                continue
            if app.status == ApplicationStatus.RUNNING:
                pending.discard(name)
                progress(f"  expert {name}: running")
            elif app.status == ApplicationStatus.DEPLOY_FAILED:
                raise ExpertUnavailable(f"expert '{name}' failed to deploy: {app.message}")
        if pending and time.monotonic() > deadline:
            raise ExpertUnavailable(
                f"experts not running after {timeout_s:.0f} s: {sorted(pending)}"
            )
        if pending:
            time.sleep(0.25)


def delete_experts(names: Sequence[str]) -> None:
    """Remove experts' applications (their replicas stop)."""
    from ray import serve

    for name in names:
        serve.delete(name)
