"""What a tenant is: its name, the experts it may use, its limits and its certificate names.

Plain frozen values, so a snapshot can be shared between threads without copying, and
validated on construction, so a bad limit is refused where it is typed (CLI) rather than
discovered on the hot path.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import grpc

from mesh.errors import MeshError

_NAME = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
OPEN_NAME = "open"


class TenantError(MeshError, ValueError):
    """A tenant or token operation that cannot be done as asked (duplicate or unknown name,
    bad limit); the message names the field and the fix. A ValueError too, for callers that
    validate input generically."""

    code = grpc.StatusCode.INVALID_ARGUMENT


@dataclass(frozen=True)
class Limits:
    """One set of limits; ``None`` means unlimited.

    ``burst`` is the token bucket's size: how many requests may arrive at once after a quiet
    spell. Left unset with ``rps`` set it is ``max(1, ceil(rps))``: one second's worth.
    """

    rps: float | None = None
    burst: int | None = None
    concurrent: int | None = None

    def __post_init__(self) -> None:
        if self.rps is not None and not (math.isfinite(self.rps) and self.rps > 0):
            raise TenantError(f"rps: {self.rps} must be a number above 0 (requests per second)")
        if self.burst is not None:
            if self.rps is None:
                raise TenantError("burst: needs rps too (burst is the size of the rps bucket)")
            if self.burst < 1:
                raise TenantError(f"burst: {self.burst} must be 1 or more")
        if self.concurrent is not None and self.concurrent < 1:
            raise TenantError(f"concurrent: {self.concurrent} must be 1 or more")

    @property
    def unlimited(self) -> bool:
        """True when nothing is limited (acquiring then needs no shared state at all)."""
        return self.rps is None and self.concurrent is None

    @property
    def bucket(self) -> int:
        """The effective bucket size (``burst``, or one second of ``rps``)."""
        if self.burst is not None:
            return self.burst
        return max(1, math.ceil(self.rps or 0))

    def describe(self) -> str:
        """Short human form, e.g. ``rps=5 burst=10 concurrent=2`` or ``unlimited``."""
        parts = []
        if self.rps is not None:
            parts.append(f"rps={self.rps:g}")
            parts.append(f"burst={self.bucket}")
        if self.concurrent is not None:
            parts.append(f"concurrent={self.concurrent}")
        return " ".join(parts) or "unlimited"

    def to_json(self) -> dict[str, Any]:
        return {"rps": self.rps, "burst": self.burst, "concurrent": self.concurrent}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Limits:
        return Limits(rps=data.get("rps"), burst=data.get("burst"),
                      concurrent=data.get("concurrent"))


def _frozen(mapping: Mapping[str, Limits]) -> Mapping[str, Limits]:
    return MappingProxyType(dict(sorted(mapping.items())))


@dataclass(frozen=True)
class Tenant:
    """A client of the hub. ``experts`` empty means every expert; ``expert_limits`` adds limits
    for calls to one expert on top of ``limits`` (which count every request)."""

    name: str
    experts: tuple[str, ...] = ()
    limits: Limits = Limits()
    expert_limits: Mapping[str, Limits] = field(
        default_factory=lambda: _frozen({}), hash=False)
    cert_subjects: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise TenantError(
                f"name: '{self.name}' is not a tenant name; use lowercase letters, digits, "
                "'.', '_' or '-' (at most 63, starting and ending with a letter or digit)")
        # Accept lists and dicts from callers, keep immutable values inside.
        object.__setattr__(self, "experts", tuple(dict.fromkeys(self.experts)))
        object.__setattr__(self, "cert_subjects", tuple(dict.fromkeys(self.cert_subjects)))
        object.__setattr__(self, "expert_limits", _frozen(self.expert_limits))
        if any(not e for e in self.experts):
            raise TenantError("experts: an empty expert name; give names like a,b")
        if any(not s for s in self.cert_subjects):
            raise TenantError("cert_subjects: an empty certificate common name")

    def allows(self, expert: str) -> bool:
        """Whether this tenant may call ``expert``."""
        return not self.experts or expert in self.experts

    def to_json(self) -> dict[str, Any]:
        return {
            "experts": list(self.experts),
            "limits": self.limits.to_json(),
            "expert_limits": {k: v.to_json() for k, v in self.expert_limits.items()},
            "cert_subjects": list(self.cert_subjects),
        }

    @staticmethod
    def from_json(name: str, data: Mapping[str, Any]) -> Tenant:
        return Tenant(
            name=name,
            experts=tuple(data.get("experts", ())),
            limits=Limits.from_json(data.get("limits", {})),
            expert_limits={k: Limits.from_json(v)
                           for k, v in data.get("expert_limits", {}).items()},
            cert_subjects=tuple(data.get("cert_subjects", ())),
        )


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: never its hash or secret. ``revoked_at`` may lie in the
    future (a rotation's grace period)."""

    id: str
    tenant: str
    created_at: float
    revoked_at: float | None

    def active(self, now: float) -> bool:
        return self.revoked_at is None or self.revoked_at > now


OPEN = Tenant(name=OPEN_NAME)
"""The built-in tenant of a hub that runs open: every expert, no limits."""
