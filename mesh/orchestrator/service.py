"""The orchestrator's logic, free of gRPC: validate, route, dispatch, combine, remember.

The servicer converts wire messages into these calls and back; tests and other transports
drive this class directly.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence
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
from mesh.orchestrator.combine import NO_EXPERT, Part, combine
from mesh.orchestrator.sessions import SessionRecord, SessionStore
from mesh.router import ExpertScore, RouteDecision, Router
from mesh.types import ExpertInput, ExpertOutput, TurnRecord

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
    ) -> None:
        self.config = config or OrchestratorConfig()
        self.metrics = metrics or MeshMetrics(CostLedger(prices(list(manifests))))
        self.transport = transport
        self.sessions = sessions
        self.manifests = {m.name: m for m in manifests}
        self.router = router or Router(router_config or RouterConfig())
        self.router.set_experts(list(manifests))

    def set_experts(self, manifests: Sequence[ExpertManifest]) -> None:
        """Replace the expert set at run time (partners publishing or leaving): the router
        first, so no request is routed to a name the orchestrator does not know yet."""
        self.router.set_experts(list(manifests))
        self.manifests = {m.name: m for m in manifests}
        self.metrics.ledger.set_prices(prices(list(manifests)))

    def _routable(self) -> list[str] | None:
        """Experts the router may choose now, when the transport knows (a federated transport
        leaves out partners whose node is down); None means all of them."""
        routable = getattr(self.transport, "routable", None)
        return list(routable()) if routable is not None else None

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
            if name not in self.manifests:
                raise ExpertNotFound(name, list(self.manifests))
        if cmd.tensors and not cmd.text.strip() and not cmd.experts:
            raise InvalidInput(
                "experts", "a request with tensors and no text must name its expert in `experts`"
            )

    async def _history(self, session_id: str) -> list[TurnRecord]:
        if not session_id:
            return []
        return await asyncio.to_thread(
            self.sessions.recent_turns, session_id, self.config.history_turns
        )

    def _forced(self, experts: list[str]) -> RouteDecision:
        scores = [ExpertScore(e, 1.0, "") for e in experts]
        return RouteDecision(scores, list(experts), False, self.router.threshold,
                             "experts named by the client")

    # ---- the request path --------------------------------------------------------------------

    async def _decide(
        self, cmd: AskCommand, history: list[TurnRecord]
    ) -> tuple[RouteDecision, float]:
        start = time.perf_counter()
        if cmd.experts:
            decision = self._forced(cmd.experts)
        else:
            # Off the event loop: embedding is CPU work that releases the GIL, so concurrent
            # requests route in parallel and the loop keeps serving (measured: x2 req/s at c=8).
            decision = await asyncio.to_thread(self.router.route, cmd.text, history,
                                               self._routable())
        seconds = time.perf_counter() - start
        self.metrics.route_seconds.observe(seconds)
        return decision, seconds * 1000

    async def _begin(self, cmd: AskCommand, timeout_s: float | None) -> _Turn:
        """Everything before the experts are called: validate, read history, route."""
        start = time.perf_counter()
        deadline = start + (timeout_s or self.config.default_timeout_s)
        self._validate(cmd)
        history = await self._history(cmd.session_id)
        decision, route_ms = await self._decide(cmd, history)
        request = ExpertInput(cmd.text, cmd.tensors, history, cmd.parameters)
        return _Turn(start, deadline, decision, route_ms, request, time.perf_counter())

    async def _finish(self, cmd: AskCommand, turn: _Turn, parts: list[Part]) -> AskResult:
        """Everything after: combine, record the turn durably, report timings."""
        experts_ms = (time.perf_counter() - turn.experts_start) * 1000
        answer = combine(parts) if parts else NO_EXPERT
        session_id = await self._record(cmd, answer, [p.expert for p in parts])
        total_ms = (time.perf_counter() - turn.start) * 1000
        timings = Timings(turn.route_ms, experts_ms, total_ms, turn.cold_ms)
        return AskResult(answer, parts, turn.decision, timings, session_id)

    async def ask(self, cmd: AskCommand, timeout_s: float | None = None) -> AskResult:
        """Answer one request; raises MeshError subclasses with their status codes."""
        try:
            turn = await self._begin(cmd, timeout_s)
            parts = await self._dispatch(turn)
            result = await self._finish(cmd, turn, parts)
        except BaseException as e:
            self.metrics.asks.labels(status_name(e)).inc()
            raise
        self.metrics.asks.labels("OK").inc()
        return result

    async def ask_stream(
        self, cmd: AskCommand, timeout_s: float | None = None
    ) -> AsyncIterator[tuple[str, str] | AskResult]:
        """Yield ``(expert, text_delta)`` pieces as experts produce them, then the AskResult.

        Experts stream one after another in route order, so each part reads whole.
        """
        try:
            turn = await self._begin(cmd, timeout_s)
            self.metrics.fanout.observe(len(turn.decision.chosen))
            parts: list[Part] = []
            scores = {s.expert: s.score for s in turn.decision.scores}
            for name in turn.decision.chosen:
                pieces: list[str] = []
                remaining = max(turn.deadline - time.perf_counter(), 0.001)
                with self._watch(name, turn) as watch:
                    async for piece in self.transport.infer_stream(name, turn.request,
                                                                   remaining):
                        pieces.append(piece)
                        yield (name, piece)
                output = ExpertOutput(text="".join(pieces))
                parts.append(Part(name, self._org(name), output, scores.get(name, 0.0),
                                  watch.ms))
            if not parts:
                yield ("", NO_EXPERT)
            result = await self._finish(cmd, turn, parts)
        except BaseException as e:
            self.metrics.asks.labels(status_name(e)).inc()
            raise
        self.metrics.asks.labels("OK").inc()
        yield result

    def _org(self, expert: str) -> str:
        m = self.manifests.get(expert)
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
            with self._watch(name, turn) as watch:
                output = await self.transport.infer(name, request, remaining)
            return Part(name, self._org(name), output, scores.get(name, 0.0), watch.ms)

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
            parts.append(Part(name, self._org(name), failed, scores.get(name, 0.0), 0.0))
        return parts

    async def _record(self, cmd: AskCommand, answer: str, experts: list[str]) -> str:
        def write() -> str:
            session_id = cmd.session_id or self.sessions.create()
            self.sessions.append(
                session_id, TurnRecord(cmd.text, answer, tuple(experts), time.time())
            )
            return session_id

        return await asyncio.to_thread(write)

    # ---- the other calls ---------------------------------------------------------------------

    async def route(self, text: str, session_id: str = "") -> tuple[RouteDecision, float]:
        """Explain how a request would be routed, without calling experts."""
        cmd = AskCommand(text=text, session_id=session_id)
        self._validate(cmd)
        history = await self._history(session_id)
        return await self._decide(cmd, history)

    async def list_experts(self) -> list[tuple[ExpertManifest, ExpertState]]:
        """Every expert with its replicas and status."""
        states = await self.transport.states()
        missing = ExpertState(0, "UNAVAILABLE")
        return [(m, states.get(name, missing)) for name, m in sorted(self.manifests.items())]

    def costs(self) -> dict[str, CostRow]:
        """Each expert's replica-seconds, requests and cost per request so far."""
        return {row.expert: row for row in self.metrics.ledger.rows()}

    async def get_session(self, session_id: str) -> SessionRecord:
        """A session's turns; raises SessionNotFound."""
        if not session_id:
            raise InvalidInput("session_id", "is empty; pass the id an Ask response returned")
        return await asyncio.to_thread(self.sessions.get, session_id)


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
