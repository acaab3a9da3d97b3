"""Small helpers that turn numbers and passages into readable answer text.

Answers go to people first (programs read the tensors and metadata), so numbers are rounded to
what the model can support and long passages are cut at a sentence, not mid-word.
"""

from __future__ import annotations

from collections.abc import Sequence


def fmt_number(value: float, decimals: int = 2) -> str:
    """``31.0``, ``0.94``, ``2019``: fixed decimals, trailing ``.0`` kept only when decimals ask."""
    if decimals == 0:
        return f"{value:.0f}"
    return f"{value:.{decimals}f}"


def fmt_value(value: float) -> str:
    """A user-given or median value without spurious digits: 14.2, 0.0862, 1931.5, 2019."""
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"


def join_words(items: Sequence[str], last: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return f"{', '.join(items[:-1])} {last} {items[-1]}"


def trim_text(text: str, limit: int = 600) -> str:
    """Cut ``text`` to about ``limit`` characters at a paragraph or sentence end.

    Falls back to the last space when no sentence ends in the second half of the window, and
    marks any cut with an ellipsis so a reader knows more exists.
    """
    text = text.strip()
    if len(text) <= limit:
        return text
    window = text[:limit]
    floor = limit // 2
    for sep in ("\n\n", ". ", ".\n", "? ", "! ", "; "):
        at = window.rfind(sep)
        if at >= floor:
            return window[: at + 1].rstrip() + " …"
    at = window.rfind(" ")
    return (window[:at] if at >= floor else window).rstrip() + " …"
