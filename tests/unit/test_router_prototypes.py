"""Large experts read through k-means prototypes; the per-expert top-k means for all experts at
once. Real embedder and real CLINC150 rows; the pure helpers against brute force."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mesh.config import ExpertManifest, RouterConfig
from mesh.embedding import Embedder, shared_embedder
from mesh.router import Router
from mesh.router.calibration import CEILING, FLOOR
from mesh.router.index import (
    LEX_WEIGHT,
    ExampleIndex,
    blend,
    sparse_top_k_means,
    top_k_for,
    top_k_means,
    unit,
)
from mesh.router.prototypes import (
    PROTOTYPE_TOP_K,
    PROTOTYPES,
    SUMMARY_ROWS,
    similarities_without_each,
    summarize,
)
from tests.support.manifests import manifest

LARGE = 200
"""Training rows per large expert (more than SUMMARY_ROWS)."""


def unit_rows(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    v = rng.normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_top_k_means_match_sorting() -> None:
    rng = np.random.default_rng(0)
    sizes, ks = [5, 9, 1], np.array([2, 8, 1])
    values = np.full((3, len(sizes), max(sizes)), -np.inf, np.float32)
    for g, n in enumerate(sizes):
        values[:, g, :n] = rng.normal(size=(3, n))
    got = top_k_means(values, ks)
    for q in range(3):
        for g, n in enumerate(sizes):
            expected = np.sort(values[q, g, :n])[::-1][: ks[g]].mean()
            assert got[q, g] == pytest.approx(expected, abs=1e-6)


def test_sparse_top_k_means_count_missing_values_as_zero() -> None:
    groups = np.array([0, 0, 1, -1, 0, 1])
    values = np.array([0.5, 0.2, 0.9, 3.0, 0.4, 0.1], np.float32)
    ks = np.array([2, 4])
    got = sparse_top_k_means(values, groups, ks)
    assert got == pytest.approx([(0.5 + 0.4) / 2, (0.9 + 0.1) / 4])
    assert sparse_top_k_means(values[:0], groups[:0], ks).tolist() == [0.0, 0.0]


def test_small_experts_keep_their_examples() -> None:
    rng = np.random.default_rng(1)
    assert summarize(unit_rows(rng, SUMMARY_ROWS)) is None


def test_prototypes_cover_every_row_and_are_deterministic() -> None:
    rng = np.random.default_rng(2)
    vectors = unit_rows(rng, 300)
    protos = summarize(vectors)
    assert _same(protos, summarize(vectors))
    assert protos is not None
    clusters = len(protos.vectors)
    assert 1 < clusters <= PROTOTYPES
    assert np.allclose(np.linalg.norm(protos.vectors, axis=1), 1.0, atol=1e-5)
    assert protos.members.shape == (300,) and set(protos.members.tolist()) == set(range(clusters))
    # each medoid belongs to its cluster and is its best-aligned member (ties: either)
    for c, row in enumerate(protos.medoids.tolist()):
        assert protos.members[row] == c
        own = np.flatnonzero(protos.members == c)
        best = float(np.max(vectors[own] @ protos.vectors[c]))
        assert float(vectors[row] @ protos.vectors[c]) == pytest.approx(best, abs=1e-6)


def _same(a: object, b: object) -> bool:
    assert a is not None and b is not None
    return all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ("vectors", "members"))


def test_leave_one_out_recomputes_the_own_prototype() -> None:
    rng = np.random.default_rng(3)
    vectors = unit_rows(rng, 200)
    protos = summarize(vectors)
    assert protos is not None
    sims = similarities_without_each(vectors, protos)
    for row in (0, 17, 123):
        c = protos.members[row]
        others = [r for r in np.flatnonzero(protos.members == c) if r != row]
        if not others:
            assert sims[row, c] == -np.inf
            continue
        expected = float(unit(vectors[others].sum(axis=0)) @ vectors[row])
        assert sims[row, c] == pytest.approx(expected, abs=1e-5)
        rest = [k for k in range(len(protos.vectors)) if k != c]
        assert np.allclose(sims[row, rest], vectors[row] @ protos.vectors[rest].T, atol=1e-6)


@pytest.fixture(scope="module")
def clinc(shared: Path) -> tuple[list[ExpertManifest], list[tuple[str, str]]]:
    """Three CLINC150 domains of LARGE rows (prototypes) and two of 20 rows (examples), and
    validation rows of all five."""
    data = json.loads((shared / "data/clinc150/clinc150_trainval.json").read_text())
    domains = json.loads((shared / "data/clinc150/domains.json").read_text())
    domain_of = {i: d for d, intents in domains.items() for i in intents}
    chosen = ["banking", "travel", "kitchen_and_dining", "auto_and_commute", "small_talk"]
    rows: dict[str, list[str]] = {d: [] for d in chosen}
    for text, intent in data["train"]:
        if domain_of[intent] in rows:
            rows[domain_of[intent]].append(text)
    manifests = [
        manifest(d.replace("_", "-"), f"Requests about {d.replace('_', ' ')}.",
                 rows[d][:: len(rows[d]) // (LARGE if i < 3 else 20)][: LARGE if i < 3 else 20])
        for i, d in enumerate(chosen)
    ]
    val = [(t, domain_of[i].replace("_", "-")) for t, i in data["val"] if domain_of[i] in rows]
    return manifests, val[::5]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return shared_embedder()


def test_similarity_is_the_documented_formula(
    clinc: tuple[list[ExpertManifest], list[tuple[str, str]]], embedder: Embedder
) -> None:
    """The whole-array scoring equals the formula computed expert by expert, for experts read
    through prototypes and experts read through their examples."""
    manifests, val = clinc
    index = ExampleIndex.build(manifests, embedder)
    assert [e.prototypes is not None for e in index.experts] == [True] * 3 + [False] * 2
    assert len(index.dense) == sum(
        len(e.prototypes.vectors) if e.prototypes is not None else len(e.texts)
        for e in index.experts
    )
    texts = [t for t, _ in val[:20]]
    features = index.featurize(texts, embedder.embed(texts))
    got, nearest = index.similarities(features)
    words = np.vstack([index._word_terms.dot(c, v) for c, v in features.words])
    for p, e in enumerate(index.experts):
        start, end = index.row_range(p)
        lexical = words[:, start:end]
        centroid = features.vectors @ unit(e.vectors.mean(axis=0))
        if e.prototypes is None:
            rows = features.vectors @ e.vectors.T + LEX_WEIGHT * lexical
            top = np.sort(rows, axis=1)[:, ::-1][:, : top_k_for(end - start)].mean(axis=1)
            best = start + rows.argmax(axis=1)
        else:
            dense = features.vectors @ e.prototypes.vectors.T
            top = np.sort(dense, axis=1)[:, ::-1][:, :PROTOTYPE_TOP_K].mean(axis=1)
            top += LEX_WEIGHT * np.sort(lexical, axis=1)[:, ::-1][:, : top_k_for(end - start)].mean(
                axis=1
            )
            best = start + e.prototypes.medoids[dense.argmax(axis=1)]
        assert np.allclose(got[:, p], blend(top, centroid), atol=1e-5)
        assert (nearest[:, p] == best).all()


def test_large_experts_route_through_prototypes(
    clinc: tuple[list[ExpertManifest], list[tuple[str, str]]], embedder: Embedder
) -> None:
    manifests, val = clinc
    router = Router(RouterConfig(review=False, multilingual=False), embedder)
    router.set_experts(manifests)
    assert FLOOR <= router.threshold <= CEILING
    correct = 0
    examples = {m.name: set(m.examples) | {m.description} for m in manifests}
    for text, expert in val:
        decision = router.route(text)
        correct += decision.chosen[:1] == [expert]
        best = decision.scores[0]
        assert best.nearest_example in examples[best.expert]
    assert correct / len(val) >= 0.9, correct / len(val)
    assert router.route("what's the boiling point of mercury in kelvin").out_of_scope

    # Changing one small expert re-clusters nothing: the large experts' entries are reused.
    before = {e.name: e for e in router._state.index.experts}
    changed = manifest(manifests[-1].name, manifests[-1].description,
                       [*manifests[-1].examples, "tell me a joke about cats"])
    router.set_experts([*manifests[:-1], changed])
    after = {e.name: e for e in router._state.index.experts}
    for m in manifests[:3]:
        assert after[m.name] is before[m.name]
    assert after[changed.name] is not before[changed.name]
