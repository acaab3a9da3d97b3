"""One transport for the orchestrator: the hub's own experts, and partners' through the registry.

The orchestrator stays unaware of federation: it calls ``infer`` by expert name and asks
``routable()`` which experts the router may choose now (local ones, plus partner experts whose
node heartbeats in time and whose circuit breaker is closed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from mesh.experts.transport import ExpertState, ExpertTransport
from mesh.federation.registry import Registry
from mesh.federation.remote import RemoteTransport
from mesh.types import ExpertInput, ExpertOutput


class CompositeTransport:
    """Local experts by name through ``local``, every other name through ``remote``."""

    def __init__(self, local: ExpertTransport, local_names: Sequence[str],
                 remote: RemoteTransport, registry: Registry) -> None:
        self.local = local
        self.local_names = set(local_names)
        self.remote = remote
        self.registry = registry

    def _pick(self, expert: str) -> ExpertTransport:
        return self.local if expert in self.local_names else self.remote

    async def infer(self, expert: str, request: ExpertInput, timeout_s: float) -> ExpertOutput:
        return await self._pick(expert).infer(expert, request, timeout_s)

    def infer_stream(self, expert: str, request: ExpertInput, timeout_s: float
                     ) -> AsyncIterator[str]:
        return self._pick(expert).infer_stream(expert, request, timeout_s)

    def routable(self) -> list[str]:
        """Experts the router may choose right now."""
        healthy = self.registry.healthy_names()
        remote = [n for n in self.remote.experts() if n in healthy and self.remote.routable(n)]
        return sorted(self.local_names) + remote

    async def states(self) -> dict[str, ExpertState]:
        out = await self.local.states()
        healthy = self.registry.healthy_names()
        for name, state in (await self.remote.states()).items():
            out[name] = state if name in healthy else ExpertState(0, "UNAVAILABLE")
        return out

    async def close(self) -> None:
        await self.local.close()
        await self.remote.close()
