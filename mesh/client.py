"""A small synchronous client for the Orchestrator, used by the CLI and by scripts.

Applications can equally use the generated stub (``mesh.proto.v1.orchestrator_pb2_grpc``);
this wrapper only adds defaults (address, deadline) and readable errors.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import grpc

from mesh.proto.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"


class MeshClient:
    """Calls one orchestrator; every call has a deadline and, when a token is given (or set in
    ``MESH_TOKEN``), carries it as ``authorization: Bearer <token>``; with ``credentials`` the
    channel is mutual TLS."""

    def __init__(self, address: str = DEFAULT_ADDRESS, timeout_s: float = 60.0,
                 token: str | None = None,
                 credentials: grpc.ChannelCredentials | None = None) -> None:
        """``credentials``: mutual TLS to an orchestrator that serves it (a client certificate
        from the mesh CA); None connects in plaintext."""
        self.address = address
        self.timeout_s = timeout_s
        token = token or os.environ.get("MESH_TOKEN") or None
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024)]
        self._channel = (grpc.secure_channel(address, credentials, options=options)
                         if credentials is not None
                         else grpc.insecure_channel(address, options=options))
        self.stub = orchestrator_pb2_grpc.OrchestratorServiceStub(self._channel)

    def ask(self, text: str, session_id: str = "", experts: Sequence[str] = (),
            parameters: dict[str, str] | None = None) -> orchestrator_pb2.AskResponse:
        req = orchestrator_pb2.AskRequest(
            input=common_pb2.Content(text=text), session_id=session_id, experts=list(experts),
            parameters=parameters or {},
        )
        response: orchestrator_pb2.AskResponse = self.stub.Ask(
            req, timeout=self.timeout_s, metadata=self._metadata)
        return response

    def ask_stream(self, text: str, session_id: str = "", experts: Sequence[str] = ()
                   ) -> Iterator[orchestrator_pb2.AskChunk]:
        req = orchestrator_pb2.AskRequest(
            input=common_pb2.Content(text=text), session_id=session_id, experts=list(experts)
        )
        yield from self.stub.AskStream(req, timeout=self.timeout_s, metadata=self._metadata)

    def route(self, text: str, session_id: str = "") -> orchestrator_pb2.RouteResponse:
        req = orchestrator_pb2.RouteRequest(input=common_pb2.Content(text=text),
                                            session_id=session_id)
        response: orchestrator_pb2.RouteResponse = self.stub.Route(
            req, timeout=self.timeout_s, metadata=self._metadata)
        return response

    def experts(self) -> orchestrator_pb2.ListExpertsResponse:
        response: orchestrator_pb2.ListExpertsResponse = self.stub.ListExperts(
            orchestrator_pb2.ListExpertsRequest(), timeout=self.timeout_s, metadata=self._metadata
        )
        return response

    def session(self, session_id: str) -> orchestrator_pb2.Session:
        response: orchestrator_pb2.Session = self.stub.GetSession(
            orchestrator_pb2.GetSessionRequest(session_id=session_id), timeout=self.timeout_s,
            metadata=self._metadata,
        )
        return response

    def wait_healthy(self, timeout_s: float) -> bool:
        """Wait until the server's health check says SERVING."""
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        stub = health_pb2_grpc.HealthStub(self._channel)
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout_s)
            status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=timeout_s)
        except (grpc.FutureTimeoutError, grpc.RpcError):
            return False
        return bool(status.status == health_pb2.HealthCheckResponse.SERVING)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> MeshClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
