"""The orchestrator's logic, free of gRPC: validate, route, dispatch, combine, remember.

The servicer converts wire messages into these calls and back; tests and other transports
drive this class directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import numpy as np

from mesh.config import ExpertManifest, OrchestratorConfig, RouterConfig
from mesh.errors import (
    ExpertDeadlineExceeded,
    ExpertNotFound,
    InputTooLarge,
    InvalidInput,
    MeshError,
)
from mesh.experts.transport import ExpertState, ExpertTransport
from mesh.observability.cost import CostLedger, CostRow, prices
from mesh.observability.metrics import MeshMetrics
from mesh.orchestrator.admission import Admission
from mesh.orchestrator.combine import NO_EXPERT, Part, combine
from mesh.orchestrator.sessions import SessionRecord, SessionStore, new_session_id
from mesh.orchestrator.traffic import Split, VersionPicker
from mesh.router import ExpertScore, RouteDecision, Router
from mesh.tenants import OPEN, Tenant
from mesh.types import ExpertInput, ExpertOutput, TurnRecord, expert_key, expert_name, key_version

log = logging.getLogger(__name__)


@dataclass
class AskCommand:
    """A question for the mesh, decoded from the wire."""

    text: str = ""
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    session_id: str = ""
    experts: list[str] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass
class Timings:
    """Where the time of one request went, milliseconds."""

    route_ms: float = 0.0
    experts_ms: float = 0.0
    total_ms: float = 0.0
    cold_start_ms: float = 0.0
    """Longest call to an expert that had zero replicas when the request reached it (the
    request waited for a replica to start); 0 when every expert was warm."""


@dataclass
class AskResult:
    """The mesh's answer."""

    answer: str
    parts: list[Part]
    route: RouteDecision
    timings: Timings
    session_id: str


@dataclass
class _Turn:
    """A request between routing and its answer."""

    start: float
    deadline: float
    decision: RouteDecision
    route_ms: float
    request: ExpertInput
    experts_start: float
    session_id: str
    new_session: bool
    keys: dict[str, str]
    """The version that answers, per chosen expert: expert name -> ``name@version``."""
    tenant: str
    cold_ms: float = 0.0


