"""Reading feature values out of a request's words: "mean radius 17.9, worst area 2019".

This is input parsing, not a model: the sidecar lists every feature's name, aliases, optional
patterns and category values, and this module finds them in the text (case-insensitive, whole
words, longest name first so "worst radius" is never read as "radius"). What it cannot find is
left to the caller, which fills training medians and says so in the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mesh.experts.onnx.sidecar import FeatureInfo

_NUMBER = r"([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?)"
# Words that may sit between a feature's name and its value: "bmi of 32", "radius: 17.9",
# "blood pressure is 105", "glucose = 99", "area (mm2) 1001".
_CONNECTOR = (
    r"(?:\s*\([^)]{0,20}\))?"  # an optional unit in brackets
    r"(?:\s*(?:[:=~]|is|was|of|at|equals?|around|about|approx\.?)\s*|\s+)"
)
_EDGE_L = r"(?<![a-z0-9])"
_EDGE_R = r"(?![a-z0-9])"


def phrase_pattern(phrase: str) -> str:
    """Regex for a name written loosely: any spacing, ``_`` or ``-`` between words, optional dots.

    "No. 457" matches "no 457", "No.457" and "no. 457"; "mean radius" matches "mean_radius".
    """
    words = phrase.lower().split()
    parts = [re.escape(w.rstrip(".")) + (r"\.?" if w.endswith(".") else "") for w in words]
    return _EDGE_L + r"[\s_-]*".join(parts) + _EDGE_R


@dataclass
class ParsedFeatures:
    """What the text gave: numeric values and category mentions, by feature name."""

    numeric: dict[str, float] = field(default_factory=dict)
    categorical: dict[str, list[str]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """Features the text gave, numeric then categorical."""
        return [*self.numeric, *self.categorical]

    def merged_over(self, earlier: ParsedFeatures) -> ParsedFeatures:
        """These values, with ``earlier`` ones filling features this text did not mention."""
        return ParsedFeatures(
            numeric={**earlier.numeric, **self.numeric},
            categorical={**earlier.categorical, **self.categorical},
        )


class FeatureParser:
    """Compiled matchers for one sidecar's features; thread-safe and reused for every request."""

    def __init__(self, features: list[FeatureInfo]) -> None:
        # (pattern, feature name, category value or None), longest phrase first.
        categories: list[tuple[int, re.Pattern[str], str, str]] = []
        names: list[tuple[int, re.Pattern[str], str]] = []
        self._patterns: list[tuple[re.Pattern[str], str]] = []
        for f in features:
            if f.kind == "categorical":
                for value in f.values:
                    for spelling in [value, *f.value_aliases.get(value, [])]:
                        pat = re.compile(phrase_pattern(spelling), re.IGNORECASE)
                        categories.append((len(spelling), pat, f.name, value))
                continue
            for alias in dict.fromkeys([f.name, *f.aliases]):
                pat = re.compile(phrase_pattern(alias) + _CONNECTOR + _NUMBER, re.IGNORECASE)
                names.append((len(alias), pat, f.name))
            for p in f.patterns:
                self._patterns.append((re.compile(p, re.IGNORECASE), f.name))
        self._categories = [(p, n, v) for _, p, n, v in sorted(categories, key=lambda t: -t[0])]
        self._names = [(p, n) for _, p, n in sorted(names, key=lambda t: -t[0])]

    def parse(self, text: str) -> ParsedFeatures:
        """Find feature values in ``text``; the first mention of a numeric feature wins."""
        taken = [False] * len(text)
        out = ParsedFeatures()

        def claim(start: int, end: int) -> bool:
            if any(taken[start:end]):
                return False
            taken[start:end] = [True] * (end - start)
            return True

        found: list[tuple[int, str, str]] = []  # (position, feature, value) of categories
        for pat, feature, value in self._categories:
            for m in pat.finditer(text):
                if claim(m.start(), m.end()):
                    found.append((m.start(), feature, value))
        for _, feature, value in sorted(found):
            values = out.categorical.setdefault(feature, [])
            if value not in values:
                values.append(value)

        for pat, feature in self._names:
            for m in pat.finditer(text):
                if feature not in out.numeric and claim(m.start(), m.end()):
                    out.numeric[feature] = float(m.group(1))
        for pat, feature in self._patterns:
            for m in pat.finditer(text):
                if feature not in out.numeric and claim(m.start(), m.end()):
                    out.numeric[feature] = float(m.group(1))
        return out
