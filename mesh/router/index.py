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

A large expert (more than ``SUMMARY_ROWS`` rows, ``mesh.router.prototypes``) is read through
k-means prototypes of its vectors, and its word term is taken on its own over its examples:

    similarity(q, e)  = clip(TOPK_WEIGHT * (mean of the 3 highest cos_embedding(q, prototype)
                                            + LEX_WEIGHT * mean of the k_e highest cos_words(q, r))
                           + (1 - TOPK_WEIGHT) * cos_embedding(q, centroid_e), 0, 1)

(CLINC150 domains: ranking 98.0% against 97.8% with every example; 1/23 of the rows read).

Each expert's vectors, prototypes and term counts are keyed by a content hash of (embedder,
description, examples), so replacing the expert set re-embeds and re-clusters only experts whose
text changed; the index itself is immutable and the router swaps it whole. The shared
vocabulary and IDF are rebuilt with each index (milliseconds). Scoring a request is a fixed
number of whole-array operations whatever the number of experts (~0.2 ms on CLINC150's 10
domains): Python loops over experts cost more than the arithmetic at these sizes.
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
from mesh.router.prototypes import PROTOTYPE_TOP_K, Prototypes, summarize

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
    prototypes: Prototypes | None = None
    """k-means summary of ``vectors`` for a large expert (``mesh.router.prototypes``)."""


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
            sum(dominant_script(t) == "latin" for t in group), summarize(v),
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
        self.texts: tuple[str, ...] = tuple(t for e in self.experts for t in e.texts)
        """Every row's text, in row order."""
        self.dense, self._layout = _layout(self.experts, self._starts)
        """The rows a request's vector is compared with: examples, or a large expert's
        prototypes (``mesh.router.prototypes``)."""

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

    def candidates(self, restrict_to: Iterable[str] | None) -> list[int]:
        """Positions of the experts a request may go to."""
        if restrict_to is None:
            return list(range(len(self.experts)))
        return sorted({self._position[n] for n in restrict_to if n in self._position})

    def similarities(self, features: QueryFeatures) -> tuple[np.ndarray, np.ndarray]:
        """Every query's ``similarity`` to every expert, and the row of its nearest example.

        Returns (float32 [queries, experts], intp [queries, experts]); the row indexes
        :attr:`texts`. One dense product over the experts' dense rows (examples, or prototypes
        for large experts), one sparse word product, then the per-expert top-k means for all
        experts at once on padded groups (no Python loop over experts).
        """
        layout = self._layout
        n_rows = len(self.texts)
        queries = features.vectors
        lexical = np.zeros((len(queries), n_rows + 1), np.float32)  # last column: prototypes
        hits = [self._word_terms.sparse_dot(columns, values) for columns, values in features.words]
        for row, (rows, scores) in enumerate(hits):
            lexical[row, rows] = scores
        joint = np.full((len(queries), len(self.dense) + 1), -np.inf, np.float32)
        np.matmul(queries, self.dense.T, out=joint[:, :-1])
        joint[:, :-1] += LEX_WEIGHT * lexical[:, layout.dense_words]
        grouped = joint[:, layout.dense_groups]
        top = top_k_means(grouped, layout.dense_k)
        for row, (rows, scores) in enumerate(hits if len(layout.summarised) else ()):
            words = sparse_top_k_means(scores, layout.word_group[rows], layout.word_k)
            top[row, layout.summarised] += LEX_WEIGHT * words
        similarity = blend(top, queries @ self.centroids.T).astype(np.float32)
        best = grouped.argmax(axis=2)
        dense_rows = layout.dense_groups[np.arange(len(self.experts))[None, :], best]
        return similarity, layout.dense_examples[dense_rows]

    def score_each(
        self, features: QueryFeatures, restrict_to: Iterable[str] | None = None
    ) -> list[list[ExpertScore]]:
        """Similarity of each query to each candidate expert (``score`` = ``similarity``).

        Unordered; :func:`mesh.router.decision.rank` orders them. The router adds the linear
        head's evidence to ``score`` (``mesh.router.router``).
        """
        similarity, nearest = self.similarities(features)
        return self.expert_scores(similarity, similarity, nearest, restrict_to)

    def expert_scores(
        self,
        scores: np.ndarray,
        similarity: np.ndarray,
        nearest: np.ndarray,
        restrict_to: Iterable[str] | None = None,
    ) -> list[list[ExpertScore]]:
        """Per query, an ``ExpertScore`` for each candidate expert from [queries, experts]
        arrays (converted to Python numbers once, not element by element)."""
        positions = self.candidates(restrict_to)
        texts = self.texts
        out: list[list[ExpertScore]] = []
        for s_row, c_row, n_row in zip(
            scores[:, positions].tolist(), similarity[:, positions].tolist(),
            nearest[:, positions].tolist(), strict=True,
        ):
            out.append([
                ExpertScore(self.experts[p].name, s, texts[n], c)
                for p, s, c, n in zip(positions, s_row, c_row, n_row, strict=True)
            ])
        return out


