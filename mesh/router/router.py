"""The router: a request (and its conversation) → scores per expert → a decision.

One embedding call (the request, plus its clauses when it is compound, in one batch) and one
matrix product per request: ~2.5 ms median on 2 shared cores for CLINC150's 10 domains
(15,000 examples, read through prototypes), of which ~1.3-1.7 ms is the embedding. A second
call happens only for an ambiguous follow-up (below). The expert set can change at any time
without stopping requests or re-embedding unchanged experts.

Conversation awareness (first, simple version): a follow-up such as "and what about the side
effects?" often says nothing about its topic. When the request alone is ambiguous (best score
below the threshold, or a near tie within ``multi_expert_margin``) and the previous turn was
answered by an expert still available, the router scores the previous question and this request
together. The previous expert is preferred when, in that context, it clears the threshold and

* the request alone was out of scope (the context is the only evidence we have), or
* it was among the near-tied experts and the context makes it a clear winner (ahead of the
  runner-up by at least the margin).

Otherwise the decision for the request alone stands, so a new, clear topic switches experts.

Review: an English request the first model is unsure of, and that the conversation did not
settle, is decided again by a stronger model in its own space (``review.py``): ~15% of
CLINC150's requests, ~17 ms each, so the median stays the first model's.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from mesh.config import ExpertManifest, RouterConfig
from mesh.embedding import Embedder, process_wide, shared_embedder
from mesh.router.calibration import Calibration, calibrate
from mesh.router.clauses import split_clauses
from mesh.router.coalesce import CoalescingEmbedder
from mesh.router.decision import (
    ExpertScore,
    RouteDecision,
    clear_winner,
    decide,
    is_ambiguous,
    is_weak,
    judged_on,
    rank,
    snippet,
)
from mesh.router.head import HEAD_WEIGHT, LinearHead
from mesh.router.index import ExampleIndex
from mesh.router.language import LanguageDetector
from mesh.router.multilingual import MultilingualSpace, shared_multilingual_embedder
from mesh.router.review import Reviewer, ReviewSpace, needs_review, scope_threshold
from mesh.types import TurnRecord

# A clause adds an expert only when it clearly belongs to it: ahead of its runner-up by this
# much. Short clauses ("a high temperature, what should I do?") otherwise drift to whichever
# expert has the most generic examples; kept apart from multi_expert_margin, which governs
# near-ties of the whole request.
CLAUSE_MARGIN = 0.08


@dataclass(frozen=True)
class _State:
    """Everything one request reads; replaced whole, so a request never sees half an update."""

    index: ExampleIndex
    calibration: Calibration
    head: LinearHead | None
    multilingual: MultilingualSpace | None
    keys: tuple[str, ...] = ()
    """Each expert's name and content key: what a review space must have been built from."""


_blas_limited = False


def single_threaded_blas() -> None:
    """Keep numpy's BLAS to one thread in this process (once; idempotent).

    Routing multiplies one vector by a few thousand rows: microseconds of work that a
    multi-threaded BLAS turns into milliseconds of thread wake-ups, worse under load (measured on
    2 busy cores: 1.9 ms against 0.08 ms for 3,000 x 384). Scoped limits cost as much as they
    save (~1.8 ms per call), so the limit is process-wide: the router's process (the
    orchestrator) does no large linear algebra of its own.
    """
    global _blas_limited
    if not _blas_limited:
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1, user_api="blas")
        _blas_limited = True


def with_head(similarity: np.ndarray, margins: np.ndarray | None) -> np.ndarray:
    """Scores that add the head's weighted margin to each similarity (clipped to 0..1)."""
    if margins is None:
        return similarity
    return np.clip(similarity + HEAD_WEIGHT * margins, 0.0, 1.0)


def score_texts(
    index: ExampleIndex,
    head: LinearHead | None,
    texts: Sequence[str],
    vectors: np.ndarray,
    restrict_to: Sequence[str] | None,
) -> list[list[ExpertScore]]:
    """Per text (already embedded as ``vectors``), every candidate expert's score: similarity
    plus the head's weighted margin (``coverage`` stays the similarity alone)."""
    features = index.featurize(texts, vectors)
    similarity, nearest = index.similarities(features)
    margins = head.margins(features) if head is not None else None
    return index.expert_scores(with_head(similarity, margins), similarity, nearest, restrict_to)


def _review_embedder() -> Embedder:
    from mesh.review_model import shared_review_embedder

    return shared_review_embedder()


@process_wide
def _review_queries() -> CoalescingEmbedder:
    """The review model for requests: concurrent reviews share model runs (``coalesce.py``)."""
    return CoalescingEmbedder(_review_embedder())


def review_enabled(config: RouterConfig) -> bool:
    """Whether this router asks the review model about unsure requests: configured on and its
    packages installed (``mesh.review_model``)."""
    if not config.review:
        return False
    from mesh.review_model import available

    return available()


