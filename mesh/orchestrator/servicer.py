"""The Orchestrator gRPC servicer: decode, call the service, encode. Nothing else.

Errors are not handled here: they propagate to ``mesh.grpcutil.errors.ErrorInterceptor``, the
one place that turns them into status codes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc

from mesh.grpcutil.server import deadline_s
from mesh.orchestrator import convert
from mesh.orchestrator.service import AskResult, Orchestrator
from mesh.proto.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from mesh.tenants import Tenant

SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name



class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServiceServicer):
    """gRPC face of ``Orchestrator``."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    def _tenant(self, context: grpc.aio.ServicerContext) -> Tenant:
        """The caller: its token (``authorization: Bearer ...`` metadata) or, on a mutual-TLS
        port, its verified client certificate's common name."""
        names = context.auth_context().get("x509_common_name") or []
        common_name = names[0].decode() if names else None
        return self.orchestrator.admission.identify(context.invocation_metadata() or (),
                                                    common_name)

    async def Ask(
        self, request: orchestrator_pb2.AskRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.AskResponse:
        tenant = self._tenant(context)
        result = await self.orchestrator.ask(convert.ask_from_wire(request), deadline_s(context),
                                             tenant)
        return convert.result_to_wire(result)

    async def AskStream(
        self, request: orchestrator_pb2.AskRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[orchestrator_pb2.AskChunk]:
        tenant = self._tenant(context)
        cmd = convert.ask_from_wire(request)
        async for item in self.orchestrator.ask_stream(cmd, deadline_s(context), tenant):
            if isinstance(item, AskResult):
                yield orchestrator_pb2.AskChunk(final=convert.result_to_wire(item))
            else:
                expert, delta = item
                yield orchestrator_pb2.AskChunk(expert=expert, text_delta=delta)

    async def Route(
        self, request: orchestrator_pb2.RouteRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.RouteResponse:
        decision, ms = await self.orchestrator.route(request.input.text, request.session_id,
                                                     self._tenant(context))
        return orchestrator_pb2.RouteResponse(
            route=convert.route_to_wire(decision), route_ms=ms,
            threshold_explanation=self.orchestrator.router.explain_thresholds(),
        )

    async def ListExperts(
        self, request: orchestrator_pb2.ListExpertsRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.ListExpertsResponse:
        rows = await self.orchestrator.list_experts(self._tenant(context))
        return convert.experts_to_wire(rows, self.orchestrator.costs(),
                                       self.orchestrator.splits())

    async def GetSession(
        self, request: orchestrator_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> orchestrator_pb2.Session:
        session = await self.orchestrator.get_session(request.session_id, self._tenant(context))
        return convert.session_to_wire(session)
