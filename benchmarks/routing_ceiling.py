"""How far frozen sentence features can take CLINC150's 10 domains: encoder x head classes.

    python benchmarks/routing_ceiling.py [--data ../shared/data]

Why: the router's target (98% in-scope accuracy with 85% out-of-scope recall) was out of reach
with MiniLM alone, and this study is what chose the review (``mesh/router/review.py``): a
stronger encoder *and* head classes finer than a domain. For each encoder the router can load
(MiniLM int8, the review model all-mpnet-base-v2 fp32) and each granularity of head classes
(10 domains; 10 k-means groups of each domain's own examples; CLINC's 150 intents, which no
manifest carries and serve only as the ceiling), a one-vs-rest linear SVM is fitted over the
sentence vector plus word and character TF-IDF of the training rows. Printed per row: ranking
accuracy on the validation rows, and in-scope accuracy at an *oracle* threshold that rejects
exactly 85% of ``oos_val`` (score: mean of the 10 best cosines to the domain's rows + 0.2 x the
head's margin). The oracle is tuned on the evaluation rows themselves, so it bounds what any
calibrated threshold can do with these features; the router's own figures come from
``mesh bench routing``. ~8 minutes on 2 cores, most of it embedding 18,100 rows with mpnet.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

from mesh.router.index import TextEmbedder

GROUPS = 10
TOP_K = 10
RECALL = 0.85


def load(data: Path) -> tuple[dict[str, list[list[str]]], dict[str, str]]:
    """CLINC150's splits and each intent's domain."""
    splits = json.loads((data / "clinc150" / "clinc150_trainval.json").read_text())
    domains = json.loads((data / "clinc150" / "domains.json").read_text())
    return splits, {intent: d for d, intents in domains.items() for intent in intents}


def encoders() -> dict[str, TextEmbedder]:
    from mesh.embedding import shared_embedder
    from mesh.review_model import shared_review_embedder

    return {"MiniLM int8": shared_embedder(), "mpnet fp32": shared_review_embedder()}


def head_classes(kind: str, vectors: np.ndarray, domain: np.ndarray, intent: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Each training row's class and each class's domain; ``kind``: domains, groups (k-means
    of each domain's own rows) or intents."""
    if kind == "domains":
        return domain, np.arange(domain.max() + 1)
    if kind == "intents":
        owner = np.zeros(intent.max() + 1, np.intp)
        owner[intent] = domain
        return intent, owner
    labels = np.zeros(len(domain), np.intp)
    for d in range(domain.max() + 1):
        rows = domain == d
        labels[rows] = d * GROUPS + KMeans(GROUPS, n_init=1, random_state=0).fit(
            vectors[rows]).labels_
    return labels, np.repeat(np.arange(domain.max() + 1), GROUPS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    args = parser.parse_args()
    splits, domain_of = load(args.data)
    names = sorted(set(domain_of.values()))
    intents = sorted(domain_of)
    train, evaluation = splits["train"], splits["val"] + splits["oos_val"]
    y_domain = np.array([names.index(domain_of[i]) for _, i in train])
    y_intent = np.array([intents.index(i) for _, i in train])
    truth = np.array([names.index(domain_of[i]) if i != "oos" else -1 for _, i in evaluation])
    in_scope = truth >= 0
    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True,
                            max_features=50_000)
    texts, queries = [t for t, _ in train], [t for t, _ in evaluation]
    lexical_train = [words.fit_transform(texts), chars.fit_transform(texts)]
    lexical_eval = [words.transform(queries), chars.transform(queries)]
    print(f"{'encoder':<12} {'head classes':<16} {'ranking':>8} {'acc@85%':>8} {'fit s':>6}")
    for name, encoder in encoders().items():
        start = time.perf_counter()
        train_v = encoder.embed_batched(texts)
        eval_v = encoder.embed_batched(queries)
        print(f"# {name}: embedded {len(texts) + len(queries)} rows in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
        cosines = eval_v @ train_v.T
        similarity = np.stack([
            -np.sort(-cosines[:, y_domain == d], axis=1)[:, :TOP_K].mean(axis=1)
            for d in range(len(names))
        ], axis=1)
        design = sp.hstack([sp.csr_matrix(train_v), *lexical_train], format="csr")
        design_eval = sp.hstack([sp.csr_matrix(eval_v), *lexical_eval], format="csr")
        for kind in ("domains", "groups", "intents"):
            labels, owner = head_classes(kind, train_v, y_domain, y_intent)
            start = time.perf_counter()
            svm = LinearSVC(C=1.0).fit(design, labels)
            fit_s = time.perf_counter() - start
            margins = svm.decision_function(design_eval)
            per_domain = np.stack([margins[:, owner == d].max(axis=1)
                                   for d in range(len(names))], axis=1)
            score = similarity + 0.2 * per_domain
            best, top = score.argmax(axis=1), score.max(axis=1)
            cut = np.sort(top[~in_scope])[int(np.ceil(RECALL * (~in_scope).sum())) - 1]
            ranking = (best == truth)[in_scope].mean()
            accuracy = ((best == truth) & (top > cut))[in_scope].mean()
            label = f"{GROUPS} k-means/domain" if kind == "groups" else kind
            print(f"{name:<12} {label:<16} {ranking:>8.1%} {accuracy:>8.1%} {fit_s:>6.1f}",
                  flush=True)


if __name__ == "__main__":
    main()
