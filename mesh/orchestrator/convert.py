"""Orchestrator wire messages ↔ the service's own types (the only pb2 user besides the servicer)."""

from __future__ import annotations

from mesh.config import ExpertManifest
from mesh.experts.transport import ExpertState
from mesh.observability.cost import CostRow
from mesh.orchestrator.combine import Part
from mesh.orchestrator.service import AskCommand, AskResult
from mesh.orchestrator.sessions import SessionRecord
from mesh.orchestrator.traffic import Split
from mesh.proto.v1 import common_pb2, orchestrator_pb2
from mesh.router import RouteDecision
from mesh.wire import card_from_manifest, tensors_from_wire, tensors_to_wire, turns_to_wire


def ask_from_wire(req: orchestrator_pb2.AskRequest) -> AskCommand:
    """Decode an AskRequest; malformed tensors raise InvalidInput naming the field."""
    return AskCommand(
        text=req.input.text,
        tensors=tensors_from_wire(req.input.tensors),
        session_id=req.session_id,
        experts=list(dict.fromkeys(req.experts)),
        parameters=dict(req.parameters),
    )


def route_to_wire(decision: RouteDecision) -> orchestrator_pb2.RouteDecision:
    return orchestrator_pb2.RouteDecision(
        scores=[
            orchestrator_pb2.ExpertScore(expert=s.expert, score=s.score,
                                         nearest_example=s.nearest_example)
            for s in decision.scores
        ],
        chosen=list(decision.chosen),
        out_of_scope=decision.out_of_scope,
        threshold=decision.threshold,
        reason=decision.reason,
    )


def part_to_wire(p: Part) -> orchestrator_pb2.AnswerPart:
    return orchestrator_pb2.AnswerPart(
        expert=p.expert,
        organization=p.organization,
        output=common_pb2.Content(text=p.output.text, tensors=tensors_to_wire(p.output.tensors)),
        score=p.score,
        metadata=p.output.metadata,
        latency_ms=p.latency_ms,
        version=p.version,
    )


def result_to_wire(r: AskResult) -> orchestrator_pb2.AskResponse:
    return orchestrator_pb2.AskResponse(
        answer=r.answer,
        parts=[part_to_wire(p) for p in r.parts],
        route=route_to_wire(r.route),
        timings=orchestrator_pb2.Timings(
            route_ms=r.timings.route_ms, experts_ms=r.timings.experts_ms,
            total_ms=r.timings.total_ms, cold_start_ms=r.timings.cold_start_ms,
        ),
        session_id=r.session_id,
    )


def experts_to_wire(
    rows: list[tuple[ExpertManifest, ExpertState]],
    costs: dict[str, CostRow] | None = None,
    splits: dict[str, Split] | None = None,
) -> orchestrator_pb2.ListExpertsResponse:
    """One ExpertStatus per expert version, with its cost and its share of the traffic split
    (a partner expert, outside any split, serves all of its traffic)."""
    costs = costs or {}
    splits = splits or {}
    out = []
    for m, s in rows:
        split = splits.get(m.name)
        share = split.shares().get(m.version, 0.0) if split else 1.0
        role = "idle" if share == 0 else (
            "canary" if split is not None and split.canary == m.version else "stable")
        status = orchestrator_pb2.ExpertStatus(
            card=card_from_manifest(m), replicas=s.replicas, status=s.status,
            device="gpu" if m.resources.num_gpus > 0 else "cpu", share=share, role=role,
        )
        cost = costs.get(m.key)
        if cost is not None:
            status.replica_seconds = cost.replica_seconds
            status.requests = cost.requests
            status.cost_per_request = cost.cost_per_request
        out.append(status)
    return orchestrator_pb2.ListExpertsResponse(experts=out)


def session_to_wire(s: SessionRecord) -> orchestrator_pb2.Session:
    return orchestrator_pb2.Session(
        session_id=s.session_id, turns=turns_to_wire(s.turns), created_at=s.created_at
    )
