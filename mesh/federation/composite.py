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
from mesh.types import ExpertInput, ExpertOutput, expert_name


class CompositeTransport:
    """The hub's own expert versions (keys ``name@version``) through ``local``; partners'
    experts through ``remote``, which reaches each partner expert by name (a partner's node
    serves one version per name; its key is the registered manifest's)."""

    def __init__(self, local: ExpertTransport, local_keys: Sequence[str],
                 remote: RemoteTransport, registry: Registry) -> None:
        self.local = local
        self.local_keys = set(local_keys)
        self.local_names = {expert_name(k) for k in local_keys}
        self.remote = remote
        self.registry = registry

    def _pick(self, expert: str) -> tuple[ExpertTransport, str]:
        if expert in self.local_keys or expert in self.local_names:
            return self.local, expert
        return self.remote, expert_name(expert)

    async def infer(self, expert: str, request: ExpertInput, timeout_s: float) -> ExpertOutput:
        transport, target = self._pick(expert)
        return await transport.infer(target, request, timeout_s)

    def infer_stream(self, expert: str, request: ExpertInput, timeout_s: float
                     ) -> AsyncIterator[str]:
        transport, target = self._pick(expert)
        return transport.infer_stream(target, request, timeout_s)

    def routable(self) -> list[str]:
        """Experts (names) the router may choose right now."""
        healthy = self.registry.healthy_names()
        remote = [n for n in self.remote.experts() if n in healthy and self.remote.routable(n)]
        return sorted(self.local_names) + remote

    async def states(self) -> dict[str, ExpertState]:
        """By key: local versions as the local transport reports them, partner experts under
        their registered manifest's key."""
        out = await self.local.states()
        healthy = self.registry.healthy_names()
        keys = {e.manifest.name: e.manifest.key for e in self.registry.listing()}
        for name, state in (await self.remote.states()).items():
            out[keys.get(name, name)] = state if name in healthy else ExpertState(0, "UNAVAILABLE")
        return out

    async def close(self) -> None:
        await self.local.close()
        await self.remote.close()
