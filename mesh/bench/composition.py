"""The peer the mesh is measured against: Ray Serve's own composition.

Serve's gRPC proxy → this router deployment (ingress, method ``Ask`` taking the mesh's
``AskRequest``) → the expert's deployment through a DeploymentHandle. It routes with the same
mesh ``Router`` and answers the same ``AskResponse`` as the orchestrator, so the two differ
only in how requests reach the router and how the router process is run — which is the
question the bench asks. Sessions are not kept here: Serve has no such thing, so this is the
peer's natural, lighter path.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from mesh.config import ExpertManifest, RouterConfig
from mesh.orchestrator import convert
from mesh.orchestrator.combine import NO_EXPERT, Part, combine
from mesh.orchestrator.service import AskResult, Timings
from mesh.proto.v1 import orchestrator_pb2
from mesh.router import Router
from mesh.types import ExpertInput, ExpertOutput, expert_name
from mesh.wire import tensors_from_wire

__all__ = ["SERVICER", "CompositionRouter", "composition_application"]

SERVICER = "mesh.proto.v1.orchestrator_pb2_grpc.add_OrchestratorServiceServicer_to_server"
"""Import path for Serve's ``grpc_options["grpc_servicer_functions"]``."""

class CompositionRouter:
    """Ingress deployment: route in-process, call experts' Serve applications by handle."""

    def __init__(self, manifests: list[dict[str, Any]], router: dict[str, Any],
                 deployed: list[str]) -> None:
        from ray import serve

        loaded = [ExpertManifest.model_validate(m) for m in manifests]
        self.organizations = {m.name: m.organization for m in loaded}
        self.router = Router(RouterConfig.model_validate(router))
        self.router.set_experts(loaded)
        # Handles are taken once: looking one up is a blocking call to Serve's controller.
        # ``deployed`` are application names (keys name@version); routing chooses names.
        self.handles = {expert_name(key): serve.get_app_handle(key) for key in deployed}

    async def Ask(  # the gRPC method name Serve's proxy dispatches on
        self, request: orchestrator_pb2.AskRequest
    ) -> orchestrator_pb2.AskResponse:
        start = time.perf_counter()
        decision = self.router.route(request.input.text)
        route_ms = (time.perf_counter() - start) * 1000
        expert_input = ExpertInput(
            text=request.input.text,
            tensors=tensors_from_wire(request.input.tensors),
            parameters=dict(request.parameters),
        )
        experts_start = time.perf_counter()
        outputs: list[ExpertOutput] = await asyncio.gather(
            *(self.handles[name].infer.remote(expert_input) for name in decision.chosen)
        )
        experts_ms = (time.perf_counter() - experts_start) * 1000
        scores = {s.expert: s.score for s in decision.scores}
        parts = [
            Part(name, self.organizations.get(name, ""), out, scores.get(name, 0.0), experts_ms)
            for name, out in zip(decision.chosen, outputs, strict=True)
        ]
        total_ms = (time.perf_counter() - start) * 1000
        result = AskResult(combine(parts) if parts else NO_EXPERT, parts, decision,
                           Timings(route_ms, experts_ms, total_ms), "")
        return convert.result_to_wire(result)


def composition_application(manifests: list[ExpertManifest], router: RouterConfig,
                            deployed: list[str]) -> Any:
    """The bound router deployment.

    ``max_ongoing_requests`` is raised from Serve's default (5) because the router only awaits
    handles; leaving 5 would queue requests at c=8 in the proxy and handicap the peer.
    ``num_cpus=0`` lets it schedule beside the expert on a 2-core machine, as the orchestrator
    process does.
    """
    from ray import serve

    deployment: Any = serve.deployment(CompositionRouter)
    deployment = deployment.options(
        name="router", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=64,
        num_replicas=1,
    )
    return deployment.bind(
        [m.with_resolved_paths().model_dump(mode="json") for m in manifests],
        router.model_dump(mode="json"),
        deployed,
    )
