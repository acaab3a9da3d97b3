"""Between mesh requests and the chat/completions API: messages in, mesh errors out.

Kept apart from the client so the mapping is one table a test can read: every failure of the
endpoint becomes the mesh error whose gRPC code tells the caller what to do (retry later,
fix the request, wait for a deadline), never a client library traceback.
"""

from __future__ import annotations

from typing import Any

from mesh.config import OpenAIModelConfig
from mesh.errors import (
    ExpertDeadlineExceeded,
    ExpertUnavailable,
    InvalidInput,
    MeshError,
)
from mesh.experts.chat import sampling_overrides
from mesh.types import ExpertInput


def sampling(config: OpenAIModelConfig, request: ExpertInput) -> dict[str, Any]:
    """Sampling options: the manifest's, overridden by the request's parameters it allows."""
    options: dict[str, Any] = {}
    if config.max_tokens is not None:
        options["max_tokens"] = config.max_tokens
    if config.temperature is not None:
        options["temperature"] = config.temperature
    options.update(sampling_overrides(request))
    return options


def endpoint_error(error: Exception, expert: str, where: str) -> MeshError:
    """The mesh error for a failure of the ``openai`` client calling ``where``."""
    import openai

    if isinstance(error, openai.APITimeoutError):
        return ExpertDeadlineExceeded(f"expert '{expert}': {where} did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        return ExpertUnavailable(f"expert '{expert}': cannot reach {where}")
    if isinstance(error, openai.BadRequestError | openai.UnprocessableEntityError):
        return InvalidInput("input", f"{where} refused the request: {_message(error)}")
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return ExpertUnavailable(
            f"expert '{expert}': {where} refused the API key ({error.status_code}); "
            "check the key named by model.api_key_env / model.api_key_file"
        )
    if isinstance(error, openai.APIStatusError):
        return ExpertUnavailable(
            f"expert '{expert}': {where} answered {error.status_code}: {_message(error)}"
        )
    return ExpertUnavailable(f"expert '{expert}': {where} failed: {type(error).__name__}")


def _message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])[:300]
    return str(getattr(error, "message", error))[:300]
