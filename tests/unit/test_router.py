"""The first router, on the real bundled embedder and real data: no mocks.

Synthetic manifests (four experts written below) check the behaviours one by one; CLINC150's
10 domains check accuracy and out-of-scope recall on real, unseen requests.
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from mesh.config import ExpertManifest, RouterConfig
from mesh.embedding import Embedder
from mesh.router import ExpertScore, RouteDecision, Router
from mesh.router.calibration import FLOOR, calibrate
from mesh.router.clauses import split_clauses
from mesh.router.decision import clear_winner, decide
from mesh.types import TurnRecord
from tests.support.manifests import manifest

EXPERTS: dict[str, tuple[str, list[str]]] = {
    "agriculture": (
        "Advice for farmers on crops, soil, irrigation, pests, livestock and harvests.",
        [
            "When should I plant maize in a region with short rainy seasons?",
            "What fertilizer is best for wheat on sandy soil?",
            "My tomato leaves have yellow spots, what disease is it?",
            "How much water does a rice paddy need per week?",
            "How do I stop aphids from destroying my cabbage?",
            "What is the expected yield of soybeans per hectare?",
            "How can I improve the soil organic matter on my farm?",
            "When is the right time to harvest potatoes?",
            "How many cows can graze on one acre of pasture?",
            "Which crop should I rotate after corn?",
        ],
    ),
    "healthcare": (
        "Medical information about symptoms, diseases, medicines, dosages and treatments.",
        [
            "What are the symptoms of type 2 diabetes?",
            "Is it safe to take ibuprofen with paracetamol?",
            "How long does a fever from the flu usually last?",
            "What is the normal blood pressure for an adult?",
            "What dose of amoxicillin is given to a child?",
            "Should I see a doctor for chest pain after exercise?",
            "How is high cholesterol treated?",
            "What are the early signs of a stroke?",
            "Can antibiotics cure a viral infection?",
            "What vaccines does a newborn baby need?",
        ],
    ),
    "finance": (
        "Personal finance and banking: loans, interest rates, savings, budgets, taxes, investing.",
        [
            "What interest rate will I get on a personal loan?",
            "How should I budget my monthly salary?",
            "Is it better to pay off debt or save for retirement?",
            "How do I file my income tax return?",
            "What is the difference between a stock and a bond?",
            "How much should I keep in an emergency fund?",
            "How does a mortgage down payment work?",
            "Which savings account pays the highest interest?",
            "How can I improve my credit score?",
            "What are index funds and should I invest in them?",
        ],
    ),
    "computing": (
        "Help with computers, software, programming, networks and IT troubleshooting.",
        [
            "My laptop is very slow, how can I speed it up?",
            "How do I reverse a list in Python?",
            "Why does my wifi keep disconnecting?",
            "How do I install a new graphics driver on Windows?",
            "What is the difference between RAM and storage?",
            "How can I recover a deleted file?",
            "How do I set up a git repository?",
            "My printer is not detected by my computer, what do I do?",
            "What programming language should I learn first?",
            "How do I protect my computer from viruses?",
        ],
    ),
}

COOKING = (
    "Recipes, cooking techniques, baking, ingredients and kitchen tips.",
    [
        "How long should I boil an egg for a runny yolk?",
        "What can I use instead of butter when baking cookies?",
        "How do I make fresh pasta dough?",
        "What temperature should I roast a chicken at?",
        "How do I keep rice from getting sticky?",
        "Give me a simple recipe for tomato soup.",
        "Why did my bread not rise?",
        "How do I caramelize onions?",
        "What spices go well with lentils?",
        "How do I make a cake moist?",
    ],
)


def base_manifests() -> list[ExpertManifest]:
    return [manifest(n, d, ex) for n, (d, ex) in EXPERTS.items()]


class CountingEmbedder(Embedder):
    """The real embedder, counting the texts it embeds (to prove what is re-embedded)."""

    def __init__(self) -> None:
        super().__init__()
        self.texts_embedded = 0
        self.calls = 0

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.texts_embedded += len(texts)
        return super().embed(texts)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder()


@pytest.fixture(scope="module")
def router(embedder: Embedder) -> Router:
    r = Router(RouterConfig(review=False), embedder)
    r.set_experts(base_manifests())
    return r


@pytest.mark.parametrize(
    ("text", "expert"),
    [
        ("Which pesticide works against locusts on my millet field?", "agriculture"),
        ("How deep should I sow carrot seeds?", "agriculture"),
        ("what's the best feed for laying hens", "agriculture"),
        ("My child has a rash and a high temperature, what should I do?", "healthcare"),
        ("Is my headache a sign of something serious?", "healthcare"),
        ("can I drink alcohol while on antibiotics", "healthcare"),
        ("How much tax do I pay on dividends?", "finance"),
        ("Should I refinance my car loan?", "finance"),
        ("how do I open a retirement account", "finance"),
        ("How do I fix a Windows update error on my PC?", "computing"),
        ("How do I connect to a VPN?", "computing"),
        ("my keyboard stopped working", "computing"),
    ],
)
def test_unseen_paraphrases_reach_their_expert(router: Router, text: str, expert: str) -> None:
    decision = router.route(text)
    assert not decision.out_of_scope, decision.reason
    assert decision.chosen == [expert], decision.reason
    assert decision.scores[0].expert == expert
    assert decision.scores[0].nearest_example in (EXPERTS[expert][0], *EXPERTS[expert][1])
    assert f"'{expert}'" in decision.reason and "threshold" in decision.reason


def test_scores_are_ranked_and_in_unit_range(router: Router) -> None:
    decision = router.route("How do I stop slugs eating my lettuce?")
    values = [s.score for s in decision.scores]
    assert values == sorted(values, reverse=True)
    assert all(0.0 <= v <= 1.0 for v in values)
    assert {s.expert for s in decision.scores} == set(EXPERTS)
    assert decision.threshold == router.threshold


@pytest.mark.parametrize(
    "text",
    [
        "what's the capital of France?",
        "tell me a joke about cats",
        "who won the football world cup in 2018?",
        "write a poem about the sea",
    ],
)
def test_unrelated_request_is_out_of_scope(router: Router, text: str) -> None:
    decision = router.route(text)
    assert decision.out_of_scope, decision.reason
    assert decision.chosen == []
    assert decision.reason.startswith("out of scope") and "no expert answers" in decision.reason


def test_fallback_expert_answers_out_of_scope(embedder: Embedder) -> None:
    r = Router(RouterConfig(review=False, fallback_expert="computing"), embedder)
    r.set_experts(base_manifests())
    decision = r.route("tell me a joke about cats")
    assert decision.out_of_scope
    assert decision.chosen == ["computing"]
    assert "fallback expert 'computing'" in decision.reason
    # An excluded fallback (its node is down) is not used.
    assert r.route("tell me a joke about cats", restrict_to=["finance"]).chosen == []
    # In-scope requests are unaffected by the fallback.
    assert r.route("Should I refinance my car loan?").chosen == ["finance"]


def test_empty_request_is_out_of_scope(router: Router) -> None:
    decision = router.route("   ")
    assert decision.out_of_scope and decision.chosen == []


@pytest.mark.parametrize(
    ("text", "experts"),
    [
        (
            "What fertilizer should I use for my wheat and how do I fix my slow laptop?",
            {"agriculture", "computing"},
        ),
        (
            "What are the symptoms of the flu? Also, how do I file my income tax return?",
            {"healthcare", "finance"},
        ),
    ],
)
def test_compound_request_goes_to_both_experts(router: Router, text: str, experts: set) -> None:
    decision = router.route(text)
    assert not decision.out_of_scope
    assert set(decision.chosen) == experts, decision.reason
    assert "compound request" in decision.reason


def test_max_experts_caps_fan_out(embedder: Embedder) -> None:
    r = Router(RouterConfig(review=False, max_experts=1), embedder)
    r.set_experts(base_manifests())
    text = "What fertilizer should I use for my wheat and how do I fix my slow laptop?"
    assert len(r.route(text).chosen) == 1


def test_adding_an_expert_changes_routing_without_reembedding_others() -> None:
    counting = CountingEmbedder()
    r = Router(RouterConfig(review=False), counting)
    r.set_experts(base_manifests())
    per_expert = {n: 1 + len(ex) for n, (_, ex) in EXPERTS.items()}
    assert counting.texts_embedded == sum(per_expert.values())
    query = "How do I make my pancakes fluffier?"
    before = r.route(query)
    assert "cooking" not in before.chosen

    embedded = counting.texts_embedded
    r.set_experts([*base_manifests(), manifest("cooking", *COOKING)])
    assert counting.texts_embedded - embedded == 1 + len(COOKING[1])  # only the new expert
    assert r.expert_names() == [*EXPERTS, "cooking"]
    after = r.route(query)
    assert after.chosen == ["cooking"], after.reason

    # Changing one expert's examples re-embeds that expert only; removing embeds nothing.
    embedded = counting.texts_embedded
    desc, examples = EXPERTS["finance"]
    changed = [m for m in base_manifests() if m.name != "finance"]
    changed.append(manifest("finance", desc, [*examples, "How do I open a brokerage account?"]))
    r.set_experts([*changed, manifest("cooking", *COOKING)])
    assert counting.texts_embedded - embedded == per_expert["finance"] + 1

    embedded = counting.texts_embedded
    r.set_experts(changed)
    assert counting.texts_embedded == embedded
    assert "cooking" not in r.expert_names()
    assert "cooking" not in r.route(query).chosen


def test_restrict_to_limits_candidates(router: Router) -> None:
    decision = router.route("How much tax do I pay on dividends?", restrict_to=["computing", "x"])
    assert [s.expert for s in decision.scores] == ["computing"]
    assert decision.chosen != ["finance"]


@pytest.mark.parametrize(
    "follow_up", ["and what about the side effects?", "how much does it cost?"]
)
def test_follow_up_stays_with_previous_expert(router: Router, follow_up: str) -> None:
    history = [
        TurnRecord(
            question="Is it safe to give my kid ibuprofen for a fever?",
            answer="Yes, at the dose for their weight.",
            experts=("healthcare",),
        )
    ]
    decision = router.route(follow_up, history=history)
    assert decision.chosen == ["healthcare"], decision.reason
    assert not decision.out_of_scope


def test_clear_new_topic_leaves_previous_expert(router: Router) -> None:
    history = [TurnRecord("What are the symptoms of a stroke?", "...", ("healthcare",))]
    decision = router.route("How do I sort a dictionary by value in Python?", history=history)
    assert decision.chosen == ["computing"], decision.reason


def test_calibrated_threshold_is_explained(router: Router) -> None:
    cal = router.calibration
    assert cal.source == "calibrated"
    assert cal.n_examples == sum(len(ex) for _, ex in EXPERTS.values())
    assert FLOOR <= router.threshold <= 0.5
    text = cal.explain()
    assert f"{router.threshold:.2f}" in text and "leave-one-out" in text


def test_configured_threshold_wins(embedder: Embedder) -> None:
    r = Router(RouterConfig(review=False, threshold=0.9), embedder)
    r.set_experts(base_manifests())
    assert r.threshold == 0.9 and r.calibration.source == "configured"
    assert r.route("Should I refinance my car loan?").out_of_scope


def test_duplicate_names_are_rejected(router: Router) -> None:
    with pytest.raises(ValueError, match="agriculture"):
        router.set_experts([*base_manifests(), base_manifests()[0]])
    assert router.expert_names() == list(EXPERTS)  # the failed update changed nothing


def test_router_without_experts_routes_nowhere(embedder: Embedder) -> None:
    r = Router(RouterConfig(review=False, fallback_expert="general"), embedder)
    decision = r.route("anything at all")
    assert decision.out_of_scope and decision.chosen == ["general"] and decision.scores == []
    assert calibrate(r._state.index).n_examples == 0


def test_decide_rules_are_pure() -> None:
    scores = [
        ExpertScore("b", 0.50, "eb"),
        ExpertScore("a", 0.70, "ea"),
        ExpertScore("c", 0.66, "ec"),
        ExpertScore("d", 0.64, "ed"),
    ]
    d = decide(scores, threshold=0.4, margin=0.05, max_experts=3)
    assert [s.expert for s in d.scores] == ["a", "c", "d", "b"]
    assert d.chosen == ["a", "c"]  # d is 0.06 behind: outside the margin
    assert decide(scores, 0.4, 0.1, 2).chosen == ["a", "c"]  # capped at 2
    assert decide(scores, 0.4, 0.1, 3).chosen == ["a", "c", "d"]
    low = decide(scores, 0.8, 0.1, 3, fallback="general")
    assert isinstance(low, RouteDecision)
    assert low.out_of_scope and low.chosen == ["general"] and "0.70 < threshold 0.80" in low.reason
    tie = decide([ExpertScore("y", 0.5, ""), ExpertScore("x", 0.5, "")], 0.4, 0.0, 1)
    assert tie.chosen == ["x"]  # ties resolve by name, not by input order


def test_clause_winners_join_only_when_clear_and_in_scope() -> None:
    whole = [ExpertScore("a", 0.70, "ea"), ExpertScore("b", 0.30, "eb")]
    assert decide(whole, 0.4, 0.05, 3).chosen == ["a"]
    clause = clear_winner([ExpertScore("b", 0.80, "eb"), ExpertScore("a", 0.20, "ea")], 0.05)
    assert clause is not None and clause.expert == "b"
    assert decide(whole, 0.4, 0.05, 3, clause_winners=[clause]).chosen == ["a", "b"]
    assert clear_winner([ExpertScore("b", 0.50, ""), ExpertScore("a", 0.47, "")], 0.05) is None
    weak = ExpertScore("b", 0.35, "eb")  # below the threshold: ignored
    assert decide(whole, 0.4, 0.05, 3, clause_winners=[weak]).chosen == ["a"]


def test_clause_split_is_conservative() -> None:
    assert split_clauses("salt and pepper steak recipe") == []
    assert split_clauses("and what about the side effects?") == []
    assert split_clauses("My cow has a fever and I also need a loan for a tractor") == [
        "My cow has a fever",
        "I need a loan for a tractor",
    ]


def test_concurrent_routes_during_updates(embedder: Embedder) -> None:
    r = Router(RouterConfig(review=False), embedder)
    r.set_experts(base_manifests())
    all_names = {*EXPERTS, "cooking"}
    errors: list[BaseException] = []
    stop = threading.Event()

    def worker() -> None:
        try:
            while not stop.is_set():
                d = r.route("Should I refinance my car loan?")
                assert d.chosen == ["finance"] and set(r.expert_names()) <= all_names
        except BaseException as e:  # report in the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(6):
        extra = [manifest("cooking", *COOKING)] if i % 2 == 0 else []
        r.set_experts([*base_manifests(), *extra])
    stop.set()
    for t in threads:
        t.join()
    assert not errors, errors


def test_clinc150_domains(shared: Path, embedder: Embedder) -> None:
    """10 CLINC150 domains as experts, 30 training rows each; unseen validation rows."""
    data = json.loads((shared / "data/clinc150/clinc150_trainval.json").read_text())
    domains: dict[str, list[str]] = json.loads((shared / "data/clinc150/domains.json").read_text())
    domain_of = {intent: d for d, intents in domains.items() for intent in intents}
    rng = random.Random(0)
    by_domain: dict[str, list[str]] = {d: [] for d in domains}
    for text, intent in data["train"]:
        by_domain[domain_of[intent]].append(text)
    manifests = []
    for d, intents in sorted(domains.items()):
        name = d.replace("_", "-")
        description = f"Requests about {d.replace('_', ' ')}: " + ", ".join(
            i.replace("_", " ") for i in intents
        )
        manifests.append(manifest(name, description, rng.sample(by_domain[d], 30)))
    r = Router(RouterConfig(review=False), embedder)
    r.set_experts(manifests)

    val = rng.sample(data["val"], 300)
    correct = 0
    latencies = []
    for text, intent in val:
        t0 = time.perf_counter()
        decision = r.route(text)
        latencies.append(time.perf_counter() - t0)
        correct += decision.chosen[:1] == [domain_of[intent].replace("_", "-")]
    accuracy = correct / len(val)
    oos_caught = sum(r.route(text).out_of_scope for text, _ in data["oos_val"])
    oos_recall = oos_caught / len(data["oos_val"])
    median_ms = statistics.median(latencies) * 1000
    print(
        f"\nCLINC150 10 domains: accuracy {accuracy:.3f} on {len(val)} val rows, "
        f"oos recall {oos_recall:.2f}, threshold {r.threshold:.3f}, "
        f"median route {median_ms:.1f} ms"
    )
    assert accuracy >= 0.85
    assert oos_recall >= 0.3  # CLINC's out-of-scope rows are close to its domains by design
    assert median_ms < 50  # generous: a few ms is expected; this catches accidental re-embedding
