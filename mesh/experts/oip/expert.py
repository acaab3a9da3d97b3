"""OipExpert: a model behind an Open Inference Protocol v2 gRPC server as an expert.

The server (Triton, KServe, MLServer) owns the model; the expert checks at load that the
server is live and the model ready, reads the model's metadata (its tensors, to check requests
before sending them and to name what is missing), and answers named tensors with named tensors
plus a short text summary for people. A model with one BYTES input also takes plain text.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
import numpy as np

from mesh.config import ExpertManifest, OipModelConfig
from mesh.errors import ExpertUnavailable, InvalidInput, ModelLoadError
from mesh.experts.base import Expert
from mesh.experts.oip.client import OipClient, rpc_error
from mesh.experts.oip.tensors import build_request, read_response
from mesh.types import ExpertInput, ExpertOutput

LOAD_TIMEOUT_S = 10.0
"""How long load waits for each of the server's answers (live, ready, metadata)."""
HEALTH_TIMEOUT_S = 5.0
"""A health check must answer faster than Serve's health-check timeout."""


def summary(outputs: Mapping[str, np.ndarray], limit: int = 8) -> str:
    """One line per output tensor: its name and first values, for the answer's text."""
    lines = []
    for name, array in outputs.items():
        flat = array.reshape(-1)
        values = [v.decode("utf-8", "replace") if isinstance(v, bytes) else v
                  for v in flat[:limit].tolist()]
        more = f" ... ({flat.size} values)" if flat.size > limit else ""
        lines.append(f"{name}: {values}{more}")
    return "\n".join(lines)


class OipExpert(Expert):
    """Answers with ``model.model_name`` on the server at ``model.target``."""

    def __init__(self, manifest: ExpertManifest) -> None:
        super().__init__(manifest)
        self.config = manifest.model_as(OipModelConfig)
        self._client: OipClient | None = None
        self._inputs: dict[str, str] = {}  # input name -> datatype, from the model's metadata
        self.platform = ""

    @property
    def _model_id(self) -> str:
        version = f" version {self.config.model_version}" if self.config.model_version else ""
        return f"{self.config.model_name}{version} at {self.config.target}"

    def _load(self) -> None:
        """Connect, check the model is ready, read its metadata; ModelLoadError says which
        model on which server, and why not."""
        client = OipClient(self.config)
        try:
            if not client.server_live(LOAD_TIMEOUT_S):
                raise ModelLoadError(self._model_id, "the server says it is not live")
            if not client.model_ready(LOAD_TIMEOUT_S):
                raise ModelLoadError(self._model_id, "the server holds the model but it is not "
                                     "ready (still loading, or failed to load there)")
            meta = client.metadata(LOAD_TIMEOUT_S)
        except grpc.RpcError as e:
            client.close()
            cause = str(rpc_error(e, self.name, client.where))
            if e.code() == grpc.StatusCode.NOT_FOUND:
                cause = f"the server does not hold this model ({e.details()})"
            raise ModelLoadError(self._model_id, cause) from None
        except ModelLoadError:
            client.close()
            raise
        self._inputs = {t.name: t.datatype for t in meta.inputs}
        self.platform = meta.platform
        self._client = client

    def check_health(self) -> None:
        """Healthy while the server answers that the model is ready."""
        super().check_health()
        assert self._client is not None
        try:
            ready = self._client.model_ready(HEALTH_TIMEOUT_S)
        except grpc.RpcError as e:
            raise rpc_error(e, self.name, self._client.where) from None
        if not ready:
            raise ExpertUnavailable(f"expert '{self.name}': {self._client.where} is not ready")

    def _tensors(self, request: ExpertInput) -> dict[str, np.ndarray]:
        if request.tensors:
            unknown = sorted(set(request.tensors) - set(self._inputs)) if self._inputs else []
            if unknown:
                raise InvalidInput(
                    f"input.tensors['{unknown[0]}']",
                    f"model '{self.config.model_name}' has no such input; it takes "
                    f"{sorted(self._inputs)}",
                )
            return dict(request.tensors)
        text_inputs = [n for n, t in self._inputs.items() if t == "BYTES"]
        if request.text.strip() and len(self._inputs) == 1 and text_inputs:
            return {text_inputs[0]: np.array([request.text.encode("utf-8")], dtype=object)}
        wanted = ", ".join(f"{n} ({t})" for n, t in self._inputs.items()) or "its input tensors"
        raise InvalidInput(
            "input.tensors", f"model '{self.config.model_name}' takes tensors: {wanted}"
        )

    def infer(self, request: ExpertInput) -> ExpertOutput:
        """Send the request's tensors, answer the model's outputs and a summary of them."""
        self.load()
        assert self._client is not None
        message = build_request(self.config.model_name, self.config.model_version,
                                self._tensors(request), self.config.outputs)
        try:
            response = self._client.infer(message, self.config.timeout_s)
        except grpc.RpcError as e:
            raise rpc_error(e, self.name, self._client.where) from None
        try:
            outputs = read_response(response)
        except ValueError as e:
            raise ExpertUnavailable(f"expert '{self.name}': unreadable answer: {e}") from None
        metadata = {"expert": self.name, "model": response.model_name or self.config.model_name}
        if response.model_version:
            metadata["model_version"] = response.model_version
        if self.platform:
            metadata["platform"] = self.platform
        return ExpertOutput(text=summary(outputs), tensors=outputs, metadata=metadata)
