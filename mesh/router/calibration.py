"""Out-of-scope threshold calibrated from the manifests' own examples, no labelled data needed.

Leave-one-out: each example is scored against its own expert as if it were an unseen request
(the example removed from that expert's rows, from its prototype when the expert is read through
prototypes, and from its centroid). Those scores show how well real
in-scope requests match: the threshold sits at a low percentile of them (``PERCENTILE``), times
``MARGIN`` so a request slightly looser than the loosest examples still passes. It is then held
within ``[FLOOR, CEILING]``: the floor keeps unrelated text (MiniLM scores of ~0.1-0.21) out even
when an expert's examples are very diverse, the ceiling keeps paraphrases in when examples are
near-duplicates of each other.

Measured on CLINC150 (10 domains, 30 examples each): threshold 0.26, 98% of in-scope validation
requests kept, 57% of out-of-scope ones caught (CLINC's out-of-scope set is deliberately close to
its domains; clearly unrelated text scores far lower).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mesh.router.index import LEX_WEIGHT, ExampleIndex, blend, top_k_for
from mesh.router.prototypes import PROTOTYPE_TOP_K, similarities_without_each

PERCENTILE = 2.0
"""Percentile of the leave-one-out scores the threshold starts from."""
MARGIN = 0.9
"""Factor applied to that percentile (below 1: a little looser than the loosest examples)."""
FLOOR = 0.22
"""Lowest calibrated threshold."""
CEILING = 0.6
"""Highest calibrated threshold."""
DEFAULT_THRESHOLD = 0.3
"""Used when there is nothing to calibrate from (no experts)."""


def centroid_without_each(group: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Cosine of each of ``rows`` (each one a row of ``group``) to the centroid of ``group``
    without that row: an example scored as if its expert had never seen it."""
    rest_sum = group.sum(axis=0)[None, :] - rows  # each row: sum of the other rows
    norms = np.clip(np.linalg.norm(rest_sum, axis=1), 1e-12, None)
    return np.einsum("ij,ij->i", rest_sum, rows) / norms


def leave_one_out_scores(index: ExampleIndex, position: int) -> np.ndarray:
    """Similarity of each example (not the description) to its expert without that example.

    The same formula as :meth:`ExampleIndex.similarities`: for an expert read through
    prototypes, the example's own prototype is recomputed without it.
    """
    start, end = index.row_range(position)
    if end - start < 2:
        return np.zeros(0, np.float32)
    vectors = index.vectors[start:end]
    words = index.word_rows[start:end]
    lexical = (words @ words.T).toarray()
    np.fill_diagonal(lexical, -np.inf)
    k = min(top_k_for(end - start - 1), end - start - 1)
    protos = index.experts[position].prototypes
    if protos is None:
        top = top_mean(vectors @ vectors.T + LEX_WEIGHT * lexical, k)
    else:
        dense = similarities_without_each(vectors, protos)
        top = top_mean(dense, min(PROTOTYPE_TOP_K, dense.shape[1]))
        top += LEX_WEIGHT * top_mean(lexical, k)
    scores = blend(top, centroid_without_each(vectors, vectors))
    return scores[1:].astype(np.float32)  # row 0: the description


def top_mean(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest values of each row."""
    return np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


@dataclass(frozen=True)
class Calibration:
    """The threshold in force and how it was found, for ``mesh route`` to explain."""

    threshold: float
    source: str
    """"calibrated" (from examples) or "configured" (RouterConfig.threshold)."""
    n_examples: int
    """How many leave-one-out scores the calibration saw."""
    percentile_score: float
    """The ``PERCENTILE``-th percentile of those scores (0 when there were none)."""
    expert_medians: dict[str, float] = field(default_factory=dict)
    """Median leave-one-out score per expert: low means loosely related examples."""
    rule: str = ""
    """How the threshold follows from the percentile, when not this module's own rule."""

    def explain(self) -> str:
        """One paragraph: the threshold and where it came from."""
        if self.source == "configured":
            text = f"threshold {self.threshold:.2f} is set in the router config"
        elif self.n_examples == 0:
            text = f"threshold {self.threshold:.2f} is the default (no examples to calibrate from)"
        elif self.rule:
            text = (
                f"threshold {self.threshold:.2f} calibrated from {self.n_examples} manifest "
                f"examples: {self.rule}"
            )
        else:
            raw = self.percentile_score * MARGIN
            held = "" if abs(raw - self.threshold) < 1e-9 else f", held within [{FLOOR}, {CEILING}]"
            text = (
                f"threshold {self.threshold:.2f} calibrated from {self.n_examples} manifest "
                f"examples: leave-one-out score at the {PERCENTILE:g}th percentile "
                f"{self.percentile_score:.2f} times margin {MARGIN}{held}"
            )
        if self.expert_medians:
            loosest = sorted(self.expert_medians.items(), key=lambda kv: (kv[1], kv[0]))[:3]
            text += "; loosest examples: " + ", ".join(f"'{n}' {s:.2f}" for n, s in loosest)
        return text


def calibrate(index: ExampleIndex, configured: float | None = None) -> Calibration:
    """The out-of-scope threshold for ``index``: ``configured`` if given, else from examples."""
    per_expert = {e.name: leave_one_out_scores(index, i) for i, e in enumerate(index.experts)}
    medians = {n: float(np.median(s)) for n, s in per_expert.items() if len(s)}
    scores = np.concatenate(list(per_expert.values())) if per_expert else np.zeros(0, np.float32)
    n = len(scores)
    pct = float(np.percentile(scores, PERCENTILE)) if n else 0.0
    if configured is not None:
        return Calibration(float(configured), "configured", n, pct, medians)
    if n == 0:
        return Calibration(DEFAULT_THRESHOLD, "calibrated", 0, 0.0, medians)
    threshold = float(np.clip(pct * MARGIN, FLOOR, CEILING))
    return Calibration(threshold, "calibrated", n, pct, medians)
