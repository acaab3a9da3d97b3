"""The review: a stronger English model's second opinion on the requests MiniLM is unsure of.

Why: MiniLM-L6 routes in ~1.3 ms but ranks CLINC150's domains at ~98%, and its out-of-scope
score overlaps the in-scope one. all-mpnet-base-v2 (``mesh.review_model``) ranks them at ~99%
with a head over sub-groups of each expert, but costs ~17 ms a request and minutes to embed
15,000 examples. So:

* **Only unsure requests are reviewed**: the best two experts within ``RouterConfig.review_gap``
  of each other, or the best one within ``review_band`` of the threshold. Those decisions are
  taken again in the review space (its own index, grouped head and calibrated threshold): the
  review ranks the experts, and scope weighs both models' margins (``scope_threshold``).
  On CLINC150 about one request in six is reviewed, so the median routing time is MiniLM's.
* **It never holds an update up**: ``set_experts`` swaps the fast index in at once, as before,
  and hands the manifests to one background thread that builds the review space (re-embedding
  only experts whose text changed). A review space is used only while it was built from exactly
  the experts the fast index holds; until the new one is ready, requests are routed by MiniLM
  alone. Requests never wait for a build.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mesh.config import ExpertManifest
from mesh.router.calibration import Calibration, calibrate
from mesh.router.decision import ExpertScore
from mesh.router.head import LinearHead
from mesh.router.index import ExampleIndex, TextEmbedder

log = logging.getLogger(__name__)

GROUPS = 10
"""Head classes per large expert in the review space (``mesh.router.head.sub_classes``)."""
SCORE_FACTOR = 0.8
"""The review judges scope on the score (similarity + head margin), not on similarity alone,
against this fraction of its calibrated similarity threshold. The head pushes in-scope requests
up and out-of-scope ones down, so the score separates them better: on CLINC150 validation,
reviewing every request, in-scope accuracy 98.1% at out-of-scope recall 89% against 97.2% at
91% on similarity (factors 0.7 / 0.8 / 0.9: 98.3% / 98.1% / 97.9% accuracy at recall 84% /
89% / 91%)."""


@dataclass(frozen=True)
class ReviewSpace:
    """The experts in the review model's space: index, grouped head and own threshold."""

    index: ExampleIndex
    head: LinearHead | None
    calibration: Calibration
    keys: tuple[str, ...]
    """Content keys of the manifests it was built from (in the fast model's terms)."""

    @property
    def threshold(self) -> float:
        """What the best expert's score must reach to be in scope (see ``SCORE_FACTOR``)."""
        if self.calibration.source == "configured" or self.head is None:
            return self.calibration.threshold
        return self.calibration.threshold * SCORE_FACTOR

    def explain(self) -> str:
        """The review's scope rule in a sentence, for ``mesh route``."""
        text = self.calibration.explain()
        if self.threshold != self.calibration.threshold:
            text += (
                f"; it judges scope on the score (similarity + head margin) against "
                f"{SCORE_FACTOR} x {self.calibration.threshold:.2f} = {self.threshold:.2f}"
            )
        return text


def build_space(
    manifests: Sequence[ExpertManifest],
    embedder: TextEmbedder,
    keys: tuple[str, ...],
    previous: ReviewSpace | None,
    threshold: float | None,
    head: bool,
) -> ReviewSpace:
    """A review space for ``manifests``, reusing ``previous``'s vectors for unchanged experts."""
    index = ExampleIndex.build(
        manifests, embedder, previous=previous.index if previous is not None else None
    )
    fitted = LinearHead(index, groups=GROUPS) if head and len(index) >= 2 else None
    return ReviewSpace(index, fitted, calibrate(index, threshold), keys)


def scope_threshold(space: ReviewSpace, first_margin: float) -> float:
    """The review's threshold for one request, moved by the first model's own verdict.

    Why both models: a request reviewed only because it sat near the first model's threshold
    is a close call for that model, and the review alone decided it, with a threshold that may
    be low where an expert's examples are diverse. In scope when the two margins (review score
    minus its threshold, first model's similarity minus its threshold) sum to zero or more,
    i.e. the review's threshold minus the first model's margin. Measured on validation parts,
    with the same reviews (docs/benchmarks.md): CLINC150 98.07% -> 98.13% in-scope accuracy
    and out-of-scope recall 86.5% -> 87.0% (val + train out-of-scope rows, 200), Hinglish
    97.5% -> 97.6%, MMLU and Banking77 within one row; and the demo's "tell me a joke" and
    "which expert covers cooking pasta?", which the review alone let in at 0.01-0.02 over
    its threshold while MiniLM had them 0.05 under its own, stay out.
    """
    return space.threshold - first_margin


def needs_review(ranked: Sequence[ExpertScore], threshold: float, gap: float, band: float) -> bool:
    """True when MiniLM's decision is unsure: a near tie at the top, or a best match close to
    the threshold on either side."""
    if not ranked:
        return False
    if abs(ranked[0].coverage - threshold) < band:
        return True
    return len(ranked) > 1 and ranked[0].score - ranked[1].score < gap


class Reviewer:
    """Builds review spaces on one background thread, newest expert set first."""

    def __init__(
        self,
        embedder: Callable[[], TextEmbedder],
        threshold: float | None,
        head: bool,
    ) -> None:
        self._embedder = embedder
        self._threshold = threshold
        self._head = head
        self._space: ReviewSpace | None = None
        self._pending: tuple[tuple[ExpertManifest, ...], tuple[str, ...]] | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._failed: str | None = None

    def submit(self, manifests: Sequence[ExpertManifest], keys: tuple[str, ...]) -> None:
        """Build a space for this expert set next (a set submitted later replaces it)."""
        with self._cond:
            self._pending = (tuple(manifests), keys)
            self._failed = None  # a new attempt: wait() waits for it, not for an old failure
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="mesh-router-review", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()

    def space_for(self, keys: tuple[str, ...]) -> ReviewSpace | None:
        """The review space of exactly these experts, or None (not built yet, or failed)."""
        space = self._space
        return space if space is not None and space.keys == keys else None

    def wait(self, keys: tuple[str, ...], timeout: float) -> bool:
        """Block until the space for ``keys`` is ready (True) or ``timeout`` seconds pass;
        for benchmarks and tests, never for requests."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self.space_for(keys) is not None or self._failed is not None, timeout
            ) and self._failed is None

    @property
    def failure(self) -> str | None:
        """Why the last build failed (the router then runs on MiniLM alone), or None."""
        return self._failed

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None)
                assert self._pending is not None
                manifests, keys = self._pending
                self._pending = None
            try:
                space = build_space(
                    manifests, self._embedder(), keys, self._space, self._threshold, self._head
                )
            except Exception as e:  # a missing package, a read-only cache: MiniLM goes on alone
                log.warning("router review off: building its space failed: %s", e)
                with self._cond:
                    self._failed = str(e)
                    self._cond.notify_all()
                continue
            with self._cond:
                self._space = space
                self._failed = None
                self._cond.notify_all()
