"""Reaching experts hosted on this cluster's Ray Serve through DeploymentHandles.

Measured on 2 cores (docs/benchmarks.md): a handle hop costs a few ms and skips Serve's proxy,
which is why the orchestrator holds handles instead of calling Serve's gRPC ingress.
Errors raised by an expert (InvalidInput, ...) come back as Ray's task errors; they are unwrapped
so the client sees the expert's own status code, never INTERNAL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from mesh.errors import ExpertDeadlineExceeded, ExpertNotFound, ExpertUnavailable, MeshError
from mesh.experts.transport import ExpertState, resolve_key
from mesh.types import ExpertInput, ExpertOutput


def _unwrap(exc: BaseException, expert: str) -> BaseException:
    """The mesh error an expert raised, or ExpertUnavailable for failures of Ray itself."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, MeshError):
        return cause
    if isinstance(exc, MeshError):
        return exc
    return ExpertUnavailable(f"expert '{expert}' failed: {type(exc).__name__}")


def _word(status: object) -> str:
    """Serve's status enums arrive as enums or as their string values, depending on the path."""
    return str(getattr(status, "value", status))


class ServeTransport:
    """ExpertTransport over Ray Serve applications, one per expert version (named by its key,
    ``name@version``)."""

    def __init__(self, experts: list[str]) -> None:
        self._known = set(experts)
        self._handles: dict[str, Any] = {}

    def _handle(self, requested: str) -> Any:
        name = resolve_key(requested, self._known)
        if name is None:
            raise ExpertNotFound(requested, sorted(self._known))
        handle = self._handles.get(name)
        if handle is None:
            from ray import serve

            try:
                handle = serve.get_app_handle(name)
            except Exception as e:
                raise ExpertUnavailable(f"expert '{name}' is not deployed: {e}") from e
            self._handles[name] = handle
        return handle

    async def infer(self, expert: str, request: ExpertInput, timeout_s: float) -> ExpertOutput:
        response = self._handle(expert).infer.remote(request)
        try:
            result: ExpertOutput = await asyncio.wait_for(response, timeout_s)
            return result
        except TimeoutError:
            response.cancel()
            raise ExpertDeadlineExceeded(
                f"expert '{expert}' did not answer within {timeout_s:.2f} s"
            ) from None
        except MeshError:
            raise
        except Exception as e:
            raise _unwrap(e, expert) from None

    async def infer_stream(
        self, expert: str, request: ExpertInput, timeout_s: float
    ) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        stream = self._handle(expert).options(stream=True).infer_stream.remote(request)
        iterator = stream.__aiter__()
        while True:
            remaining = deadline - loop.time()
            try:
                piece = await asyncio.wait_for(iterator.__anext__(), max(remaining, 0.001))
            except StopAsyncIteration:
                return
            except TimeoutError:
                stream.cancel()
                raise ExpertDeadlineExceeded(
                    f"expert '{expert}' did not finish streaming within {timeout_s:.2f} s"
                ) from None
            except MeshError:
                raise
            except Exception as e:
                raise _unwrap(e, expert) from None
            yield piece

    async def states(self) -> dict[str, ExpertState]:
        from ray import serve

        status = await asyncio.to_thread(serve.status)
        out: dict[str, ExpertState] = {}
        for name in self._known:
            app = status.applications.get(name)
            if app is None:
                out[name] = ExpertState(0, "UNAVAILABLE")
                continue
            replicas = sum(
                count for d in app.deployments.values()
                for state, count in d.replica_states.items() if _word(state) == "RUNNING"
            )
            word = {"RUNNING": "HEALTHY", "DEPLOYING": "DEPLOYING"}.get(_word(app.status),
                                                                       "UNHEALTHY")
            out[name] = ExpertState(replicas, word)
        return out

    async def close(self) -> None:
        self._handles.clear()
