"""Loaders for the public routing data sets `mesh bench routing` measures on, and slicing.

Every loader returns plain ``Row``s: the text a user would send and the class it belongs to
(``None`` for an out-of-scope request). The bench turns each class into one expert, so a
loader's job is only to say what the text is and which class it belongs to; nothing here knows
about routers or models. Formats are those of ``../shared/data`` (its README describes them).

The training side never contains out-of-scope rows: a router (and a baseline) must learn what is
out of scope from in-scope examples alone, as it would in production.
"""

from __future__ import annotations

import csv
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

DATASETS = ("clinc150-domains", "banking77", "hinglish-top", "snips-hindi", "mmlu-domains")
"""Names accepted by ``--dataset``."""

CLINC_OOS_INTENT = "oos"
"""CLINC150's label for an out-of-scope request."""

MMLU_HEALTH = "health"
"""The MMLU subcategory split out of "other (business, health, misc.)" as its own domain."""


class DatasetError(ValueError):
    """A data file that is missing, malformed or unsuitable; the message names the file."""


@dataclass(frozen=True)
class Row:
    """One request and its class; ``label`` is None for an out-of-scope request."""

    text: str
    label: str | None


@dataclass(frozen=True)
class Split:
    """What one run needs: the training rows, and the rows to route (or None with --folds)."""

    train: list[Row]
    eval: list[Row] | None
    note: str
    """How the files were read, in a sentence (printed and written to the JSON)."""


def load_split(
    dataset: str, train: Path, eval_path: Path | None, domains: Path | None = None
) -> Split:
    """Read the training file and (unless cross-validating) the eval file of ``dataset``."""
    if dataset not in DATASETS:
        raise DatasetError(f"unknown dataset '{dataset}'; choose one of {', '.join(DATASETS)}")
    for path in (train, eval_path):
        if path is not None and not path.exists():
            raise DatasetError(f"{path} does not exist")
    if dataset == "clinc150-domains":
        return _clinc_split(train, eval_path, domains)
    if dataset == "mmlu-domains":
        return _mmlu_split(train, eval_path)
    reader = _FLAT_READERS[dataset]
    rows = reader(train)
    ev = reader(eval_path) if eval_path is not None else None
    return Split(rows, ev, f"{dataset}: {train.name} as training" + (
        f", {eval_path.name} as eval" if eval_path is not None else ""))


# --- CLINC150 ---------------------------------------------------------------------------------

def _clinc_split(train: Path, eval_path: Path | None, domains: Path | None) -> Split:
    """CLINC150 intents grouped into its 10 official domains (domains.json).

    Training uses split ``train`` only (in scope). The eval file contributes every list it
    holds, except when it is the training file itself: then ``val`` + ``oos_val``, so nothing
    the router was built from is routed.
    """
    to_domain = clinc_intent_domains(domains or train.with_name("domains.json"))
    train_obj = _read_json_object(train)
    rows = [r for r in _clinc_rows(train_obj, ["train"], to_domain, train) if r.label is not None]
    if eval_path is None:
        return Split(rows, None, "clinc150-domains: split 'train' of "
                     f"{train.name} as training (in scope only)")
    eval_obj = _read_json_object(eval_path)
    if eval_path.resolve() == train.resolve():
        lists = ["val", "oos_val"]
        how = "splits 'val' + 'oos_val' of the same file as eval"
    else:
        lists = [k for k, v in eval_obj.items() if isinstance(v, list)]
        how = f"every list of {eval_path.name} as eval ({', '.join(lists)})"
    ev = _clinc_rows(eval_obj, lists, to_domain, eval_path)
    return Split(rows, ev, f"clinc150-domains: split 'train' of {train.name} as training; {how}")


def clinc_intent_domains(path: Path) -> dict[str, str]:
    """Intent -> domain from CLINC150's domains.json ({domain: [intent, ...]})."""
    if not path.is_file():
        raise DatasetError(f"{path} not found: CLINC150 needs domains.json next to the data "
                           "file, or give it with --domains PATH")
    obj = _read_json_object(path)
    mapping: dict[str, str] = {}
    for domain, intents in obj.items():
        if not isinstance(intents, list):
            raise DatasetError(f"{path}: domain '{domain}' must map to a list of intents")
        for intent in intents:
            mapping[str(intent)] = domain
    return mapping