class Router:
    """Routes requests to experts by their manifests' descriptions and examples."""

    def __init__(self, config: RouterConfig, embedder: Embedder | None = None) -> None:
        single_threaded_blas()
        self.config = config
        self._embedder = embedder
        self._query_embedder: CoalescingEmbedder | None = None
        self._embedder_lock = threading.Lock()
        self._update_lock = threading.Lock()
        self._detector = LanguageDetector()
        empty = ExampleIndex([])
        self._state = _State(empty, calibrate(empty, config.threshold), None, None)
        self._reviewer = (
            Reviewer(_review_embedder, config.threshold, config.head)
            if review_enabled(config) else None
        )

    @property
    def embedder(self) -> Embedder:
        """The embedder, loaded on first use (the process-wide shared one unless given)."""
        if self._embedder is None:
            with self._embedder_lock:
                if self._embedder is None:
                    self._embedder = shared_embedder()
        return self._embedder

    @property
    def query_embedder(self) -> CoalescingEmbedder:
        """The embedder for requests: concurrent requests share model runs (``coalesce.py``)."""
        if self._query_embedder is None:
            embedder = self.embedder
            with self._embedder_lock:
                if self._query_embedder is None:
                    self._query_embedder = CoalescingEmbedder(embedder)
        return self._query_embedder

    def set_experts(self, manifests: Sequence[ExpertManifest]) -> None:
        """Replace the expert set; unchanged experts keep their vectors, nothing else waits.

        Embedding happens outside any lock requests take: requests in flight finish on the old
        index, the next ones see the new one. Concurrent updates are serialised so none is lost.
        Raises ValueError for repeated expert names.
        """
        with self._update_lock:
            previous = self._state
            index = ExampleIndex.build(manifests, self.embedder, previous=previous.index)
            head = LinearHead(index) if self.config.head and len(index) >= 2 else None
            multilingual = None
            if self.config.multilingual and manifests:
                multilingual = MultilingualSpace(
                    manifests, shared_multilingual_embedder(), previous.multilingual,
                    head=self.config.head,
                )
            calibration = calibrate(index, self.config.threshold)
            self._detector.detect("warm")  # loads py3langid (~0.5 s) here, not in a request
            keys = tuple(f"{e.name}\0{e.key}" for e in index.experts)
            self._state = _State(index, calibration, head, multilingual, keys)
            if self._reviewer is not None:
                self._reviewer.submit(manifests, keys)

    def wait_for_review(self, timeout: float) -> bool:
        """Block until the review space for the current experts is ready (benchmarks, tests):
        True when it is, or when this router has no review; False on timeout or failure."""
        if self._reviewer is None:
            return True
        return self._reviewer.wait(self._state.keys, timeout)

    @property
    def review(self) -> ReviewSpace | None:
        """The review space in force for the current experts (None: none, or not built yet)."""
        if self._reviewer is None:
            return None
        return self._reviewer.space_for(self._state.keys)

    def expert_names(self) -> list[str]:
        """Experts the router knows, in manifest order."""
        return self._state.index.names

    @property
    def threshold(self) -> float:
        """The out-of-scope threshold in force (configured or calibrated)."""
        return self._state.calibration.threshold

    @property
    def calibration(self) -> Calibration:
        """How the threshold was found; ``calibration.explain()`` says it in a sentence."""
        return self._state.calibration

    @property
    def multilingual_calibration(self) -> Calibration | None:
        """The multilingual space's own threshold (None when that space is off)."""
        space = self._state.multilingual
        return space.calibration if space is not None else None

    def explain_thresholds(self) -> str:
        """Both thresholds in force, for ``mesh route``."""
        text = f"English model: {self.calibration.explain()}"
        multi = self.multilingual_calibration
        if multi is not None:
            text += f". Multilingual model (non-English requests): {multi.explain()}"
        review = self.review
        if review is not None:
            text += (
                f". Review model (English requests the first model is unsure of): "
                f"{review.explain()}"
            )
        elif self._reviewer is not None:
            state = self._reviewer.failure or "being built"
            text += f". Review model: not in force ({state})"
        return text

    def route(
        self,
        text: str,
        history: Sequence[TurnRecord] = (),
        restrict_to: Sequence[str] | None = None,
    ) -> RouteDecision:
        """Decide which experts answer ``text``.

        ``history`` is the conversation so far, oldest first (only the last turn is used).
        ``restrict_to`` limits the candidates (e.g. to experts whose nodes are up); unknown names
        are ignored, and the fallback expert is used only if it is allowed too.
        """
        state = self._state
        cfg = self.config
        fallback = cfg.fallback_expert
        if fallback and restrict_to is not None and fallback not in restrict_to:
            fallback = None
        if not text.strip():
            return RouteDecision(
                [], [fallback] if fallback else [], True, state.calibration.threshold,
                "the request is empty",
            )
        language = self._detector.detect(text)
        multi = state.multilingual is not None and (
            language.multilingual or state.index.latin_share < 0.5
        )
        threshold = self._threshold(state, multi)
        scores, clause_winners = self._score(state, text, restrict_to, multi)
        decision = decide(
            scores, threshold, cfg.multi_expert_margin, cfg.max_experts, fallback, clause_winners
        )
        model = "multilingual model" if multi else "English model"
        # the review space of the same expert set this decision was scored on
        review = None if multi or self._reviewer is None else self._reviewer.space_for(state.keys)
        follow_up = self._follow_up(state, text, decision, history, restrict_to, multi)
        if follow_up is not None:  # the conversation settled it, in the first model's space
            decision = follow_up
        elif review is not None and needs_review(
            decision.scores, threshold, cfg.review_gap, cfg.review_band
        ):
            decision = self._review(review, text, decision, restrict_to, fallback, clause_winners)
            model = "English model, reviewed"
        return replace(decision, reason=f"{decision.reason} [{language.describe()}, {model}]")

    def _review(
        self,
        space: ReviewSpace,
        text: str,
        first: RouteDecision,
        restrict_to: Sequence[str] | None,
        fallback: str | None,
        clause_winners: list[ExpertScore],
    ) -> RouteDecision:
        """The decision taken again in the review space: ranked by its scores, in scope by
        both models' evidence (``review.scope_threshold``)."""
        cfg = self.config
        vectors = _review_queries().embed([text])
        scored = score_texts(space.index, space.head, [text], vectors, restrict_to)[0]
        # scope is judged on the score itself (review.SCORE_FACTOR): drop the separate similarity
        scores = rank(replace(s, similarity=None) for s in scored)
        best = first.scores[0]
        first_margin = best.coverage - first.threshold
        decision = decide(
            scores, scope_threshold(space, first_margin), cfg.multi_expert_margin,
            cfg.max_experts, fallback, clause_winners,
        )
        note = (
            f"reviewed by the stronger model: the first was unsure (best '{best.expert}' "
            f"{best.score:.2f}, its {judged_on(best)} {best.coverage:.2f} against threshold "
            f"{first.threshold:.2f}, margin {first_margin:+.2f}, which moves the review's "
            f"threshold {space.threshold:.2f} to {decision.threshold:.2f})"
        )
        return replace(decision, reason=f"{decision.reason}; {note}", reviewed=True)

    def _threshold(self, state: _State, multi: bool) -> float:
        if multi and state.multilingual is not None and self.config.threshold is None:
            return state.multilingual.calibration.threshold
        return state.calibration.threshold

    def _score(
        self, state: _State, text: str, restrict_to: Sequence[str] | None, multi: bool = False
    ) -> tuple[list[ExpertScore], list[ExpertScore]]:
        """The request's scores per expert, and the clear winner of each of its clauses.

        One model call embeds the request and its clauses together (see ``clauses.py``). The
        ranking uses the whole request only (on CLINC150, ranking by the best clause cost a
        point of accuracy); clauses only add experts to a compound decision.
        """
        if not len(state.index):
            return [], []
        if multi and state.multilingual is not None:
            scores = state.multilingual.score(text, restrict_to)
            return rank(scores), []
        texts = [text, *split_clauses(text)]
        per_text = score_texts(
            state.index, state.head, texts, self.query_embedder.embed(texts), restrict_to
        )
        winners = [w for g in per_text[1:] if (w := clear_winner(g, CLAUSE_MARGIN)) is not None]
        return rank(per_text[0]), winners

    def _follow_up(
        self,
        state: _State,
        text: str,
        alone: RouteDecision,
        history: Sequence[TurnRecord],
        restrict_to: Sequence[str] | None,
        multi: bool = False,
    ) -> RouteDecision | None:
        """A decision that keeps the previous turn's expert, or None to keep ``alone``."""
        margin, threshold = self.config.multi_expert_margin, alone.threshold
        if not history or not is_ambiguous(alone.scores, threshold, margin):
            return None
        previous = history[-1]
        allowed = set(restrict_to) if restrict_to is not None else None
        candidates = [
            e for e in previous.experts if e in state.index and (allowed is None or e in allowed)
        ]
        if not candidates or not previous.question.strip():
            return None
        expert = candidates[0]
        weak = is_weak(alone.scores, threshold)
        if not weak:
            tied = {s.expert for s in alone.scores if alone.scores[0].score - s.score < margin}
            if expert not in tied:
                return None
        context, _ = self._score(state, f"{previous.question}\n{text}", restrict_to, multi)
        mine = next((s for s in context if s.expert == expert), None)
        if mine is None or mine.coverage < threshold:
            return None
        if not alone.out_of_scope:  # the request alone had an answer: overrule it only clearly
            runner_up = max((s.score for s in context if s.expert != expert), default=0.0)
            if mine.score - runner_up < margin:
                return None
        alone_best = alone.scores[0] if alone.scores else None
        alone_text = (
            f"alone it was ambiguous (best '{alone_best.expert}' {alone_best.score:.2f})"
            if alone_best
            else "alone it matched nothing"
        )
        reason = (
            f"follow-up to the previous turn answered by '{expert}': with the previous question "
            f"'{snippet(previous.question)}' its similarity is {mine.coverage:.2f} ≥ threshold "
            f"{threshold:.2f}; {alone_text}"
        )
        return RouteDecision(context, [expert], False, threshold, reason)
