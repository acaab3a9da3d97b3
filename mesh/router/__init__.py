"""The router: maps a request (and its conversation) to experts, or to "out of scope".

``Router`` is the entry point; ``RouteDecision`` and ``ExpertScore`` are what it returns.
Modules: ``index`` (per-expert example vectors and scoring), ``calibration`` (out-of-scope
threshold from the manifests' examples), ``decision`` (pure rules from scores to a decision),
``router`` (the thread-safe front with conversation awareness).
"""

from mesh.router.decision import ExpertScore, RouteDecision
from mesh.router.router import Router

__all__ = ["ExpertScore", "RouteDecision", "Router"]
