"""The hub's trust list: which organizations may publish, and with which public key.

A YAML file the hub operator owns (``mesh trust add`` / ``mesh trust revoke`` edit it), one
entry per organization. A revoked organization stays in the file, marked, so its name cannot be
re-added by accident with a different key without the operator noticing. The hub re-reads the
file when it changes (``TrustFile``), and a revocation takes that organization's experts out of
routing at once.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mesh.errors import ConfigError
from mesh.federation.errors import PermissionDenied
from mesh.federation.keys import public_key_from_text

ORG_NAME = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"


class TrustedOrganization(BaseModel):
    """One organization the hub accepts manifests from."""

    model_config = ConfigDict(extra="forbid")

    public_key: str
    """Its ed25519 public key, base64 (the line in org.pub from `mesh keys init`)."""
    revoked: bool = False
    """True once revoked: its manifests are refused and its experts leave routing."""

    @field_validator("public_key")
    @classmethod
    def _is_key(cls, v: str) -> str:
        public_key_from_text(v)
        return v.strip()


class TrustList(BaseModel):
    """Organizations by name."""

    model_config = ConfigDict(extra="forbid")

    organizations: dict[str, TrustedOrganization] = Field(default_factory=dict)
    """Trusted (and revoked) organizations."""

    def key_for(self, organization: str) -> Ed25519PublicKey:
        """The organization's public key; PermissionDenied when it is unknown or revoked."""
        entry = self.organizations.get(organization)
        if entry is None:
            raise PermissionDenied(
                f"organization '{organization}' is not on the hub's trust list; the hub "
                "operator adds it with `mesh trust add`"
            )
        if entry.revoked:
            raise PermissionDenied(f"organization '{organization}' has been revoked by the hub")
        return public_key_from_text(entry.public_key)

    def trusted(self, organization: str) -> bool:
        """True when the organization is listed and not revoked."""
        entry = self.organizations.get(organization)
        return entry is not None and not entry.revoked

    def with_organization(self, organization: str, public_key: str) -> TrustList:
        """A copy that trusts ``organization`` with ``public_key`` (re-trusting a revoked one)."""
        orgs = dict(self.organizations)
        orgs[organization] = TrustedOrganization(public_key=public_key)
        return TrustList(organizations=orgs)

    def with_revoked(self, organization: str) -> TrustList:
        """A copy with ``organization`` revoked; ConfigError when it is not listed."""
        entry = self.organizations.get(organization)
        if entry is None:
            raise ConfigError("trust list", [(organization, "is not listed", "check the name")])
        orgs = dict(self.organizations)
        orgs[organization] = entry.model_copy(update={"revoked": True})
        return TrustList(organizations=orgs)


def load_trust(path: Path) -> TrustList:
    """Read a trust list; a missing file is an empty list (nobody is trusted)."""
    if not path.is_file():
        return TrustList()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return TrustList(**data)
    except (yaml.YAMLError, TypeError, ValidationError, ValueError) as e:
        raise ConfigError(str(path), [("(file)", f"is not a trust list: {e}",
                                       "edit it with `mesh trust add` / `mesh trust revoke`")]
                          ) from None


def save_trust(path: Path, trust: TrustList) -> None:
    """Write atomically (temp file + rename), so the hub never reads half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(trust.model_dump(mode="json"), sort_keys=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".trust-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


class TrustFile:
    """A trust list file the hub re-reads when it changes (checked by ``refresh``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self.current = TrustList()
        self.refresh()

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_ino)

    def refresh(self) -> bool:
        """Re-read the file if it changed; True when the list changed. A broken file keeps the
        last good list (the error is raised, so the caller can log it)."""
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return False
        loaded = load_trust(self.path)
        self._stamp = stamp
        changed = loaded != self.current
        self.current = loaded
        return changed
