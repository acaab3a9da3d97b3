"""A small, real OpenAI-compatible HTTP server for tests (no model weights can be fetched here).

It speaks the parts of the API the ``openai`` runtime uses: ``GET /v1/models`` and
``POST /v1/chat/completions`` with and without ``stream: true`` (server-sent events, ending in
``data: [DONE]``). It checks the bearer token, answers by echoing the last user message word by
word, and fails on demand (``fail_next``) or answers slowly (``delay_s``) so the runtime's error
and deadline paths run against real HTTP.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 1 << 20


@dataclass
class Behaviour:
    """What the server does next; tests change it between calls."""

    token: str | None = "test-key"
    """Bearer token required on every call; None accepts any."""
    model: str = "echo-1"
    """The only model the server serves."""
    fail_next: list[int] = field(default_factory=list)
    """HTTP statuses for the next calls, one popped per call (e.g. [500, 429])."""
    delay_s: float = 0.0
    """Pause before answering, and between streamed pieces."""
    seen: list[dict[str, Any]] = field(default_factory=list)
    """Request bodies received by chat/completions, in order."""


def _answer_words(body: dict[str, Any]) -> list[str]:
    users = [m["content"] for m in body.get("messages", []) if m.get("role") == "user"]
    words = ("echo: " + (users[-1] if users else "")).split(" ")
    limit = body.get("max_tokens")
    if isinstance(limit, int):
        words = words[:limit]
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")  # no kept-alive sockets outlive the server
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def _error(self, status: int, message: str) -> None:
        self._json(status, {"error": {"message": message, "type": "test_error", "code": status}})

    def _authorised(self) -> bool:
        b = self.server.behaviour
        if b.token is not None and self.headers.get("Authorization") != f"Bearer {b.token}":
            self._error(401, "invalid api key")
            return False
        if b.fail_next:
            self._error(b.fail_next.pop(0), "failing on demand")
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorised():
            return
        if self.path.rstrip("/") != "/v1/models":
            self._error(404, f"no route {self.path}")
            return
        model = self.server.behaviour.model
        self._json(200, {"object": "list", "data": [
            {"id": model, "object": "model", "created": 0, "owned_by": "tests"}]})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(min(length, MAX_BODY)) or b"{}")
        if not self._authorised():
            return
        b = self.server.behaviour
        if self.path.rstrip("/") != "/v1/chat/completions":
            self._error(404, f"no route {self.path}")
            return
        if body.get("model") != b.model:
            self._error(404, f"model '{body.get('model')}' does not exist")
            return
        b.seen.append(body)
        time.sleep(b.delay_s)
        words = _answer_words(body)
        if body.get("stream"):
            self._stream(words, b)
            return
        self._json(200, {
            "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": b.model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "".join(words)}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": len(words),
                      "total_tokens": 3 + len(words)},
        })

    def _stream(self, words: list[str], b: Behaviour) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        for event in _chunks(words, b.model):
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
            time.sleep(b.delay_s)
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True


def _chunks(words: list[str], model: str) -> Iterator[dict[str, Any]]:
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
            "model": model}
    yield {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                "finish_reason": None}]}
    for w in words:
        yield {**base, "choices": [{"index": 0, "delta": {"content": w},
                                    "finish_reason": None}]}
    yield {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: Behaviour) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour = behaviour


class OpenAITestServer:
    """The server on a free loopback port, in a background thread; use as a context manager."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()
        self._server = _Server(self.behaviour)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def __enter__(self) -> OpenAITestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