def _clinc_rows(
    obj: dict[str, object], lists: Sequence[str], to_domain: dict[str, str], path: Path
) -> list[Row]:
    rows: list[Row] = []
    for key in lists:
        items = obj.get(key)
        if not isinstance(items, list):
            raise DatasetError(f"{path}: no list '{key}' (found {', '.join(sorted(obj))})")
        for i, item in enumerate(items):
            if not (isinstance(item, list) and len(item) == 2):
                raise DatasetError(f"{path}: {key}[{i}] is not a [text, intent] pair")
            text, intent = str(item[0]), str(item[1])
            if intent == CLINC_OOS_INTENT:
                rows.append(Row(text, None))
            elif intent in to_domain:
                rows.append(Row(text, to_domain[intent]))
            else:
                raise DatasetError(f"{path}: {key}[{i}] has intent '{intent}', which "
                                   "domains.json does not list")
    return rows


def _read_json_object(path: Path) -> dict[str, object]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: not readable as JSON ({e})") from e
    if not isinstance(obj, dict):
        raise DatasetError(f"{path}: expected a JSON object")
    return obj


# --- flat files: one row per line -------------------------------------------------------------

def _table_rows(path: Path, delimiter: str, text_col: str, label_col: str) -> list[Row]:
    """Rows of a CSV/TSV with a header naming ``text_col`` and ``label_col``."""
    if not path.is_file():
        raise DatasetError(f"{path} is not a file")
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
        missing = {text_col, label_col} - set(reader.fieldnames or [])
        if missing:
            raise DatasetError(f"{path}: missing column(s) {', '.join(sorted(missing))} "
                               f"(header: {', '.join(reader.fieldnames or [])})")
        rows = []
        for line, rec in enumerate(reader, start=2):
            text, label = (rec.get(text_col) or "").strip(), (rec.get(label_col) or "").strip()
            if not text or not label:
                raise DatasetError(f"{path}:{line}: empty {text_col} or {label_col}")
            rows.append(Row(text, label))
    if not rows:
        raise DatasetError(f"{path}: no rows")
    return rows


def banking77_rows(path: Path) -> list[Row]:
    """banking77 ``train.csv``: ``text,category``; the 77 categories are the classes."""
    return _table_rows(path, ",", "text", "category")


def hinglish_top_rows(path: Path) -> list[Row]:
    """Hinglish-TOP TSV: the romanised code-switched ``cs_query``, classed by ``domain``."""
    return _table_rows(path, "\t", "cs_query", "domain")


def snips_hindi_rows(path: Path) -> list[Row]:
    """SNIPS Hindi TSV: ``utterance, intent``."""
    return _table_rows(path, "\t", "utterance", "intent")


_FLAT_READERS: dict[str, Callable[[Path], list[Row]]] = {
    "banking77": banking77_rows,
    "hinglish-top": hinglish_top_rows,
    "snips-hindi": snips_hindi_rows,
}


# --- MMLU -------------------------------------------------------------------------------------

def _mmlu_split(train: Path, eval_path: Path | None) -> Split:
    grouping = train.parent / "subject_categories.json"
    domains = mmlu_subject_domains(grouping)
    rows = mmlu_rows(train, domains)
    ev = mmlu_rows(eval_path, domains) if eval_path is not None else None
    return Split(rows, ev, f"mmlu-domains: questions of {train.name}/ as training" + (
        f", of {eval_path.name}/ as eval" if eval_path is not None else "") +
        "; 5 domains: the 4 MMLU categories with 'health' split out of 'other'")


