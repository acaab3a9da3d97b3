"""How the orchestrator reaches experts: one small interface, one class per way of reaching them.

The service only sees ``ExpertTransport``; `mesh up` plugs in Ray Serve handles
(``mesh.serving.handle_transport``), tests and single-process runs plug in ``LocalTransport``
(the same expert code, loaded in this process), and federation adds remote nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from mesh.config import ExpertManifest
from mesh.errors import ExpertDeadlineExceeded, ExpertNotFound
from mesh.experts import Expert, build_expert
from mesh.types import ExpertInput, ExpertOutput, expert_name


@dataclass(frozen=True)
class ExpertState:
    """What operators see of an expert: replicas running and a one-word status."""

    replicas: int
    status: str  # HEALTHY | DEPLOYING | UNHEALTHY | UNAVAILABLE


def resolve_key(requested: str, keys: Collection[str]) -> str | None:
    """The key (``name@version``) a transport serves for ``requested``: the key itself, or a bare
    expert name when exactly one version of it is here (callers that predate versions, and
    partners' nodes, which serve one version per name). None when nothing matches."""
    if requested in keys:
        return requested
    matches = [k for k in keys if expert_name(k) == requested]
    return matches[0] if len(matches) == 1 else None


class ExpertTransport(Protocol):
    """Calls experts by key (``name@version``) under a deadline; raises mesh errors, never
    transport ones. States are keyed the same way."""

    async def infer(self, expert: str, request: ExpertInput, timeout_s: float) -> ExpertOutput:
        """One answer, or ExpertUnavailable / ExpertDeadlineExceeded / InvalidInput."""
        ...

    def infer_stream(
        self, expert: str, request: ExpertInput, timeout_s: float
    ) -> AsyncIterator[str]:
        """Text pieces of one answer as they are produced."""
        ...

    async def states(self) -> dict[str, ExpertState]:
        """Replicas and status of every expert this transport reaches."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


class LocalTransport:
    """Experts loaded in this process, run in worker threads (no Ray).

    Used by tests of the orchestrator and by anything that wants the mesh's behaviour without a
    cluster; it runs exactly the expert code a Serve replica runs.
    """

    def __init__(self, manifests: Sequence[ExpertManifest]) -> None:
        self._experts: dict[str, Expert] = {}
        for m in manifests:
            expert = build_expert(m)
            expert.load()
            self._experts[m.key] = expert

    def _get(self, name: str) -> Expert:
        key = resolve_key(name, self._experts)
        if key is None:
            raise ExpertNotFound(name, list(self._experts))
        return self._experts[key]

    async def infer(self, expert: str, request: ExpertInput, timeout_s: float) -> ExpertOutput:
        target = self._get(expert)
        try:
            return await asyncio.wait_for(asyncio.to_thread(target.infer, request), timeout_s)
        except TimeoutError:
            raise ExpertDeadlineExceeded(
                f"expert '{expert}' did not answer within {timeout_s:.1f} s"
            ) from None

    async def infer_stream(
        self, expert: str, request: ExpertInput, timeout_s: float
    ) -> AsyncIterator[str]:
        """Pieces as the expert yields them (each ``next`` in a worker thread), so a streaming
        runtime reaches the client token by token here as it does through Serve."""
        target = self._get(expert)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        pieces = iter(target.infer_stream(request))
        done = object()
        try:
            while True:
                remaining = max(deadline - loop.time(), 0.001)
                try:
                    piece = await asyncio.wait_for(
                        asyncio.to_thread(next, pieces, done), remaining
                    )
                except TimeoutError:
                    raise ExpertDeadlineExceeded(
                        f"expert '{expert}' did not finish streaming within {timeout_s:.1f} s"
                    ) from None
                if piece is done:
                    return
                assert isinstance(piece, str)
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                # Closing a generator that a worker thread is still advancing raises; the
                # thread finishes the piece and the generator is dropped with it.
                with contextlib.suppress(ValueError):
                    close()

    async def states(self) -> dict[str, ExpertState]:
        return {
            name: ExpertState(1, "HEALTHY" if e.ready() else "UNHEALTHY")
            for name, e in self._experts.items()
        }

    async def close(self) -> None:
        return None
