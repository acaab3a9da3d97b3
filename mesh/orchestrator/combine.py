"""Combining several experts' answers into one, with each part attributed to its expert."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mesh.types import ExpertOutput


@dataclass
class Part:
    """One expert's contribution to an answer."""

    expert: str
    organization: str
    output: ExpertOutput
    score: float
    latency_ms: float
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    version: str = ""
    """Version of the expert that answered (empty for a partner expert's single version)."""


def combine(parts: Sequence[Part]) -> str:
    """One answer: a single expert's text as it is; several, each under its expert's name."""
    if not parts:
        return ""
    if len(parts) == 1:
        return parts[0].output.text
    sections = [f"[{p.expert} · {p.organization}]\n{p.output.text.strip()}" for p in parts]
    return "\n\n".join(sections)


NO_EXPERT = (
    "No expert in this mesh covers that request. Ask `mesh experts` which domains are served, "
    "or name one with --expert."
)
