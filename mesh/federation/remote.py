"""Reaching partner experts: ExpertNodeService on each organization's node, over mutual TLS.

Per call: the request's remaining deadline goes on the wire (gRPC's own deadline, which the node
passes on to its expert), the node's circuit breaker decides whether to try at all, and a call
that fails with UNAVAILABLE is tried once more if time and the retry budget allow. That retry is
safe because ExpertNodeService.Infer has no side effects by contract (an inference, nothing
stored), so a request the node may have seen before it died can run again; DEADLINE_EXCEEDED
is never retried (the time is spent), and a stream is retried only before its first piece.
Errors keep the node's status code (never rewritten to INTERNAL), details truncated.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from mesh.errors import ExpertDeadlineExceeded, ExpertNotFound, ExpertUnavailable, MeshError
from mesh.experts.transport import ExpertState
from mesh.federation.breaker import (
    BreakerPolicy,
    CircuitBreaker,
    RetryBudget,
    RetryPolicy,
)
from mesh.federation.tls import TlsFiles, channel_credentials
from mesh.proto.v1 import common_pb2, expert_pb2, expert_pb2_grpc
from mesh.types import ExpertInput, ExpertOutput
from mesh.wire import tensors_from_wire, tensors_to_wire, turns_to_wire

log = logging.getLogger(__name__)
MAX_DETAILS = 512


class RemoteExpertError(MeshError):
    """An error a partner's node returned, with the node's own status code."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        self.code = code
        super().__init__(message)


def _to_wire(expert: str, r: ExpertInput) -> expert_pb2.InferRequest:
    return expert_pb2.InferRequest(
        expert=expert, input=common_pb2.Content(text=r.text, tensors=tensors_to_wire(r.tensors)),
        history=turns_to_wire(r.history), parameters=r.parameters,
    )


def _from_wire(resp: expert_pb2.InferResponse) -> ExpertOutput:
    return ExpertOutput(text=resp.output.text,
                        tensors=tensors_from_wire(resp.output.tensors, "output.tensors"),
                        metadata=dict(resp.metadata))


def _details(e: grpc.aio.AioRpcError) -> str:
    d = e.details() or ""
    return d if len(d) <= MAX_DETAILS else d[: MAX_DETAILS - 1] + "…"


class _Node:
    """One partner node: its channel, stubs and breaker."""

    def __init__(self, address: str, tls: TlsFiles | None, policy: BreakerPolicy) -> None:
        self.address = address
        options = [("grpc.max_receive_message_length", 16 * 1024 * 1024),
                   ("grpc.initial_reconnect_backoff_ms", 100),
                   ("grpc.max_reconnect_backoff_ms", 1000)]
        if tls is None:
            self.channel = grpc.aio.insecure_channel(address, options=options)
        else:
            self.channel = grpc.aio.secure_channel(address, channel_credentials(tls), options)
        self.stub = expert_pb2_grpc.ExpertNodeServiceStub(self.channel)
        self.health = health_pb2_grpc.HealthStub(self.channel)
        self.breaker = CircuitBreaker(policy)