class Orchestrator:
    """Routes each request to experts, calls them in parallel under its deadline, combines
    their answers and records the turn in the session."""

    def __init__(
        self,
        manifests: Sequence[ExpertManifest],
        transport: ExpertTransport,
        sessions: SessionStore,
        config: OrchestratorConfig | None = None,
        router_config: RouterConfig | None = None,
        router: Router | None = None,
        metrics: MeshMetrics | None = None,
        versions: VersionPicker | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.config = config or OrchestratorConfig()
        self.metrics = metrics or MeshMetrics(CostLedger(prices(list(manifests))))
        self.transport = transport
        self.sessions = sessions
        self.router = router or Router(router_config or RouterConfig())
        self.versions = versions or VersionPicker(None)
        self.admission = admission or Admission.open(self.metrics)
        self._refresh_lock = asyncio.Lock()
        self.set_experts(manifests)

    def set_experts(self, manifests: Sequence[ExpertManifest]) -> None:
        """Replace the expert set at run time (partners publishing or leaving, versions added):
        the router first, so no request is routed to a name the orchestrator does not know yet.

        Several manifests may share a name (versions of one expert); the router reads the
        stable version's manifest, and each request's session picks the version that answers.
        """
        by_key = {m.key: m for m in manifests}
        versions: dict[str, list[str]] = {}
        for m in manifests:
            versions.setdefault(m.name, []).append(m.version)
        self.versions.set_versions(versions)
        self.versions.refresh()
        stable = self._stable_manifests(by_key)
        self.router.set_experts(list(stable.values()))
        self.by_key = by_key
        self.manifests = stable
        self.metrics.ledger.set_prices(prices(list(manifests)))

    def _stable_manifests(self, by_key: dict[str, ExpertManifest]) -> dict[str, ExpertManifest]:
        return {name: by_key[expert_key(name, split.stable)]
                for name, split in self.versions.splits().items()}

    async def _follow_splits(self) -> None:
        """Apply a traffic split changed by another process (`mesh canary`, `promote`,
        `rollback`): when a promotion changed a stable version, the router reads the new
        stable manifest."""
        if not self.versions.refresh():
            return
        async with self._refresh_lock:
            stable = self._stable_manifests(self.by_key)
            if stable != self.manifests:
                await asyncio.to_thread(self.router.set_experts, list(stable.values()))
                self.manifests = stable

    def splits(self) -> dict[str, Split]:
        """The traffic split in force per expert."""
        return self.versions.splits()

    def _routable(self, tenant: Tenant) -> list[str] | None:
        """Experts the router may choose now for ``tenant``: those the transport can reach (a
        federated transport leaves out partners whose node is down) and the tenant may use;
        None means all of them."""
        routable = getattr(self.transport, "routable", None)
        names = list(routable()) if routable is not None else None
        if not tenant.experts:
            return names
        return [n for n in names or list(self.manifests) if tenant.allows(n)]

    # ---- validation -------------------------------------------------------------------------

    def _validate(self, cmd: AskCommand) -> None:
        size = len(cmd.text.encode("utf-8"))
        if size > self.config.max_text_bytes:
            raise InputTooLarge(
                f"input.text is {size} bytes, over the limit of {self.config.max_text_bytes}; "
                "shorten it, or raise orchestrator.max_text_bytes in the mesh config"
            )
        if not cmd.text.strip() and not cmd.tensors:
            raise InvalidInput(
                "input.text", "is empty; send a question (or tensors, naming the expert)"
            )
        for name in cmd.experts:
            if name not in self.manifests and name not in self.by_key:
                raise ExpertNotFound(name, list(self.manifests) + list(self.by_key))
        if cmd.tensors and not cmd.text.strip() and not cmd.experts:
            raise InvalidInput(
                "experts", "a request with tensors and no text must name its expert in `experts`"
            )

    async def _history(self, session_id: str, tenant: Tenant) -> list[TurnRecord]:
        if not session_id:
            return []
        return await asyncio.to_thread(
            self.sessions.recent_turns, session_id, self.config.history_turns, tenant.name
        )

    def _forced(self, experts: list[str]) -> RouteDecision:
        names = list(dict.fromkeys(expert_name(e) for e in experts))
        scores = [ExpertScore(e, 1.0, "") for e in names]
        return RouteDecision(scores, names, False, self.router.threshold,
                             "experts named by the client")

    def _versions_for(self, cmd: AskCommand, chosen: list[str], session_id: str
                      ) -> dict[str, str]:
        """The key that answers per chosen expert: the version the client named
        (``name@version``), else the session's place in the expert's traffic split."""
        named = {expert_name(e): e for e in cmd.experts if e in self.by_key}
        return {name: named.get(name) or expert_key(name, self.versions.pick(name, session_id))
                for name in chosen}

    # ---- the request path --------------------------------------------------------------------

    async def _decide(
        self, cmd: AskCommand, history: list[TurnRecord], tenant: Tenant
    ) -> tuple[RouteDecision, float]:
        start = time.perf_counter()
        if cmd.experts:
            decision = self._forced(cmd.experts)
        else:
            # Off the event loop: embedding is CPU work that releases the GIL, so concurrent
            # requests route in parallel and the loop keeps serving (measured: x2 req/s at c=8).
            decision = await asyncio.to_thread(self.router.route, cmd.text, history,
                                               self._routable(tenant))
        seconds = time.perf_counter() - start
        self.metrics.route_seconds.observe(seconds)
        if decision.reviewed:
            self.metrics.route_reviews.inc()
        return decision, seconds * 1000

    async def _begin(self, cmd: AskCommand, timeout_s: float | None, tenant: Tenant) -> _Turn:
        """Everything before the experts are called: validate, read history, route."""
        start = time.perf_counter()
        deadline = start + (timeout_s or self.config.default_timeout_s)
        await self._follow_splits()
        self._validate(cmd)
        history = await self._history(cmd.session_id, tenant)
        decision, route_ms = await self._decide(cmd, history, tenant)
        request = ExpertInput(cmd.text, cmd.tensors, history, cmd.parameters)
        # A new session's id is fixed before dispatch: it decides which versions answer.
        session_id = cmd.session_id or new_session_id()
        keys = self._versions_for(cmd, decision.chosen, session_id)
        return _Turn(start, deadline, decision, route_ms, request, time.perf_counter(),
                     session_id, not cmd.session_id, keys, tenant.name)

    async def _finish(self, cmd: AskCommand, turn: _Turn, parts: list[Part]) -> AskResult:
        """Everything after: combine, record the turn durably, report timings."""
        experts_ms = (time.perf_counter() - turn.experts_start) * 1000
        answer = combine(parts) if parts else NO_EXPERT
        session_id = await self._record(cmd, turn, answer, [p.expert for p in parts])
        total_ms = (time.perf_counter() - turn.start) * 1000
        timings = Timings(turn.route_ms, experts_ms, total_ms, turn.cold_ms)
        return AskResult(answer, parts, turn.decision, timings, session_id)

    async def ask(self, cmd: AskCommand, timeout_s: float | None = None,
                  tenant: Tenant = OPEN) -> AskResult:
        """Answer one request of ``tenant`` within its quota; raises MeshError subclasses
        with their status codes."""
        async with self._call(cmd, timeout_s, tenant) as turn:
            parts = await self._dispatch(turn)
            result = await self._finish(cmd, turn, parts)
        return result

    async def ask_stream(
        self, cmd: AskCommand, timeout_s: float | None = None, tenant: Tenant = OPEN
    ) -> AsyncIterator[tuple[str, str] | AskResult]:
        """Yield ``(expert, text_delta)`` pieces as experts produce them, then the AskResult.

        Experts stream one after another in route order, so each part reads whole.
        """
        async with self._call(cmd, timeout_s, tenant) as turn:
            self.metrics.fanout.observe(len(turn.decision.chosen))
            parts: list[Part] = []
            scores = {s.expert: s.score for s in turn.decision.scores}
            for name in turn.decision.chosen:
                pieces: list[str] = []
                remaining = max(turn.deadline - time.perf_counter(), 0.001)
                key = turn.keys[name]
                with self._watch(key, turn) as watch:
                    async for piece in self.transport.infer_stream(key, turn.request,
                                                                   remaining):
                        pieces.append(piece)
                        yield (name, piece)
                output = ExpertOutput(text="".join(pieces))
                parts.append(Part(name, self._org(name), output, scores.get(name, 0.0),
                                  watch.ms, version=key_version(key)))
            if not parts:
                yield ("", NO_EXPERT)
            result = await self._finish(cmd, turn, parts)
        yield result

    @asynccontextmanager
    async def _call(self, cmd: AskCommand, timeout_s: float | None, tenant: Tenant
                    ) -> AsyncIterator[_Turn]:
        """One Ask or AskStream: admitted within the tenant's quota (its places held until the
        body ends), validated and routed to experts the tenant may use, its final status
        counted in ``mesh_asks_total``."""
        try:
            async with self.admission.admitted(tenant) as gate:
                turn = await self._begin(cmd, timeout_s, tenant)
                await gate.experts(turn.decision.chosen)
                yield turn
        except BaseException as e:
            self.metrics.asks.labels(status_name(e)).inc()
            raise
        self.metrics.asks.labels("OK").inc()

    def _org(self, expert: str) -> str:
        m = self.manifests.get(expert_name(expert))
        return m.organization if m else ""

    def _watch(self, expert: str, turn: _Turn) -> _ExpertCall:
        return _ExpertCall(self, expert, turn)

    async def _dispatch(self, turn: _Turn) -> list[Part]:
        decision, request, deadline = turn.decision, turn.request, turn.deadline
        self.metrics.fanout.observe(len(decision.chosen))
        if not decision.chosen:
            return []
        scores = {s.expert: s.score for s in decision.scores}

        async def call(name: str) -> Part:
            remaining = max(deadline - time.perf_counter(), 0.001)
            key = turn.keys[name]
            with self._watch(key, turn) as watch:
                output = await self.transport.infer(key, request, remaining)
            return Part(name, self._org(name), output, scores.get(name, 0.0), watch.ms,
                        version=key_version(key))

        results = await asyncio.gather(*(call(n) for n in decision.chosen), return_exceptions=True)
        if not any(isinstance(r, Part) for r in results):
            first = results[0]
            assert isinstance(first, BaseException)
            raise first
        parts: list[Part] = []
        for name, result in zip(decision.chosen, results, strict=True):
            if isinstance(result, Part):
                parts.append(result)
                continue
            # Some experts answered: keep their parts and say which one could not.
            if not isinstance(result, MeshError):
                log.error("expert %s failed", name, exc_info=result)
            failed = ExpertOutput(text=f"(no answer: {_short(result)})",
                                  metadata={"error": type(result).__name__})
            parts.append(Part(name, self._org(name), failed, scores.get(name, 0.0), 0.0,
                              version=key_version(turn.keys[name])))
        return parts

    async def _record(self, cmd: AskCommand, turn: _Turn, answer: str, experts: list[str]
                      ) -> str:
        def write() -> str:
            session_id = turn.session_id
            if turn.new_session:
                self.sessions.create(session_id, turn.tenant)
            self.sessions.append(
                session_id, TurnRecord(cmd.text, answer, tuple(experts), time.time())
            )
            return session_id

        return await asyncio.to_thread(write)

    # ---- the other calls ---------------------------------------------------------------------

    async def route(self, text: str, session_id: str = "", tenant: Tenant = OPEN
                    ) -> tuple[RouteDecision, float]:
        """Explain how a request would be routed, without calling experts (it routes, so it
        counts against the tenant's quota)."""
        cmd = AskCommand(text=text, session_id=session_id)
        async with self.admission.admitted(tenant):
            self._validate(cmd)
            history = await self._history(session_id, tenant)
            return await self._decide(cmd, history, tenant)

    async def list_experts(self, tenant: Tenant = OPEN
                           ) -> list[tuple[ExpertManifest, ExpertState]]:
        """Every expert version the tenant may use, with its replicas and status, by name
        then version."""
        await self._follow_splits()
        states = await self.transport.states()
        missing = ExpertState(0, "UNAVAILABLE")
        return [(m, states.get(key, states.get(m.name, missing)))
                for key, m in sorted(self.by_key.items()) if tenant.allows(m.name)]

    def costs(self) -> dict[str, CostRow]:
        """Each expert's replica-seconds, requests and cost per request so far."""
        return {row.expert: row for row in self.metrics.ledger.rows()}

    async def get_session(self, session_id: str, tenant: Tenant = OPEN) -> SessionRecord:
        """A session's turns, if it is the tenant's; raises SessionNotFound."""
        if not session_id:
            raise InvalidInput("session_id", "is empty; pass the id an Ask response returned")
        return await asyncio.to_thread(self.sessions.get, session_id, tenant.name)


def status_name(err: BaseException) -> str:
    """The gRPC status name a failure reaches the client with (the interceptor's mapping)."""
    if isinstance(err, MeshError):
        return err.code.name
    if isinstance(err, asyncio.CancelledError | GeneratorExit):
        return "CANCELLED"
    return "INTERNAL"


class _ExpertCall:
    """Times one expert call and records it: status, latency, and whether it found the expert
    at zero replicas (a cold start, charged to the turn's ``cold_ms``). A deadline missed during
    a cold start says so, since the fix differs (min_replicas, or a longer deadline)."""

    def __init__(self, orchestrator: Orchestrator, expert: str, turn: _Turn) -> None:
        self.o, self.expert, self.turn = orchestrator, expert, turn
        self.cold = orchestrator.metrics.ledger.is_cold(expert)
        self.ms = 0.0

    def __enter__(self) -> _ExpertCall:
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, kind: object, err: BaseException | None, tb: object) -> None:
        seconds = time.perf_counter() - self.t0
        self.ms = seconds * 1000
        org = self.o._org(self.expert)
        if err is None:
            self.o.metrics.ledger.answered(self.expert, time.monotonic())
        self.o.metrics.record_expert_call(
            self.expert, org, "OK" if err is None else status_name(err), seconds, self.cold)
        if self.cold:
            self.turn.cold_ms = max(self.turn.cold_ms, self.ms)
            if isinstance(err, ExpertDeadlineExceeded):
                raise ExpertDeadlineExceeded(
                    f"{err}; it had zero replicas and was still starting one (cold start): "
                    "raise its autoscaling.min_replicas or the request's deadline"
                ) from err


def _short(err: BaseException, limit: int = 200) -> str:
    text = str(err) if isinstance(err, MeshError) else "internal error"
    return text if len(text) <= limit else text[: limit - 1] + "…"
