"""Chat requests for the engine, and the engine's answers back to text.

Ray Serve LLM's ``LLMServer.chat`` streams lists of server-sent-event strings
(``data: {chunk json}\\n\\n``, OpenAI's chat.completion.chunk), or error objects; a non-streamed
call returns one response object. These functions are pure so they are tested without a GPU.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mesh.config import VllmModelConfig
from mesh.errors import ExpertUnavailable, InvalidInput, MeshError
from mesh.experts.chat import chat_messages, sampling_overrides
from mesh.types import ExpertInput


def chat_body(config: VllmModelConfig, model_id: str, request: ExpertInput) -> dict[str, Any]:
    """The fields of a streamed ChatCompletionRequest for one mesh request."""
    body: dict[str, Any] = {
        "model": model_id,
        "messages": chat_messages(config.system_prompt, request),
        "stream": True,
        "max_tokens": config.max_tokens,
        "temperature": config.temperature,
    }
    body.update(sampling_overrides(request))
    return body


def engine_error(expert: str, payload: Any) -> MeshError:
    """The mesh error for an error the engine streamed (an ErrorResponse or its JSON)."""
    if hasattr(payload, "model_dump"):
        payload = payload.model_dump()
    inner = payload.get("error", payload) if isinstance(payload, dict) else {}
    message = str(inner.get("message", payload))[:300] if isinstance(inner, dict) else str(inner)
    code = inner.get("code") if isinstance(inner, dict) else None
    if code in (400, 422, "400", "422"):
        return InvalidInput("input", f"the engine refused the request: {message}")
    return ExpertUnavailable(f"expert '{expert}': the engine failed: {message}")


def text_pieces(expert: str, item: Any) -> list[str]:
    """Text deltas in one streamed item: a string of SSE events, a list of them, or an error."""
    items: Iterable[Any] = item if isinstance(item, list) else [item]
    pieces: list[str] = []
    for one in items:
        if not isinstance(one, str):
            raise engine_error(expert, one)
        for line in one.splitlines():
            if not line.startswith("data:"):
                continue
            data = line[len("data:"):].strip()
            if not data or data == "[DONE]":
                continue
            event = json.loads(data)
            if "error" in event:
                raise engine_error(expert, event)
            for choice in event.get("choices", []):
                content = (choice.get("delta") or {}).get("content")
                if content:
                    pieces.append(content)
    return pieces