class RemoteTransport:
    """ExpertTransport over partner nodes; ``set_route`` says where each expert runs.

    ``tls=None`` speaks plaintext (tests of the transport alone, never between organizations:
    the hub's wiring always passes its certificate).
    """

    def __init__(self, tls: TlsFiles | None, breaker: BreakerPolicy | None = None,
                 retry: RetryPolicy | None = None) -> None:
        self.tls = tls
        self.breaker_policy = breaker or BreakerPolicy()
        self.retry = retry or RetryPolicy()
        self.budget = RetryBudget(self.retry)
        self._routes: dict[str, str] = {}
        self._nodes: dict[str, _Node] = {}
        self._prober: asyncio.Task[None] | None = None

    # ---- where experts run ---------------------------------------------------------------

    def set_route(self, expert: str, address: str) -> None:
        """Send ``expert``'s calls to the node at ``address``."""
        self._routes[expert] = address
        if address not in self._nodes:
            self._nodes[address] = _Node(address, self.tls, self.breaker_policy)

    def remove_route(self, expert: str) -> None:
        """Forget ``expert`` (its node's channel stays while other experts use it)."""
        self._routes.pop(expert, None)

    def experts(self) -> list[str]:
        """Experts this transport reaches."""
        return sorted(self._routes)

    def node_of(self, expert: str) -> _Node:
        """The node that hosts ``expert``; ExpertNotFound when none does."""
        address = self._routes.get(expert)
        if address is None:
            raise ExpertNotFound(expert, list(self._routes))
        return self._nodes[address]

    def routable(self, expert: str) -> bool:
        """False while the expert's node's breaker is open or probing."""
        address = self._routes.get(expert)
        return address is not None and self._nodes[address].breaker.routable()

    def trip(self, expert: str) -> None:
        """Open the breaker of ``expert``'s node now (its heartbeats stopped)."""
        address = self._routes.get(expert)
        if address is not None:
            self._nodes[address].breaker.trip()

    # ---- calls ---------------------------------------------------------------------------------

    async def _attempts(self, expert: str, timeout_s: float) -> AsyncIterator[tuple[_Node, float]]:
        """Yield (node, seconds left) for each attempt the breaker, deadline and budget allow."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        node = self.node_of(expert)
        self.budget.record_request()
        for attempt in range(self.retry.max_attempts):
            if attempt:
                too_late = deadline - loop.time() <= self.retry.backoff_s * 2
                if too_late or not self.budget.try_retry():
                    return
                await asyncio.sleep(self.retry.backoff_s)
            if not node.breaker.allow():
                raise ExpertUnavailable(
                    f"expert '{expert}' is unavailable: its node {node.address} is not "
                    "answering (circuit open; it returns by itself when the node recovers)")
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            yield node, remaining

    def _failed(self, expert: str, node: _Node, e: grpc.aio.AioRpcError) -> MeshError:
        code = e.code()
        if code == grpc.StatusCode.UNAVAILABLE:
            node.breaker.failure()
            log.info("node %s unavailable: %s", node.address, _details(e))
            return ExpertUnavailable(
                f"expert '{expert}' is unavailable: its node {node.address} did not answer")
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            node.breaker.failure()  # a hung node looks like this; enough of them open the breaker
            return ExpertDeadlineExceeded(
                f"expert '{expert}' at node {node.address} did not answer in time")
        node.breaker.success()  # the node answered, with the expert's own error
        return RemoteExpertError(code, _details(e))

    async def infer(self, expert: str, request: ExpertInput, timeout_s: float) -> ExpertOutput:
        wire = _to_wire(expert, request)
        last: MeshError = ExpertDeadlineExceeded(
            f"expert '{expert}' did not answer within {timeout_s:.2f} s")
        async for node, remaining in self._attempts(expert, timeout_s):
            try:
                resp = await node.stub.Infer(wire, timeout=remaining)
            except grpc.aio.AioRpcError as e:
                last = self._failed(expert, node, e)
                if not isinstance(last, ExpertUnavailable):
                    raise last from None
                continue
            node.breaker.success()
            return _from_wire(resp)
        raise last

    async def infer_stream(self, expert: str, request: ExpertInput, timeout_s: float
                           ) -> AsyncIterator[str]:
        wire = _to_wire(expert, request)
        last: MeshError = ExpertDeadlineExceeded(
            f"expert '{expert}' did not finish streaming within {timeout_s:.2f} s")
        async for node, remaining in self._attempts(expert, timeout_s):
            started = False
            try:
                async for chunk in node.stub.InferStream(wire, timeout=remaining):
                    if chunk.text_delta:
                        started = True
                        yield chunk.text_delta
                node.breaker.success()
                return
            except grpc.aio.AioRpcError as e:
                last = self._failed(expert, node, e)
                if started or not isinstance(last, ExpertUnavailable):
                    raise last from None
        raise last

    async def probe(self, node: _Node, timeout_s: float = 1.0) -> bool:
        """One half-open probe: the node's gRPC health check."""
        try:
            resp = await node.health.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.aio.AioRpcError:
            node.breaker.failure()
            return False
        if resp.status == health_pb2.HealthCheckResponse.SERVING:
            node.breaker.success()
            log.info("node %s answers again: its experts return to routing", node.address)
            return True
        node.breaker.failure()
        return False

    async def probe_loop(self, period_s: float = 0.2) -> None:
        """Probe every node whose ban is over, until cancelled."""
        while True:
            for node in list(self._nodes.values()):
                if node.breaker.wants_probe() and node.breaker.allow():
                    await self.probe(node)
            await asyncio.sleep(period_s)

    async def states(self) -> dict[str, ExpertState]:
        out = {}
        for expert, address in self._routes.items():
            ok = self._nodes[address].breaker.routable()
            out[expert] = ExpertState(1 if ok else 0, "HEALTHY" if ok else "UNAVAILABLE")
        return out

    async def close(self) -> None:
        for node in self._nodes.values():
            await node.channel.close()
        self._nodes.clear()
