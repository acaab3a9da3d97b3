"""Per-expert example index: every expert's description and examples, embedded once.

Similarity (the router's evidence that an expert covers a request; ``mesh route`` prints it):

    row_sim(q, r)     = cos_embedding(q, r) + LEX_WEIGHT * cos_words(q, r)
    similarity(q, e)  = clip(TOPK_WEIGHT * mean of the k_e highest row_sim over e's rows
                           + (1 - TOPK_WEIGHT) * cos_embedding(q, centroid_e), 0, 1)

with ``k_e = clip(rows_e // 8, 1, TOP_K)`` (the nearest example alone for experts of a few
examples, whose second-nearest is often off-topic) and ``centroid_e`` the normalised mean of the
expert's vectors: the centroid term discounts a request that happens to resemble one example in
form ("what's the capital of France?" against "what dose of amoxicillin...") but not the
expert's topic as a whole. The top-k mean is sharper than an expert's centroid
(experts with varied examples are not blurred) and steadier than the single nearest example (one
stray example does not capture a request); the word TF-IDF term (``mesh.router.lexical``)
restores rare, decisive words the small embedder blurs. The word term is a bonus, not an
average: text sharing no word with an expert stays on the embedding's own scale (unrelated
text ~0.1-0.2), so the threshold's floor keeps its meaning. Measured on CLINC150's 10 domains
(validation, 1,500 examples per domain): nearest example 95.6%, centroid 78%, top-8 mean 96.2%,
top-8 mean with words 97.2%. Out-of-scope detection compares this similarity, not the head's
margin, with the calibrated threshold: it separated CLINC's out-of-scope requests best (84% of
them below the 2nd percentile of in-scope requests, against 60% for the head's margin).

Each expert's vectors and term counts are keyed by a content hash of (embedder, description,
examples), so replacing the expert set re-embeds only experts whose text changed; the index
itself is immutable and the router swaps it whole. The shared vocabulary and IDF are rebuilt
with each index (milliseconds).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from mesh.config import ExpertManifest
from mesh.router.decision import ExpertScore
from mesh.router.language import dominant_script
from mesh.router.lexical import LexicalSpace, TermIndex, term_counts

LEX_WEIGHT = 0.7
"""Weight of the word TF-IDF cosine next to the embedding cosine (best of 0.3-1.0 on CLINC)."""
TOP_K = 8
"""Most rows averaged per expert (8 was best of 1, 3, 5, 8, 12 on CLINC150 domains)."""
TOPK_WEIGHT = 0.7
"""Weight of the top-k term; the rest goes to the centroid's cosine."""


class TextEmbedder(Protocol):
    """What the index needs from an embedder (``mesh.embedding.Embedder`` fits)."""

    name: str

    def embed(self, texts: list[str]) -> np.ndarray: ...

    def embed_batched(self, texts: list[str], batch_size: int = 64) -> np.ndarray: ...


def expert_texts(manifest: ExpertManifest) -> tuple[str, ...]:
    """What the router reads from a manifest: the description first, then the examples."""
    return (manifest.description, *manifest.examples)