def mmlu_subject_domains(path: Path) -> dict[str, str]:
    """Subject -> one of 5 domains, from MMLU's subject_categories.json.

    The file maps subjects to subcategories and subcategories to 4 categories (STEM,
    humanities, social sciences, "other (business, health, misc.)"). The last one is the
    most heterogeneous and holds the largest subcategory (health, 8 subjects), so health is its
    own domain: STEM, humanities, social sciences, health, other.
    """
    if not path.is_file():
        raise DatasetError(f"{path} not found: mmlu-domains reads subject_categories.json "
                           "next to the --train folder")
    obj = _read_json_object(path)
    subcats, cats = obj.get("subcategories"), obj.get("categories")
    if not isinstance(subcats, dict) or not isinstance(cats, dict):
        raise DatasetError(f"{path}: expected keys 'subcategories' and 'categories'")
    to_category = {sub: _mmlu_domain_name(cat) for cat, subs in cats.items() for sub in subs}
    to_category[MMLU_HEALTH] = MMLU_HEALTH
    out: dict[str, str] = {}
    for subject, subs in subcats.items():
        sub = subs[0] if isinstance(subs, list) and subs else subs
        if sub not in to_category:
            raise DatasetError(f"{path}: subject '{subject}' has subcategory '{sub}', which no "
                               "category lists")
        out[subject] = to_category[sub]
    return out


def _mmlu_domain_name(category: str) -> str:
    """'other (business, health, misc.)' -> 'other'; the others unchanged."""
    return category.split("(")[0].strip()


def mmlu_rows(folder: Path, domains: dict[str, str]) -> list[Row]:
    """Questions of every ``<subject>_<part>.csv`` in ``folder`` (no header; question first)."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: mmlu-domains expects a folder of <subject>_<part>.csv")
    rows: list[Row] = []
    for path in sorted(folder.glob("*.csv")):
        subject = path.stem.rsplit("_", 1)[0]
        if subject not in domains:
            raise DatasetError(f"{path}: subject '{subject}' is not in subject_categories.json")
        with path.open(encoding="utf-8", newline="") as f:
            for rec in csv.reader(f):
                if rec and rec[0].strip():
                    rows.append(Row(rec[0].strip(), domains[subject]))
    if not rows:
        raise DatasetError(f"{folder}: no questions found")
    return rows


# --- slicing and folds ------------------------------------------------------------------------

def classes_of(rows: Sequence[Row]) -> list[str]:
    """In-scope classes in order of first appearance (deterministic expert order)."""
    seen: dict[str, None] = {}
    for r in rows:
        if r.label is not None:
            seen.setdefault(r.label, None)
    return list(seen)


def first_per_class(rows: Sequence[Row], n: int | None) -> list[Row]:
    """``n`` rows of each class, evenly spaced through its rows; file order kept (None: all).

    Not simply the first ``n``: data files are often sorted by a finer label (CLINC150 lists its
    150 intents one after another), so the first rows of a domain would all be one intent.
    Even spacing is just as deterministic and covers the whole class.
    """
    if n is None:
        return list(rows)
    by_label: dict[str | None, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_label[r.label].append(i)
    keep: list[int] = []
    for idx in by_label.values():
        if len(idx) <= n:
            keep.extend(idx)
        else:
            keep.extend(idx[(j * len(idx)) // n] for j in range(n))
    return [rows[i] for i in sorted(keep)]


def subsample(rows: Sequence[Row], n: int | None, seed: int = 0) -> list[Row]:
    """About ``n`` rows with every class (out of scope included) in its original proportion.

    Each class keeps round(n * share) rows, at least one, picked by a seeded shuffle; the result
    is in file order. Deterministic for a given seed, so two runs route the same rows.
    """
    if n is None or n >= len(rows):
        return list(rows)
    by_label: dict[str | None, list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        by_label[r.label].append(i)
    rng = random.Random(seed)
    keep: list[int] = []
    for label in sorted(by_label, key=lambda x: (x is None, x or "")):
        idx = by_label[label]
        take = max(1, round(n * len(idx) / len(rows)))
        keep.extend(rng.sample(idx, min(take, len(idx))))
    return [rows[i] for i in sorted(keep)]


def stratified_folds(
    rows: Sequence[Row], k: int, seed: int = 0
) -> list[tuple[list[Row], list[Row]]]:
    """K (train, test) pairs of a shuffled stratified K-fold over in-scope ``rows``."""
    from sklearn.model_selection import StratifiedKFold

    labels = [r.label for r in rows]
    smallest = min(Counter(labels).values())
    if k < 2 or k > smallest:
        raise DatasetError(f"--folds {k}: needs 2 <= K <= the smallest class size ({smallest})")
    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [
        ([rows[i] for i in tr], [rows[i] for i in te])
        for tr, te in skf.split([r.text for r in rows], labels)
    ]
