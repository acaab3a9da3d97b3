"""VllmIngress: the Serve deployment named after a vLLM expert, in front of its engine.

The orchestrator calls every expert the same way (``infer`` / ``infer_stream`` with an
ExpertInput, over a DeploymentHandle); Ray Serve LLM's engine deployment speaks OpenAI's chat
format instead. This small deployment translates between them and streams the engine's tokens
on as they come, so AskStream carries a GPU LLM's tokens exactly as it carries any expert's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from mesh.config import ExpertManifest, VllmModelConfig
from mesh.errors import MeshError
from mesh.experts.vllm.llm_config import model_id
from mesh.experts.vllm.stream import chat_body, engine_error, text_pieces
from mesh.types import ExpertInput, ExpertOutput


class VllmIngress:
    """Hosts the expert's face in a Serve replica; ``llm`` is the engine deployment's handle."""

    def __init__(self, manifest: dict[str, Any], llm: Any,
                 request_type: Callable[..., Any] | None = None) -> None:
        """``request_type`` builds the engine's chat request from its fields; by default Ray
        Serve LLM's ChatCompletionRequest (any engine deployment with the same ``chat``
        contract can stand behind this face)."""
        self.manifest = ExpertManifest.model_validate(manifest)
        self.config = self.manifest.model_as(VllmModelConfig)
        self.model_id = model_id(self.manifest)
        self._llm = llm
        if request_type is None:
            from ray.serve.llm.openai_api_models import ChatCompletionRequest

            request_type = ChatCompletionRequest
        self._request_type = request_type

    def _request(self, request: ExpertInput) -> Any:
        return self._request_type(**chat_body(self.config, self.model_id, request))

    async def infer_stream(self, request: ExpertInput) -> AsyncIterator[str]:
        """The engine's text pieces, as it streams them."""
        body = self._request(request)
        try:
            async for item in self._llm.options(stream=True).chat.remote(body):
                for piece in text_pieces(self.manifest.name, item):
                    yield piece
        except MeshError:
            raise
        except Exception as e:
            raise engine_error(self.manifest.name, {"message": f"{type(e).__name__}: {e}"}) from e

    async def infer(self, request: ExpertInput) -> ExpertOutput:
        """The whole answer (the stream, joined)."""
        pieces = [piece async for piece in self.infer_stream(request)]
        return ExpertOutput(text="".join(pieces),
                            metadata={"expert": self.manifest.name, "model": self.model_id})

    async def check_health(self) -> None:
        """The engine deployment has its own health check; this face has no state to lose."""
        return None
