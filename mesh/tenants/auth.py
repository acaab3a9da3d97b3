"""Who is calling: maps a call's credential (token in metadata, or client certificate name) to
a tenant, and checks which experts that tenant may use.

The hot path reads only memory: a snapshot of the store (token id -> hash and tenant, tenant
name -> Tenant, certificate name -> tenant). At most every ``refresh_s`` one caller reads the
store's generation number and reloads the snapshot when it changed, so a revocation made by
`mesh tenants revoke` in another process is enforced within ``refresh_s`` plus one reload.
"""

from __future__ import annotations

import hmac
import logging
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from mesh.errors import PermissionDenied, Unauthenticated
from mesh.tenants.model import OPEN, Tenant, TenantError
from mesh.tenants.store import Snapshot, TenantStore
from mesh.tenants.tokens import hash_token, token_id

log = logging.getLogger(__name__)

_BEARER = "bearer "
_HOW = ("pass it as metadata `authorization: Bearer <token>` (or `x-mesh-token: <token>`); "
        "an operator issues one with `mesh tenants token TENANT`")


@dataclass(frozen=True)
class _View:
    """The in-memory form of a snapshot, indexed for the lookups a call needs."""

    generation: int = -1
    snapshot: Snapshot | None = None
    by_cert: dict[str, Tenant] = field(default_factory=dict)


def _index(snapshot: Snapshot) -> _View:
    by_cert = {cn: t for t in snapshot.tenants.values() for cn in t.cert_subjects}
    return _View(snapshot.generation, snapshot, by_cert)


def bearer_token(metadata: Sequence[tuple[str, str | bytes]]) -> str | None:
    """The token a call carries, or None. ``authorization: Bearer`` wins over
    ``x-mesh-token``; an authorization value of another scheme is an error, not ignored."""
    fallback = None
    for key, value in metadata:
        name = key.lower()
        if name not in ("authorization", "x-mesh-token"):
            continue
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        if name == "authorization":
            if not text.lower().startswith(_BEARER):
                raise Unauthenticated(
                    "authorization metadata must be 'Bearer <token>'; " + _HOW)
            return text[len(_BEARER):].strip()
        if fallback is None:
            fallback = text.strip()
    return fallback


class Authenticator:
    """Credentials to tenants, for one orchestrator process (thread-safe).

    Args:
        store: the hub's tenant store; None when the hub has no tenants at all.
        required: False lets calls without a credential in as the built-in tenant ``open``
            (every expert, no limits); a credential that is given must still be valid.
        refresh_s: how stale the in-memory snapshot may get before the store is checked.
    """

    def __init__(self, store: TenantStore | None, required: bool,
                 refresh_s: float = 0.2) -> None:
        self.store = store
        self.required = required
        self.refresh_s = refresh_s
        self._refreshing = threading.Lock()
        self._view = _View()
        self._checked_at = float("-inf")
        self._refresh(force=True)

    def authenticate(self, metadata: Sequence[tuple[str, str | bytes]],
                     cert_common_name: str | None = None) -> Tenant:
        """The tenant behind a call: by token if one is given, else by the common name of the
        verified client certificate. Raises Unauthenticated saying what is missing or wrong
        (never echoing the token)."""
        self._refresh()
        token = bearer_token(metadata)
        if token is not None:
            return self._by_token(token)
        if cert_common_name:
            tenant = self._view.by_cert.get(cert_common_name)
            if tenant is not None:
                return tenant
            if self.required:
                raise Unauthenticated(
                    f"client certificate '{cert_common_name}' is not mapped to a tenant; map "
                    f"it with `mesh tenants set TENANT --cert-subject {cert_common_name}`, or "
                    "send a token: " + _HOW)
        if not self.required:
            return OPEN
        raise Unauthenticated("this hub needs a credential and the call carries none; " + _HOW)

    def authorize(self, tenant: Tenant, experts: Sequence[str]) -> None:
        """PermissionDenied unless ``tenant`` may call every one of ``experts``."""
        for expert in experts:
            if not tenant.allows(expert):
                allowed = ", ".join(tenant.experts)
                raise PermissionDenied(
                    f"tenant '{tenant.name}' may not use expert '{expert}'; it may use: "
                    f"{allowed}. An operator of the hub can change that with "
                    f"`mesh tenants set {tenant.name} --experts ...`")

    def _by_token(self, token: str) -> Tenant:
        tid = token_id(token)
        known = self._view.snapshot
        if known is None or tid not in known.tokens:
            # A token issued since the last check works at once: one read of the generation
            # (a reload only when it moved). A made-up token costs that one-row read too,
            # which is small next to the call that carried it.
            self._refresh(ignore_age=True)
        snapshot = self._view.snapshot
        record = snapshot.tokens.get(tid) if snapshot else None
        # Looked up by the (public) id, then the hash compared in constant time: the lookup
        # time cannot tell an attacker how much of a guessed secret was right.
        if record is None or not hmac.compare_digest(record.hash, hash_token(token)):
            raise Unauthenticated(f"unknown token (id {tid}); " + _HOW)
        if record.revoked_at is not None and record.revoked_at <= time.time():
            raise Unauthenticated(
                f"token {tid} was revoked; ask an operator for a new one "
                f"(`mesh tenants token {record.tenant}`)")
        tenant = snapshot.tenants.get(record.tenant) if snapshot else None
        if tenant is None:
            raise Unauthenticated(f"token {tid} belongs to tenant '{record.tenant}', which no "
                                  "longer exists")
        return tenant

    def _refresh(self, force: bool = False, ignore_age: bool = False) -> None:
        """Reload when the store's generation moved; one thread checks, the others go on with
        the current snapshot rather than queue behind SQLite."""
        if self.store is None:
            return
        now = time.monotonic()
        if not (force or ignore_age) and now - self._checked_at < self.refresh_s:
            return
        if not self._refreshing.acquire(blocking=force):
            return
        try:
            if self.store.generation() != self._view.generation:
                self._view = _index(self.store.snapshot())
                log.debug("tenants reloaded (generation %d)", self._view.generation)
        except (sqlite3.Error, TenantError) as e:
            if force:
                raise
            # Keep serving the last good snapshot rather than failing every call; the next
            # check retries.
            log.warning("cannot reload tenants from %s (%s); keeping generation %d",
                        self.store.path, e, self._view.generation)
        finally:
            self._checked_at = time.monotonic()
            self._refreshing.release()