def content_key(manifest: ExpertManifest, embedder_name: str) -> str:
    """Hash of everything that decides an expert's vectors (not its name, runtime or scaling)."""
    payload = json.dumps([embedder_name, *expert_texts(manifest)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def unit(v: np.ndarray) -> np.ndarray:
    """Scale a vector to unit length (a zero vector stays zero)."""
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def blend(top_k_mean: np.ndarray, centroid_sim: np.ndarray) -> np.ndarray:
    """The similarity map above, element-wise."""
    raw = TOPK_WEIGHT * top_k_mean + (1.0 - TOPK_WEIGHT) * centroid_sim
    return np.clip(raw, 0.0, 1.0)


def top_k_for(rows: int) -> int:
    """How many of an expert's rows its similarity averages."""
    return int(np.clip(rows // 8, 1, TOP_K))


@dataclass(frozen=True)
class ExpertEmbeddings:
    """One expert's texts, vectors and term counts: the unit of reuse between index versions."""

    name: str
    key: str
    texts: tuple[str, ...]
    vectors: np.ndarray
    """float32 [len(texts), dim], unit rows; row 0 is the description."""
    words: tuple[Counter[str], ...]
    chars: tuple[Counter[str], ...]
    latin_rows: int
    """How many of ``texts`` are in Latin script (counted once, when the expert is embedded)."""


@dataclass(frozen=True)
class QueryFeatures:
    """Several texts (a request and its clauses) in every space the index and head read."""

    texts: tuple[str, ...]
    vectors: np.ndarray
    words: list[tuple[np.ndarray, np.ndarray]]
    """Per text: (columns, values) in the index's word space."""
    chars: list[tuple[np.ndarray, np.ndarray]]
    """Per text: (columns, values) in the index's character space."""


def embed_experts(
    manifests: Sequence[ExpertManifest], embedder: TextEmbedder
) -> list[ExpertEmbeddings]:
    """Embed several experts in one batched call (one model run per batch, not per expert)."""
    texts = [expert_texts(m) for m in manifests]
    flat = [t for group in texts for t in group]
    vectors = embedder.embed_batched(flat) if flat else np.zeros((0, 0), np.float32)
    out: list[ExpertEmbeddings] = []
    start = 0
    for m, group in zip(manifests, texts, strict=True):
        v = np.ascontiguousarray(vectors[start : start + len(group)], dtype=np.float32)
        start += len(group)
        out.append(ExpertEmbeddings(
            m.name, content_key(m, embedder.name), group, v,
            tuple(term_counts(group, "word")), tuple(term_counts(group, "char")),
            sum(dominant_script(t) == "latin" for t in group),
        ))
    return out


class ExampleIndex:
    """An immutable set of experts' rows, stacked for one matrix product per request."""

    def __init__(self, experts: Sequence[ExpertEmbeddings]) -> None:
        names = [e.name for e in experts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"expert names must be unique; repeated: {', '.join(dupes)}")
        self.experts: tuple[ExpertEmbeddings, ...] = tuple(experts)
        self._position = {e.name: i for i, e in enumerate(self.experts)}
        sizes = [len(e.texts) for e in self.experts]
        self._ends = np.cumsum(np.asarray(sizes, dtype=np.intp))
        self._starts = self._ends - np.asarray(sizes, dtype=np.intp)
        self.top_k = [top_k_for(n) for n in sizes]
        words = [c for e in self.experts for c in e.words]
        chars = [c for e in self.experts for c in e.chars]
        groups = [i for i, n in enumerate(sizes) for _ in range(n)]
        self.word_space = LexicalSpace.fit(words, groups)
        self.char_space = LexicalSpace.fit(chars)
        self.word_rows = self.word_space.transform(words)
        self.char_rows = self.char_space.transform(chars)
        self._word_terms = TermIndex(self.word_rows)
        if self.experts:
            self.vectors = np.ascontiguousarray(np.vstack([e.vectors for e in self.experts]))
            self.centroids = np.ascontiguousarray(np.vstack([
                unit(e.vectors.mean(axis=0)) for e in self.experts
            ]).astype(np.float32))
        else:
            self.vectors = np.zeros((0, 0), np.float32)
            self.centroids = np.zeros((0, 0), np.float32)
        total = sum(sizes)
        self.latin_share = sum(e.latin_rows for e in self.experts) / total if total else 1.0
        """Share of rows in Latin script: below one half the English model cannot read the
        experts at all, and the router reads every request with the multilingual model."""
        self.labels = np.repeat(np.arange(len(self.experts)), sizes)
        """Expert position of each row (what the linear head learns)."""

    @classmethod
    def build(
        cls,
        manifests: Sequence[ExpertManifest],
        embedder: TextEmbedder,
        previous: ExampleIndex | None = None,
    ) -> ExampleIndex:
        """An index for ``manifests``, reusing ``previous``'s vectors where the content is equal.

        Only experts that are new, or whose description/examples changed, reach the embedder.
        """
        reusable = {e.key: e for e in previous.experts} if previous is not None else {}
        keys = [content_key(m, embedder.name) for m in manifests]
        missing = [m for m, k in zip(manifests, keys, strict=True) if k not in reusable]
        fresh = {e.key: e for e in embed_experts(missing, embedder)}
        experts = []
        for m, k in zip(manifests, keys, strict=True):
            found = reusable.get(k) or fresh[k]
            # Same content under a new name (a rename) reuses the vectors too.
            experts.append(found if found.name == m.name else replace(found, name=m.name))
        return cls(experts)

    @property
    def names(self) -> list[str]:
        """Expert names in manifest order."""
        return [e.name for e in self.experts]

    def __len__(self) -> int:
        return len(self.experts)

    def __contains__(self, name: object) -> bool:
        return name in self._position

    def row_range(self, position: int) -> tuple[int, int]:
        """First and past-the-end row of the expert at ``position``."""
        return int(self._starts[position]), int(self._ends[position])

    def position(self, name: str) -> int:
        """Column of ``name`` in the head's scores."""
        return self._position[name]

    def featurize(self, texts: Sequence[str], vectors: np.ndarray) -> QueryFeatures:
        """``texts`` (already embedded as ``vectors``) in this index's lexical spaces."""
        return QueryFeatures(
            tuple(texts), vectors,
            self.word_space.sparse_vectors(term_counts(texts, "word")),
            self.char_space.sparse_vectors(term_counts(texts, "char")),
        )

    def row_similarities(self, features: QueryFeatures) -> np.ndarray:
        """``row_sim`` of each query against every row: float32 [queries, rows]."""
        sims = features.vectors @ self.vectors.T
        for row, (columns, values) in enumerate(features.words):
            sims[row] += LEX_WEIGHT * self._word_terms.dot(columns, values)
        return sims.astype(np.float32, copy=False)

    def candidates(self, restrict_to: Iterable[str] | None) -> list[int]:
        """Positions of the experts a request may go to."""
        if restrict_to is None:
            return list(range(len(self.experts)))
        return sorted({self._position[n] for n in restrict_to if n in self._position})

    def score_each(
        self, features: QueryFeatures, restrict_to: Iterable[str] | None = None
    ) -> list[list[ExpertScore]]:
        """Similarity of each query to each candidate expert (``score`` = ``similarity``).

        Unordered; :func:`mesh.router.decision.rank` orders them. The router adds the linear
        head's evidence to ``score`` (``mesh.router.router``).
        """
        positions = self.candidates(restrict_to)
        out: list[list[ExpertScore]] = [[] for _ in range(len(features.texts))]
        if not positions:
            return out
        sims = self.row_similarities(features)
        centroid_sims = features.vectors @ self.centroids.T
        for p in positions:
            seg = sims[:, self._starts[p] : self._ends[p]]
            k = min(self.top_k[p], seg.shape[1])
            top = np.partition(seg, seg.shape[1] - k, axis=1)[:, -k:]
            values = blend(top.mean(axis=1), centroid_sims[:, p])
            nearest = seg.argmax(axis=1)
            expert = self.experts[p]
            for row in range(len(out)):
                value = float(values[row])
                text = expert.texts[int(nearest[row])]
                out[row].append(ExpertScore(expert.name, value, text, value))
        return out

