"""Chat messages for LLM runtimes (``openai``, ``vllm``): one mesh request as the OpenAI chat
format both speak, so the two runtimes send the same conversation the same way."""

from __future__ import annotations

from typing import Any

from mesh.errors import InvalidInput
from mesh.types import ExpertInput

# Request parameters an endpoint call may override, with the type each must parse as.
_PARAMETERS: dict[str, type] = {"max_tokens": int, "temperature": float, "top_p": float}


def chat_messages(system_prompt: str | None, request: ExpertInput) -> list[dict[str, str]]:
    """System prompt, then the conversation so far, then the question, as chat messages."""
    if request.tensors and not request.text.strip():
        raise InvalidInput("input.tensors", "this expert answers text only; send input.text")
    if not request.text.strip():
        raise InvalidInput("input.text", "is empty; send a question")
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for turn in request.history:
        messages.append({"role": "user", "content": turn.question})
        messages.append({"role": "assistant", "content": turn.answer})
    messages.append({"role": "user", "content": request.text})
    return messages


def sampling_overrides(request: ExpertInput) -> dict[str, Any]:
    """The sampling options a request's parameters set (max_tokens, temperature, top_p);
    InvalidInput names the parameter whose value does not parse."""
    options: dict[str, Any] = {}
    for name, kind in _PARAMETERS.items():
        raw = request.parameters.get(name)
        if raw is None:
            continue
        try:
            options[name] = kind(raw)
        except ValueError:
            raise InvalidInput(
                f"parameters['{name}']", f"'{raw}' is not a{'n' if kind is int else ''} "
                f"{kind.__name__}"
            ) from None
    return options
