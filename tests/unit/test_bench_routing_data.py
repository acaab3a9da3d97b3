"""Loaders, slicing and metrics of `mesh bench routing`, on tiny files written here.

The real data sets are exercised by tests/integration/test_bench_routing.py; these tests pin the
formats and the metric definitions on inputs small enough to check by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mesh.bench.routing import describe, expert_name, render
from mesh.bench.routing_data import (
    DatasetError,
    Row,
    classes_of,
    first_per_class,
    load_split,
    mmlu_subject_domains,
    stratified_folds,
    subsample,
)
from mesh.bench.routing_metrics import Outcome, format_ratios, format_table, score

# --- CLINC150 ---------------------------------------------------------------------------------


def _clinc(tmp_path: Path) -> Path:
    data = {
        "train": [["how much is in checking", "balance"], ["freeze my account", "freeze"],
                  ["play some jazz", "play_music"]],
        "val": [["what's my balance", "balance"], ["put on a song", "play_music"]],
        "oos_train": [["who won the war", "oos"]],
        "oos_val": [["how tall is everest", "oos"]],
    }
    (tmp_path / "domains.json").write_text(
        json.dumps({"banking": ["balance", "freeze"], "media": ["play_music"]}))
    path = tmp_path / "clinc.json"
    path.write_text(json.dumps(data))
    return path


def test_clinc_same_file_routes_val_and_oos_val(tmp_path: Path) -> None:
    path = _clinc(tmp_path)
    split = load_split("clinc150-domains", path, path)
    assert split.train == [Row("how much is in checking", "banking"),
                           Row("freeze my account", "banking"), Row("play some jazz", "media")]
    assert split.eval == [Row("what's my balance", "banking"), Row("put on a song", "media"),
                          Row("how tall is everest", None)]
    assert "'val' + 'oos_val'" in split.note


def test_clinc_other_eval_file_routes_every_list(tmp_path: Path) -> None:
    path = _clinc(tmp_path)
    other = tmp_path / "test.json"
    other.write_text(json.dumps({"test": [["my balance please", "balance"]],
                                 "oos_test": [["tell me a joke", "oos"]]}))
    split = load_split("clinc150-domains", path, other)
    assert split.eval == [Row("my balance please", "banking"), Row("tell me a joke", None)]


def test_clinc_domains_flag_and_unknown_intent(tmp_path: Path) -> None:
    path = _clinc(tmp_path)
    moved = tmp_path / "elsewhere.json"
    (tmp_path / "domains.json").rename(moved)
    with pytest.raises(DatasetError, match="--domains"):
        load_split("clinc150-domains", path, None)
    assert load_split("clinc150-domains", path, None, domains=moved).eval is None
    moved.write_text(json.dumps({"banking": ["balance", "freeze"]}))
    with pytest.raises(DatasetError, match="'play_music'"):
        load_split("clinc150-domains", path, None, domains=moved)


# --- flat files and MMLU ----------------------------------------------------------------------


def test_tsv_and_csv_readers(tmp_path: Path) -> None:
    snips = tmp_path / "dev.tsv"
    snips.write_text("utterance\tintent\nमौसम कैसा है\tGetWeather\nगाना बजाओ\tPlayMusic\n")
    assert load_split("snips-hindi", snips, None).train == [
        Row("मौसम कैसा है", "GetWeather"), Row("गाना बजाओ", "PlayMusic")]

    hinglish = tmp_path / "train.tsv"
    hinglish.write_text("en_query\tcs_query\ten_parse\tcs_parse\tdomain\n"
                        "set an alarm\talarm set karo\t[IN:X]\t[IN:X]\talarm\n")
    assert load_split("hinglish-top", hinglish, hinglish).eval == [Row("alarm set karo", "alarm")]

    bank = tmp_path / "train.csv"
    bank.write_text('text,category\n"Where is my card, it has not arrived?",card_arrival\n')
    assert load_split("banking77", bank, None).train == [
        Row("Where is my card, it has not arrived?", "card_arrival")]


def test_missing_column_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tsv"
    bad.write_text("text\tlabel\nhello\tx\n")
    with pytest.raises(DatasetError, match=r"bad\.tsv.*utterance"):
        load_split("snips-hindi", bad, None)
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_split("nope", bad, None)


def test_mmlu_five_domains_and_rows(tmp_path: Path) -> None:
    (tmp_path / "subject_categories.json").write_text(json.dumps({
        "subcategories": {"anatomy": ["health"], "algebra": ["math"], "law": ["law"],
                          "marketing": ["business"], "sociology": ["culture"]},
        "categories": {"STEM": ["math"], "humanities": ["law"], "social sciences": ["culture"],
                       "other (business, health, misc.)": ["other", "business", "health"]},
    }))
    domains = mmlu_subject_domains(tmp_path / "subject_categories.json")
    assert domains == {"anatomy": "health", "algebra": "STEM", "law": "humanities",
                       "marketing": "other", "sociology": "social sciences"}
    dev, val = tmp_path / "dev", tmp_path / "val"
    dev.mkdir()
    val.mkdir()
    (dev / "anatomy_dev.csv").write_text('"Which bone, of these?",a,b,c,d,A\n')
    (dev / "algebra_dev.csv").write_text("What is 2+2?,1,2,3,4,D\n")
    (val / "law_val.csv").write_text('"A tort is,\nwhat?",a,b,c,d,B\n')
    split = load_split("mmlu-domains", dev, val)
    assert split.train == [Row("What is 2+2?", "STEM"), Row("Which bone, of these?", "health")]
    assert split.eval == [Row("A tort is,\nwhat?", "humanities")]


# --- slicing ----------------------------------------------------------------------------------


def _rows() -> list[Row]:
    return [Row(f"{c}{i}", c) for c in "ab" for i in range(10)] + [Row("x", None)] * 4


def test_first_per_class_spreads_over_the_class() -> None:
    rows = _rows()
    kept = first_per_class(rows, 3)
    assert [r.text for r in kept if r.label == "a"] == ["a0", "a3", "a6"]
    assert first_per_class(rows, None) == rows
    assert len(first_per_class(rows, 100)) == len(rows)


def test_subsample_is_deterministic_and_keeps_every_class() -> None:
    rows = _rows()
    one, two = subsample(rows, 12, seed=0), subsample(rows, 12, seed=0)
    assert one == two
    assert {r.label for r in one} == {"a", "b", None}
    assert 10 <= len(one) <= 14
    assert subsample(rows, None) == rows


def test_stratified_folds_cover_every_row_once() -> None:
    rows = [r for r in _rows() if r.label is not None]
    folds = stratified_folds(rows, 5)
    assert len(folds) == 5
    tested = sorted(r.text for _, te in folds for r in te)
    assert tested == sorted(r.text for r in rows)
    for tr, te in folds:
        assert classes_of(te) and set(classes_of(tr)) == {"a", "b"}
    with pytest.raises(DatasetError, match="smallest class"):
        stratified_folds(rows, 11)


def test_expert_names_and_descriptions() -> None:
    assert expert_name("credit_cards") == "credit-cards"
    assert expert_name("SearchCreativeWork") == "search-creative-work"
    assert expert_name("other (business, health, misc.)") == "other-business-health-misc"
    assert describe("SearchCreativeWork") == "Answers questions about search creative work."


# --- metrics ----------------------------------------------------------------------------------


def test_score_by_hand() -> None:
    outcomes = [
        Outcome("a", "a", "a", 1.0),
        Outcome("a", None, "a", 2.0),  # in scope, called out of scope: wrong, closed-set right
        Outcome("b", "a", "a", 3.0),
        Outcome("b", "b", "b", 4.0),
        Outcome(None, None, "b", 5.0),  # out of scope, caught
        Outcome(None, "b", "b", 6.0),  # out of scope, missed
    ]
    m = score(outcomes, ["a", "b"])
    assert m["accuracy"] == pytest.approx(2 / 4)
    assert m["accuracy_all"] == pytest.approx(3 / 6)
    assert m["accuracy_closed"] == pytest.approx(3 / 4)
    # a: tp 1, fp 1, fn 1 -> F1 0.5; b: tp 1, fp 1 (the missed oos row), fn 1 -> 0.5
    assert m["macro_f1"] == pytest.approx(0.5)
    assert m["oos_recall"] == pytest.approx(1 / 2)
    assert m["oos_precision"] == pytest.approx(1 / 2)
    assert m["p50_ms"] == pytest.approx(3.5)
    assert m["n"] == 6


def test_score_without_oos_rows_has_none() -> None:
    m = score([Outcome("a", "a", "a", 1.0), Outcome("b", None, "b", 1.0)], ["a", "b"])
    assert m["oos_recall"] is None and m["oos_precision"] is None
    assert m["accuracy"] == m["accuracy_all"] == 0.5
    with pytest.raises(ValueError):
        score([], ["a"])


def test_table_and_ratios() -> None:
    router = score([Outcome("a", "a", "a", 2.0)], ["a"])
    base = score([Outcome("a", "a", "a", 4.0), Outcome("a", None, "a", 4.0)], ["a"])
    table = format_table({"router": router, "tfidf_lr": base})
    lines = table.splitlines()
    assert lines[0].split()[:3] == ["system", "accuracy", "macro-F1"]
    assert lines[2].split()[:2] == ["router", "100.0%"]
    assert " - " in lines[2]  # no out-of-scope rows: "-" for recall/precision
    ratios = format_ratios(router, {"tfidf_lr": base})
    assert "accuracy x2.00" in ratios and "p50 x0.50" in ratios
    doc = {"dataset": "d", "setup": {"data": "d: tiny", "mode": "train -> eval"},
           "router": {**router, "build_s": 0.5}, "baselines": {"tfidf_lr": base}}
    assert "router build (set_experts): 0.5 s" in render(doc)
