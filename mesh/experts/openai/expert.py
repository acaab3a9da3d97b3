"""OpenAIExpert: an OpenAI-compatible chat/completions endpoint behind the Expert interface.

The endpoint may be vLLM's server, llama.cpp, Ollama or a hosted API: the mesh only needs
chat/completions (streamed with server-sent events) and the models list, which it uses to check
at load and on every health check that the endpoint still serves the manifest's model.
Calls are synchronous (the client's own connection pool): Serve runs replica methods in worker
threads, and a streamed answer is a plain generator that Serve and LocalTransport both forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from mesh.config import ExpertManifest, OpenAIModelConfig
from mesh.errors import ExpertUnavailable, ModelLoadError
from mesh.experts.base import Expert
from mesh.experts.chat import chat_messages
from mesh.experts.openai.convert import endpoint_error, sampling
from mesh.experts.openai.keys import read_api_key
from mesh.types import ExpertInput, ExpertOutput

if TYPE_CHECKING:
    import openai

HEALTH_TIMEOUT_S = 5.0
"""A health check must answer faster than Serve's health-check timeout."""


class OpenAIExpert(Expert):
    """Answers with ``manifest.model.model`` on the endpoint at ``manifest.model.base_url``."""

    def __init__(self, manifest: ExpertManifest) -> None:
        super().__init__(manifest)
        self.config = manifest.model_as(OpenAIModelConfig)
        self._client: openai.OpenAI | None = None

    @property
    def _where(self) -> str:
        return f"the endpoint {self.config.base_url}"

    @property
    def _model_id(self) -> str:
        return f"{self.config.model} at {self.config.base_url}"

    def _load(self) -> None:
        """Build the client and check that the endpoint serves the model; ModelLoadError names
        the model and the endpoint and says why not."""
        import openai

        key = read_api_key(self.config, self._model_id, self.manifest.resolve)
        self._client = openai.OpenAI(
            api_key=key, base_url=self.config.base_url, timeout=self.config.timeout_s,
            max_retries=self.config.max_retries,
        )
        try:
            served = self._served_models(self.config.timeout_s)
        except Exception as e:
            cause = str(endpoint_error(e, self.name, self._where))
            raise ModelLoadError(self._model_id, cause) from None
        if self.config.model not in served:
            raise ModelLoadError(
                self._model_id,
                f"the endpoint does not serve it; it serves {sorted(served)[:10]} "
                "(fix model.model)",
            )

    def _served_models(self, timeout_s: float) -> set[str]:
        assert self._client is not None
        page = self._client.with_options(timeout=timeout_s, max_retries=0).models.list()
        return {m.id for m in page.data}

    def check_health(self) -> None:
        """Healthy while the endpoint answers and still lists the model."""
        super().check_health()
        try:
            served = self._served_models(HEALTH_TIMEOUT_S)
        except Exception as e:
            raise endpoint_error(e, self.name, self._where) from None
        if self.config.model not in served:
            raise ExpertUnavailable(
                f"expert '{self.name}': {self._where} no longer serves '{self.config.model}'"
            )

    def _request(self, request: ExpertInput) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "messages": chat_messages(self.config.system_prompt, request),
            **sampling(self.config, request),
        }

    def infer(self, request: ExpertInput) -> ExpertOutput:
        """One whole answer, with the endpoint's finish reason and token counts."""
        self.load()
        assert self._client is not None
        body = self._request(request)
        try:
            reply = self._client.chat.completions.create(**body)
        except Exception as e:
            raise endpoint_error(e, self.name, self._where) from None
        choice = reply.choices[0] if reply.choices else None
        metadata = {"expert": self.name, "model": reply.model or self.config.model}
        if choice is not None and choice.finish_reason:
            metadata["finish_reason"] = choice.finish_reason
        if reply.usage is not None:
            metadata["completion_tokens"] = str(reply.usage.completion_tokens)
        text = (choice.message.content if choice is not None else None) or ""
        return ExpertOutput(text=text, metadata=metadata)

    def infer_stream(self, request: ExpertInput) -> Iterator[str]:
        """Text pieces as the endpoint streams them (server-sent events)."""
        self.load()
        assert self._client is not None
        body = self._request(request)
        try:
            stream = self._client.chat.completions.create(**body, stream=True)
        except Exception as e:
            raise endpoint_error(e, self.name, self._where) from None
        with stream:
            try:
                for chunk in stream:
                    for choice in chunk.choices:
                        if choice.delta.content:
                            yield choice.delta.content
            except Exception as e:
                raise endpoint_error(e, self.name, self._where) from None
