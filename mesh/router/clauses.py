"""Split a compound request into clauses, so each part can find its own expert.

One sentence embedding of "my cow has a fever and I need a loan for a tractor" sits between the
two topics and matches neither expert well; its clauses each match one. The router embeds the
whole request and its clauses in one batch and gives every expert its best score over them.
The split is deliberately conservative (sentence ends, semicolons, and coordinating words
between clauses of at least ``MIN_WORDS`` words) so "salt and pepper" stays one clause.
"""

from __future__ import annotations

import re

MIN_WORDS = 3
"""Clauses shorter than this are not split off (they rarely name a topic on their own)."""
MAX_CLAUSES = 4
"""At most this many clauses are scored (bounds the cost of one request)."""
MAX_WORDS = 40
"""Longer texts are not split: a paragraph's "and"s join details of one topic, and embedding
every clause of a long text multiplied its routing time (MMLU questions: p50 31 ms)."""

_BOUNDARY = re.compile(
    r"(?<=[?!.;])\s+|\s*;\s*|,?\s+(?:and also|and then|and|also|as well as|plus|but)\s+",
    re.IGNORECASE,
)


def split_clauses(text: str) -> list[str]:
    """The request's clauses, or [] when it does not split into at least two real clauses (or
    is longer than ``MAX_WORDS``).

    Pieces shorter than ``MIN_WORDS`` words join the next clause (the last one, the previous).
    """
    if len(text.split()) > MAX_WORDS:
        return []
    pieces = [p.strip(" ,") for p in _BOUNDARY.split(text) if p and p.strip(" ,")]
    clauses: list[str] = []
    carry = ""
    for p in pieces:
        p = f"{carry} {p}".strip()
        carry = ""
        if len(p.split()) < MIN_WORDS:
            carry = p  # too short to stand alone: prefix of the next clause
        else:
            clauses.append(p)
    if carry and clauses:
        clauses[-1] = f"{clauses[-1]} {carry}"
    if len(clauses) < 2:
        return []
    return clauses[:MAX_CLAUSES]
