"""The node's gRPC face (ExpertNodeService): calls one hosted expert by name, no routing.

A partner organization exposes its experts to a hub through this service; the latency bench
uses it as the "direct call" to an expert.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence

import grpc

from mesh.config import ExpertManifest
from mesh.errors import ExpertNotFound, InvalidInput
from mesh.experts.transport import ExpertTransport
from mesh.grpcutil.server import deadline_s, start_server
from mesh.proto.v1 import common_pb2, expert_pb2, expert_pb2_grpc
from mesh.types import ExpertInput, ExpertOutput
from mesh.wire import (
    card_from_manifest,
    tensors_from_wire,
    tensors_to_wire,
    turns_from_wire,
)

SERVICE_NAME = expert_pb2.DESCRIPTOR.services_by_name["ExpertNodeService"].full_name
DEFAULT_TIMEOUT_S = 30.0


def _output_to_wire(name: str, out: ExpertOutput, ms: float) -> expert_pb2.InferResponse:
    return expert_pb2.InferResponse(
        expert=name,
        output=common_pb2.Content(text=out.text, tensors=tensors_to_wire(out.tensors)),
        metadata=out.metadata,
        latency_ms=ms,
    )


class ExpertNodeServicer(expert_pb2_grpc.ExpertNodeServiceServicer):
    """Serves the experts of one node through an ExpertTransport."""

    def __init__(self, manifests: Sequence[ExpertManifest], transport: ExpertTransport) -> None:
        self.manifests = {m.name: m for m in manifests}
        self.transport = transport

    def _decode(self, request: expert_pb2.InferRequest) -> ExpertInput:
        if not request.expert:
            raise InvalidInput("expert", "is empty; name the expert to call")
        if request.expert not in self.manifests:
            raise ExpertNotFound(request.expert, list(self.manifests))
        return ExpertInput(
            text=request.input.text,
            tensors=tensors_from_wire(request.input.tensors),
            history=turns_from_wire(request.history),
            parameters=dict(request.parameters),
        )

    async def Infer(
        self, request: expert_pb2.InferRequest, context: grpc.aio.ServicerContext
    ) -> expert_pb2.InferResponse:
        decoded = self._decode(request)
        start = time.perf_counter()
        timeout = deadline_s(context) or DEFAULT_TIMEOUT_S
        out = await self.transport.infer(request.expert, decoded, timeout)
        return _output_to_wire(request.expert, out, (time.perf_counter() - start) * 1000)

    async def InferStream(
        self, request: expert_pb2.InferRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[expert_pb2.InferChunk]:
        decoded = self._decode(request)
        start = time.perf_counter()
        timeout = deadline_s(context) or DEFAULT_TIMEOUT_S
        pieces: list[str] = []
        async for piece in self.transport.infer_stream(request.expert, decoded, timeout):
            pieces.append(piece)
            yield expert_pb2.InferChunk(text_delta=piece)
        final = _output_to_wire(request.expert, ExpertOutput(text="".join(pieces)),
                                (time.perf_counter() - start) * 1000)
        yield expert_pb2.InferChunk(final=final)

    async def Describe(
        self, request: expert_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> expert_pb2.DescribeResponse:
        if request.expert and request.expert not in self.manifests:
            raise ExpertNotFound(request.expert, list(self.manifests))
        chosen = [m for n, m in self.manifests.items() if not request.expert or n == request.expert]
        return expert_pb2.DescribeResponse(experts=[card_from_manifest(m) for m in chosen])


async def serve_node(
    manifests: Sequence[ExpertManifest], transport: ExpertTransport,
    host: str = "127.0.0.1", port: int = 0,
) -> tuple[grpc.aio.Server, int]:
    """Start an ExpertNodeService server (with health and reflection); returns (server, port)."""
    servicer = ExpertNodeServicer(manifests, transport)
    server, bound, _health = await start_server(
        [lambda s: expert_pb2_grpc.add_ExpertNodeServiceServicer_to_server(servicer, s)],
        [SERVICE_NAME], host=host, port=port,
    )
    return server, bound
