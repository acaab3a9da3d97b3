"""Scores of one routing system on one eval set, and the table `mesh bench routing` prints.

Pure functions over (true class, decision, latency) triples, so the router and the baselines
are scored by exactly the same code. Definitions (CLINC150's conventions):

* ``accuracy``: over in-scope rows; right iff the system's first choice is the true class.
  Calling an in-scope request out of scope is wrong (CLINC's "in-scope accuracy").
* ``accuracy_all``: over every row; an out-of-scope row is right iff it was called out of scope.
* ``accuracy_closed``: over in-scope rows, the best-ranked class whether or not the system called
  the request out of scope: how good the ranking is, apart from the out-of-scope threshold.
* ``macro_f1``: F1 averaged over the in-scope classes (an out-of-scope decision is a miss for
  the true class; an out-of-scope row sent to a class is a false positive for that class).
* ``oos_recall`` / ``oos_precision``: out of scope as the positive class; None (null, "-")
  when the eval rows hold no out-of-scope request. Precision is 0 when nothing was flagged.
* ``p50_ms`` / ``p99_ms``: wall time of single sequential calls, one request each.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_OOS = "\x00out-of-scope"
"""Stand-in for "out of scope" in label arrays (no real class can be named this)."""

KEYS = ("accuracy", "accuracy_all", "accuracy_closed", "macro_f1", "oos_recall",
        "oos_precision", "p50_ms", "p99_ms", "n")
"""Every key of a system's result, in the order they are written."""


@dataclass(frozen=True)
class Outcome:
    """One routed row: its true class, the decision, the best-ranked class, the call's time."""

    label: str | None
    """True class; None for an out-of-scope request."""
    predicted: str | None
    """The system's first choice; None when it called the request out of scope."""
    top: str | None
    """The best-ranked class even when called out of scope (None only with no candidates)."""
    latency_ms: float


def score(outcomes: Sequence[Outcome], classes: Sequence[str]) -> dict[str, float | int | None]:
    """All metrics of one system (see the module docstring); ``classes`` are the in-scope ones."""
    if not outcomes:
        raise ValueError("no eval rows to score")
    from sklearn.metrics import f1_score

    y_true = [o.label if o.label is not None else _OOS for o in outcomes]
    y_pred = [o.predicted if o.predicted is not None else _OOS for o in outcomes]
    in_scope = [o for o in outcomes if o.label is not None]
    oos = [o for o in outcomes if o.label is None]
    flagged = [o for o in outcomes if o.predicted is None]
    lat = np.array([o.latency_ms for o in outcomes], dtype=np.float64)
    result: dict[str, float | int | None] = {
        "accuracy": _share(in_scope, lambda o: o.predicted == o.label),
        "accuracy_all": _share(outcomes, lambda o: o.predicted == o.label),
        "accuracy_closed": _share(in_scope, lambda o: o.top == o.label),
        "macro_f1": float(f1_score(y_true, y_pred, labels=list(classes), average="macro",
                                   zero_division=0)),
        "oos_recall": _share(oos, lambda o: o.predicted is None) if oos else None,
        "oos_precision": (
            (_share(flagged, lambda o: o.label is None) if flagged else 0.0) if oos else None
        ),
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "n": len(outcomes),
    }
    return {k: result[k] for k in KEYS}


def _share(items: Sequence[Outcome], ok: Callable[[Outcome], bool]) -> float | None:
    """Fraction of ``items`` for which ``ok(item)`` holds; None for no items."""
    if not items:
        return None
    return sum(1 for o in items if ok(o)) / len(items)


# --- the printed table ------------------------------------------------------------------------

_COLUMNS = (
    ("accuracy", "accuracy", "pct"),
    ("macro_f1", "macro-F1", "pct"),
    ("oos_recall", "oos recall", "pct"),
    ("oos_precision", "oos prec.", "pct"),
    ("p50_ms", "p50 ms", "ms"),
    ("p99_ms", "p99 ms", "ms"),
    ("n", "n", "int"),
)


def _cell(value: object, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{100 * float(value):.1f}%"  # type: ignore[arg-type]
    if kind == "ms":
        return f"{float(value):.2f}"  # type: ignore[arg-type]
    return str(value)


def format_table(systems: Mapping[str, Mapping[str, object]]) -> str:
    """A fixed-width table, one row per system, columns as in the issue."""
    header = ["system", *(title for _, title, _ in _COLUMNS)]
    body = [
        [name, *(_cell(res.get(key), kind) for key, _, kind in _COLUMNS)]
        for name, res in systems.items()
    ]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = [
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def format_ratios(
    router: Mapping[str, object], baselines: Mapping[str, Mapping[str, object]]
) -> str:
    """One line per baseline: router / baseline for accuracy, macro-F1, p50 and p99."""
    lines = []
    for name, base in baselines.items():
        parts = []
        for key, title in (("accuracy", "accuracy"), ("macro_f1", "macro-F1"),
                           ("p50_ms", "p50"), ("p99_ms", "p99")):
            mine, theirs = router.get(key), base.get(key)
            if isinstance(mine, int | float) and isinstance(theirs, int | float) and theirs:
                parts.append(f"{title} x{mine / theirs:.2f}")
        lines.append(f"router / {name}: " + ", ".join(parts))
    return "\n".join(lines)
