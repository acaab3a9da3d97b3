"""The routing decision: which experts answer, or "out of scope", and a sentence saying why.

Kept apart from scoring so the rules (threshold, margin for compound requests, fan-out cap,
fallback) are pure functions of the scores: easy to test, easy to explain in ``mesh route``,
and the same whatever model produced the scores.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_SNIPPET_CHARS = 80


@dataclass(frozen=True)
class ExpertScore:
    """How well one expert matches a request.

    ``score`` (0..1) ranks experts: the example similarity plus the linear head's evidence.
    ``similarity`` (0..1) is the example similarity alone, the evidence that the expert covers
    the request at all: the out-of-scope threshold applies to it (None: same as ``score``).
    """

    expert: str
    score: float
    nearest_example: str
    similarity: float | None = None

    @property
    def coverage(self) -> float:
        """What the out-of-scope threshold is compared with."""
        return self.score if self.similarity is None else self.similarity


@dataclass(frozen=True)
class RouteDecision:
    """The router's answer for one request.

    ``scores`` lists every candidate expert, best first; ``chosen`` is who answers (several for
    a compound request, the fallback expert or nobody when ``out_of_scope``); ``threshold`` is
    the out-of-scope threshold in force; ``reason`` is a sentence for people and logs.
    """

    scores: list[ExpertScore]
    chosen: list[str]
    out_of_scope: bool
    threshold: float
    reason: str
    reviewed: bool = False
    """Taken again by the review model (``mesh.router.review``) because the first was unsure."""

    @property
    def best(self) -> ExpertScore | None:
        """The highest-scoring expert, or None when no expert was a candidate."""
        return self.scores[0] if self.scores else None


def rank(scores: Iterable[ExpertScore]) -> list[ExpertScore]:
    """Best first; ties broken by name so equal scores always give the same order."""
    return sorted(scores, key=lambda s: (-s.score, s.expert))


def clear_winner(scores: Iterable[ExpertScore], margin: float) -> ExpertScore | None:
    """The best expert if it leads the runner-up by at least ``margin``, else None.

    Used per clause: a short clause ("a high temperature") can half-match an unrelated expert,
    so only a clause with a clear winner adds that expert to a compound decision.
    """
    ranked = rank(scores)
    if not ranked:
        return None
    if len(ranked) > 1 and ranked[0].score - ranked[1].score < margin:
        return None
    return ranked[0]


def snippet(text: str, limit: int = _SNIPPET_CHARS) -> str:
    """Shorten an example for a one-line reason."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def select_experts(
    ranked: Sequence[ExpertScore],
    threshold: float,
    margin: float,
    max_experts: int,
    clause_winners: Sequence[ExpertScore] = (),
) -> list[ExpertScore]:
    """The experts that answer an in-scope request.

    The best one always (the caller has checked it clears the threshold), then each clause's
    own clear winner (:func:`clear_winner`) that clears the threshold ("what fertilizer for
    my wheat, and how do I fix my slow laptop?" has one per clause), then every other expert
    that clears the threshold and lies within ``margin`` of the best: a request that straddles
    two topics scores high for both, while a plain one leaves the runner-up well behind.
    At most ``max_experts``.
    """
    if not ranked:
        return []
    best = ranked[0]
    picked = [best]
    candidates = [w for w in rank(clause_winners) if w.coverage >= threshold]
    candidates += [
        s for s in ranked[1:] if s.coverage >= threshold and best.score - s.score <= margin
    ]
    for s in candidates:
        if len(picked) >= max_experts:
            break
        if all(s.expert != p.expert for p in picked):
            picked.append(s)
    return picked


def judged_on(score: ExpertScore) -> str:
    """What the threshold was compared with: the similarity, or the score itself."""
    return "score" if score.similarity is None else "similarity"


def out_of_scope_reason(
    ranked: Sequence[ExpertScore], threshold: float, fallback: str | None
) -> str:
    """Why a request is out of scope, naming what happens instead."""
    then = f"; the fallback expert '{fallback}' answers" if fallback else "; no expert answers"
    if not ranked:
        return f"no expert is available for this request{then}"
    best = ranked[0]
    return (
        f"out of scope: best match '{best.expert}' has {judged_on(best)} {best.coverage:.2f} "
        f"< threshold {threshold:.2f} (nearest example: '{snippet(best.nearest_example)}'){then}"
    )


def in_scope_reason(picked: Sequence[ExpertScore], threshold: float, margin: float) -> str:
    """Why these experts answer: the best match, its nearest example, and any co-answerers.

    A co-answerer's score is the one that chose it: for a clause winner, its clause's score.
    """
    best = picked[0]
    similarity = "" if best.similarity is None else f", similarity {best.coverage:.2f}"
    reason = (
        f"best match '{best.expert}' (score {best.score:.2f}{similarity} ≥ threshold "
        f"{threshold:.2f}), nearest example: '{snippet(best.nearest_example)}'"
    )
    if len(picked) > 1:
        others = ", ".join(f"'{s.expert}' ({s.score:.2f})" for s in picked[1:])
        reason += (
            f"; also {others}: each best for a clause or within margin {margin:.2f} "
            "of the best (compound request)"
        )
    return reason


def decide(
    scores: Iterable[ExpertScore],
    threshold: float,
    margin: float,
    max_experts: int,
    fallback: str | None = None,
    clause_winners: Sequence[ExpertScore] = (),
) -> RouteDecision:
    """Turn per-expert scores into a decision.

    Out of scope when the best expert's similarity is below ``threshold`` (or there is no
    candidate): then
    ``chosen`` is ``[fallback]`` if one is configured, else empty. Otherwise the best expert
    plus the co-answerers of :func:`select_experts` (``clause_winners``: the best expert of
    each clause of a compound request).
    """
    ranked = rank(scores)
    if not ranked or ranked[0].coverage < threshold:
        return RouteDecision(
            scores=ranked,
            chosen=[fallback] if fallback else [],
            out_of_scope=True,
            threshold=threshold,
            reason=out_of_scope_reason(ranked, threshold, fallback),
        )
    picked = select_experts(ranked, threshold, margin, max_experts, clause_winners)
    return RouteDecision(
        scores=ranked,
        chosen=[s.expert for s in picked],
        out_of_scope=False,
        threshold=threshold,
        reason=in_scope_reason(picked, threshold, margin),
    )


WEAK_BAND = 0.1
"""A best match within this much above the threshold is weak: context may overrule it."""


def is_weak(ranked: Sequence[ExpertScore], threshold: float) -> bool:
    """True when the best match is missing, out of scope, or only just above the threshold."""
    return not ranked or ranked[0].coverage < threshold + WEAK_BAND


def is_ambiguous(ranked: Sequence[ExpertScore], threshold: float, margin: float) -> bool:
    """True when the request alone gives no clear winner: weak, or a near tie."""
    if is_weak(ranked, threshold):
        return True
    return len(ranked) > 1 and ranked[0].score - ranked[1].score < margin
