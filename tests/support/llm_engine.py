"""A CPU stand-in for Ray Serve LLM's engine deployment, speaking the same ``chat`` contract.

``LLMServer.chat`` (vLLM behind it) streams lists of server-sent-event strings
(``data: {chat.completion.chunk}\\n\\n``) and ends with ``data: [DONE]``; this deployment does
the same with words of the question, one list per word with a pause between them, so the
vLLM expert's face (``VllmIngress``) and everything after it run for real without a GPU.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any


def _event(model: str, delta: dict[str, str], finish: str | None = None) -> str:
    chunk = {"id": "chatcmpl-cpu", "object": "chat.completion.chunk", "created": 0,
             "model": model, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n"


class EchoEngine:
    """Answers "echo: <question>" word by word, ``delay_s`` apart."""

    def __init__(self, delay_s: float = 0.1) -> None:
        self.delay_s = delay_s
        self.requests: list[dict[str, Any]] = []

    async def chat(self, request: Any) -> AsyncIterator[list[str]]:
        body = request if isinstance(request, dict) else request.model_dump()
        self.requests.append(body)
        if not body.get("stream"):
            raise ValueError("the mesh's face always streams")
        question = body["messages"][-1]["content"]
        words = ("echo: " + question).split(" ")[: body.get("max_tokens") or None]
        model = body["model"]
        yield [_event(model, {"role": "assistant", "content": ""})]
        for i, word in enumerate(words):
            await asyncio.sleep(self.delay_s)
            yield [_event(model, {"content": word if i == 0 else " " + word})]
        yield [_event(model, {}, "stop"), "data: [DONE]\n\n"]

    async def seen(self) -> list[dict[str, Any]]:
        """The request bodies received so far."""
        return self.requests
