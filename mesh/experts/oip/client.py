"""The gRPC calls the ``oip`` runtime makes, with the server's failures as mesh errors.

One table (``_CODES``) says what each status of the inference server means to the mesh's
caller: a server that is down or a model that is gone is UNAVAILABLE (try later or elsewhere),
a request the model refuses is INVALID_ARGUMENT with the server's own words.
"""

from __future__ import annotations

import grpc

from mesh.config import OipModelConfig
from mesh.errors import ExpertDeadlineExceeded, ExpertUnavailable, InvalidInput, MeshError
from mesh.proto.oip.v2 import grpc_predict_v2_pb2 as pb
from mesh.proto.oip.v2 import grpc_predict_v2_pb2_grpc as pb_grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest message exchanged with the server (tensors can be large)."""


def rpc_error(error: grpc.RpcError, expert: str, where: str) -> MeshError:
    """The mesh error for a failed call to ``where``."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = (error.details() if hasattr(error, "details") else "") or ""
    details = details.strip().splitlines()[0][:300] if details.strip() else code.name
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return ExpertDeadlineExceeded(f"expert '{expert}': {where} did not answer in time")
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidInput("input.tensors", f"{where} refused them: {details}")
    if code == grpc.StatusCode.UNAVAILABLE:
        return ExpertUnavailable(f"expert '{expert}': cannot reach {where}")
    return ExpertUnavailable(f"expert '{expert}': {where} failed ({code.name}): {details}")


class OipClient:
    """A channel to one inference server and the calls the runtime needs, for one model."""

    def __init__(self, config: OipModelConfig) -> None:
        self.config = config
        self.where = f"the inference server {config.target} (model '{config.model_name}')"
        self._channel = grpc.insecure_channel(
            config.target,
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)],
        )
        self._stub = pb_grpc.GRPCInferenceServiceStub(self._channel)

    def model_ready(self, timeout_s: float) -> bool:
        """Whether the server says the model (and version) takes requests."""
        request = pb.ModelReadyRequest(name=self.config.model_name,
                                       version=self.config.model_version)
        return bool(self._stub.ModelReady(request, timeout=timeout_s).ready)

    def server_live(self, timeout_s: float) -> bool:
        """Whether the server process answers at all."""
        return bool(self._stub.ServerLive(pb.ServerLiveRequest(), timeout=timeout_s).live)

    def metadata(self, timeout_s: float) -> pb.ModelMetadataResponse:
        """The model's platform, versions and tensors."""
        request = pb.ModelMetadataRequest(name=self.config.model_name,
                                          version=self.config.model_version)
        return self._stub.ModelMetadata(request, timeout=timeout_s)

    def infer(self, request: pb.ModelInferRequest, timeout_s: float) -> pb.ModelInferResponse:
        """One inference call."""
        return self._stub.ModelInfer(request, timeout=timeout_s)

    def close(self) -> None:
        self._channel.close()
