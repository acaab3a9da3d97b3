"""Lexical features: TF-IDF over words (1-2 grams) and characters (2-5 grams within words).

Why the router reads words as well as sentence embeddings: a small embedder blurs rare, decisive
terms ("IBAN", "rooibos", a product name) that an expert's examples share with a request. On
CLINC150's 10 domains the embedding's nearest examples alone gave 96.2%; adding the word TF-IDF
similarity of the same examples gave 97.2%, and character n-grams (robust to typos and to
romanised Hindi spelled many ways) help the linear head (``mesh.router.head``).

Terms come from a vocabulary of the index's own examples: a term no example contains cannot
change any similarity or any head weight, so it is dropped. The vocabulary and the inverse
document frequencies are rebuilt with the index (milliseconds per thousand examples); each
expert's term counts are cached with its vectors, so only changed experts are re-tokenized.
Pure Python plus numpy/scipy, one code path for examples and requests (so they always agree),
~0.1 ms for a one-sentence request.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

MIN_GROUPS = 3
"""Fewest experts for the generic-term rule (with two, every shared word would be 'generic')."""
GENERIC_ENTROPY = 0.75
"""A word whose use is spread this evenly over the experts (normalised entropy of its per-expert
document rates; 1 = the same rate everywhere) is generic."""


def generic_terms(documents: Sequence[Counter[str]], groups: Sequence[int]) -> set[str]:
    """Terms used about equally by most experts: they say nothing about *which* expert.

    Rates, not counts: an expert with 1,500 examples uses "card" somewhere even when it is about
    crops, but at a fraction of the banking expert's rate. A word in three of four experts at
    equal rates scores 0.79; in all of them, 1.0; in two of four, 0.5.
    """
    names = sorted(set(groups))
    if len(names) < MIN_GROUPS:
        return set()
    column = {g: i for i, g in enumerate(names)}
    sizes = np.zeros(len(names))
    df: dict[str, np.ndarray] = {}
    for doc, group in zip(documents, groups, strict=True):
        g = column[group]
        sizes[g] += 1
        for term in doc:
            counts = df.get(term)
            if counts is None:
                counts = df[term] = np.zeros(len(names))
            counts[g] += 1
    if not df:
        return set()
    terms = list(df)
    rates = np.vstack([df[t] for t in terms]) / np.clip(sizes, 1, None)
    p = rates / rates.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1) / np.log(len(names))
    return {t for t, h in zip(terms, entropy, strict=True) if h > GENERIC_ENTROPY}

_WORD = re.compile(r"\w\w+")
CHAR_NGRAMS = (2, 5)
"""Smallest and largest character n-gram, taken inside each word padded with spaces."""


def word_terms(text: str) -> list[str]:
    """Lowercased words of two or more characters, and their bigrams."""
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in itertools.pairwise(words)]


def char_terms(text: str) -> list[str]:
    """Character n-grams within each whitespace-separated word, padded with one space each side."""
    lo, hi = CHAR_NGRAMS
    out: list[str] = []
    for word in text.lower().split():
        padded = f" {word} "
        for n in range(lo, hi + 1):
            out.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return out


def term_counts(texts: Iterable[str], kind: str) -> list[Counter[str]]:
    """Term counts of each text; ``kind`` is ``"word"`` or ``"char"``."""
    extract = word_terms if kind == "word" else char_terms
    return [Counter(extract(t)) for t in texts]


@dataclass(frozen=True)
class LexicalSpace:
    """A vocabulary with IDF weights; turns term counts into L2-normalised sparse rows."""

    vocabulary: dict[str, int]
    idf: np.ndarray
    unseen_idf: float
    """IDF of a term no document has (the rarest possible): counts in a request's length."""

    @classmethod
    def fit(
        cls, documents: Sequence[Counter[str]], groups: Sequence[int] | None = None
    ) -> LexicalSpace:
        """Vocabulary and smoothed IDF (``log((1 + N) / (1 + df)) + 1``) of ``documents``.

        With ``groups`` (the expert of each document), generic terms (:func:`generic_terms`)
        are left out: "what", "the",
        "kya", "hai" say nothing about *which* expert, and with few examples IDF alone cannot
        tell (in four experts of ten examples each, "what's the capital of France?" matched the
        health expert through "what" and "the" alone). Language-independent, unlike a stop list.
        """
        df: Counter[str] = Counter()
        for doc in documents:
            df.update(doc.keys())
        generic = generic_terms(documents, groups) if groups is not None else set()
        terms = sorted(t for t in df if t not in generic)
        n = len(documents)
        idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in terms], np.float32)
        return cls({t: i for i, t in enumerate(terms)}, idf, math.log(1 + n) + 1.0)

    def vector(self, doc: Counter[str]) -> tuple[np.ndarray, np.ndarray]:
        """One text's (columns, values): sublinear TF * IDF, scaled by the length of the *whole*
        text.

        Terms outside the vocabulary have no column but count in the length (at the IDF of an
        unseen term): a request whose only known word is "of" must not match an example through
        "of" as if it were all the request said. Example rows contain only known terms, so
        theirs are unit rows.
        """
        vocabulary = self.vocabulary
        columns: list[int] = []
        weights: list[float] = []
        unseen = 0.0
        for term, count in doc.items():
            tf = 1.0 + math.log(count) if count > 1 else 1.0
            column = vocabulary.get(term)
            if column is None:
                unseen += tf * tf
            else:
                columns.append(column)
                weights.append(tf)
        idx = np.array(columns, np.int64)
        order = np.argsort(idx)
        idx = idx[order]
        val = np.array(weights, np.float32)[order] * self.idf[idx]
        norm = math.sqrt(float(val @ val) + unseen * self.unseen_idf**2)
        if norm > 0:
            val /= norm
        return idx, val

    def sparse_vectors(
        self, documents: Iterable[Counter[str]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """:meth:`vector` of each document (no scipy matrix: ~0.1 ms saved per request)."""
        return [self.vector(doc) for doc in documents]

    def transform(self, documents: Iterable[Counter[str]]) -> sp.csr_matrix:
        """The documents' vectors stacked as a CSR matrix (index rows, model fitting)."""
        vectors = self.sparse_vectors(documents)
        indptr = np.cumsum([0, *(len(i) for i, _ in vectors)])
        return sp.csr_matrix(
            (
                np.concatenate([v for _, v in vectors]) if vectors else np.zeros(0, np.float32),
                np.concatenate([i for i, _ in vectors]) if vectors else np.zeros(0, np.int64),
                indptr.astype(np.int64),
            ),
            shape=(len(vectors), len(self.vocabulary)),
        )


class TermIndex:
    """Rows' sparse vectors transposed (term -> rows), for dot products with one request."""

    def __init__(self, rows: sp.csr_matrix) -> None:
        t = rows.T.tocsr()
        self.n_rows = rows.shape[0]
        self._indptr = t.indptr
        self._indices = t.indices
        self._data = t.data.astype(np.float32)

    def dot(self, columns: np.ndarray, values: np.ndarray) -> np.ndarray:
        """float32 [n_rows]: the request's dot product with every row."""
        out = np.zeros(self.n_rows, np.float32)
        rows, scores = self.sparse_dot(columns, values)
        out[rows] = scores
        return out

    def sparse_dot(self, columns: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows sharing a term with the request (ascending) and their dot products.

        Only those rows can score above zero: a few hundred of CLINC150's 15,000, so callers
        that rank rows read these instead of scanning a dense vector.
        """
        starts = self._indptr[columns]
        lengths = self._indptr[columns + 1] - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.intp), np.zeros(0, np.float32)
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        positions = offsets + np.arange(total)
        weights = self._data[positions] * np.repeat(values, lengths)
        rows, inverse = np.unique(self._indices[positions], return_inverse=True)
        scores = np.bincount(inverse, weights=weights, minlength=len(rows))
        return rows.astype(np.intp), scores.astype(np.float32)
