"""Tenants of a hub: tokens, the store the CLI and orchestrators share, authentication and
quotas. The orchestrator calls, per request: ``Authenticator.authenticate`` ->
``QuotaLimiter.acquire`` -> route -> ``Authenticator.authorize`` -> per-expert ``acquire`` ->
experts -> ``release``.
"""

from __future__ import annotations

from pathlib import Path

from mesh.tenants.auth import Authenticator
from mesh.tenants.model import OPEN, Limits, Tenant, TenantError, TokenInfo
from mesh.tenants.quota import QUOTA_FILE, Lease, QuotaLimiter
from mesh.tenants.store import STORE_FILE, TenantStore

__all__ = ["OPEN", "Authenticator", "Lease", "Limits", "QuotaLimiter", "Tenant", "TenantError",
           "TenantStore", "TokenInfo", "quota_path", "store_path"]


def store_path(state_dir: Path) -> Path:
    """The hub's tenants file in its state folder (what `mesh tenants` edits)."""
    return Path(state_dir) / STORE_FILE


def quota_path(state_dir: Path) -> Path:
    """The hub's shared quota counters in its state folder."""
    return Path(state_dir) / QUOTA_FILE

