"""Protocol-neutral request and answer types shared by router, experts and orchestrator.

The wire types (``mesh.proto``) stay at the edges: servicers convert to these with
``mesh.wire`` and everything inside the mesh speaks these plain dataclasses (they also
cross Ray's object store to Serve replicas, so they must stay picklable and small).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

KEY_SEPARATOR = "@"


def expert_key(name: str, version: str) -> str:
    """The identity of one deployed version of an expert, ``name@version``: the name of its
    Serve application and the key transports, replica counts and costs use. Two versions of one
    expert are two keys, so they can serve side by side."""
    return f"{name}{KEY_SEPARATOR}{version}"


def expert_name(key: str) -> str:
    """The expert name of a key (a bare name is returned as it is)."""
    return key.split(KEY_SEPARATOR, 1)[0]


def key_version(key: str) -> str:
    """The version part of a key; empty for a bare name."""
    return key.partition(KEY_SEPARATOR)[2]


@dataclass(frozen=True)
class TurnRecord:
    """One finished turn of a conversation."""

    question: str
    answer: str
    experts: tuple[str, ...]
    created_at: float = 0.0


@dataclass
class ExpertInput:
    """What an expert receives: text and/or named tensors, with the conversation so far."""

    text: str = ""
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    history: list[TurnRecord] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)


@dataclass
class ExpertOutput:
    """What an expert answers: words for people, tensors for programs, facts about the answer."""

    text: str = ""
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