def _padded(groups: Sequence[np.ndarray], sentinel: int) -> np.ndarray:
    """intp [len(groups), longest group]: each group's indices, short ones padded with
    ``sentinel`` (a column that holds -inf when read)."""
    width = max((len(g) for g in groups), default=1)
    out = np.full((len(groups), max(width, 1)), sentinel, np.intp)
    for i, g in enumerate(groups):
        out[i, : len(g)] = g
    return out


def top_k_means(values: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """float32 [queries, groups]: the mean of the ``ks[g]`` largest values of each group.

    ``values`` is [queries, groups, width], padded with -inf; every ``ks[g]`` is at most the
    group's real size.
    """
    if values.shape[1] == 0:
        return np.zeros(values.shape[:2], np.float32)
    k_max = int(ks.max())
    if k_max < values.shape[2]:
        values = -np.partition(-values, k_max - 1, axis=2)[:, :, :k_max]
    ranked = -np.sort(-values, axis=2)
    sums = np.cumsum(ranked, axis=2)
    return (sums[:, np.arange(len(ks)), ks - 1] / ks).astype(np.float32)


def sparse_top_k_means(values: np.ndarray, groups: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """float32 [len(ks)]: per group, the mean of its ``ks[g]`` largest values, every value not
    given being zero.

    For a request's word scores, given only for the rows that share a word with it (a few
    hundred of CLINC150's 15,000): ranking those is far cheaper than partitioning every row.
    ``groups`` gives each value's group, -1 for none.
    """
    keep = groups >= 0
    group, picked = groups[keep], values[keep]
    order = np.lexsort((-picked, group))
    group, picked = group[order], picked[order]
    rank = np.arange(len(group)) - np.searchsorted(group, group)
    top = rank < ks[group]
    sums = np.bincount(group[top], weights=picked[top], minlength=len(ks))
    return (sums / ks).astype(np.float32)


@dataclass(frozen=True)
class _Layout:
    """Index arrays that let one request score every expert with whole-array operations."""

    dense_groups: np.ndarray
    """intp [experts, width]: each expert's dense rows (padding: the -inf column)."""
    dense_k: np.ndarray
    """intp [experts]: how many of those rows each expert's top-k mean takes."""
    dense_words: np.ndarray
    """intp [dense rows]: the example row whose word score joins each dense row; prototypes
    point at the zero column (their experts' words are scored separately)."""
    dense_examples: np.ndarray
    """intp [dense rows]: the example each dense row names (a prototype's medoid)."""
    summarised: np.ndarray
    """intp: positions of the experts read through prototypes."""
    word_group: np.ndarray
    """intp [example rows]: for each row, its expert's place in ``summarised`` (-1: none),
    for the separate word top-k."""
    word_k: np.ndarray
    """intp [summarised]: how many word rows each averages."""


def _layout(experts: Sequence[ExpertEmbeddings], starts: np.ndarray) -> tuple[np.ndarray, _Layout]:
    """The dense matrix (examples, or prototypes for large experts) and its ``_Layout``."""
    n_rows = sum(len(e.texts) for e in experts)
    blocks: list[np.ndarray] = []
    groups, words, examples, ks = [], [], [], []
    summarised: list[int] = []
    word_k: list[int] = []
    word_group = np.full(n_rows, -1, np.intp)
    dense = 0
    for p, e in enumerate(experts):
        first = int(starts[p])
        rows = first + np.arange(len(e.texts))
        if e.prototypes is None:
            block = e.vectors
            words.append(rows)
            examples.append(rows)
            ks.append(top_k_for(len(rows)))
        else:
            block = e.prototypes.vectors
            words.append(np.full(len(block), n_rows))
            examples.append(first + e.prototypes.medoids)
            ks.append(min(PROTOTYPE_TOP_K, len(block)))
            word_group[rows] = len(summarised)
            summarised.append(p)
            word_k.append(top_k_for(len(rows)))
        blocks.append(block)
        groups.append(dense + np.arange(len(block)))
        dense += len(block)
    matrix = (
        np.ascontiguousarray(np.vstack(blocks), dtype=np.float32)
        if blocks else np.zeros((0, 0), np.float32)
    )
    intp = np.intp
    return matrix, _Layout(
        _padded(groups, dense), np.asarray(ks, intp),
        np.concatenate(words).astype(intp) if words else np.zeros(0, intp),
        np.concatenate(examples).astype(intp) if examples else np.zeros(0, intp),
        np.asarray(summarised, intp), word_group, np.asarray(word_k, intp),
    )
