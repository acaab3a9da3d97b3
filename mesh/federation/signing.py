"""Signed manifests: what an organization signs, and how the hub checks it.

Canonical form (decided here, documented in docs/architecture.md): the payload is the UTF-8
JSON of the *validated* manifest (``model_dump(mode="json")``: defaults filled in, keys sorted,
no whitespace, non-ASCII kept). The ed25519 signature covers ``DOMAIN + payload``; the domain
prefix means a signature the organization made for anything else can never pass as a manifest.

The hub verifies the signature over the exact bytes it received *before* it trusts anything in
them except the organization's name (needed to find the key), then refuses payloads that are not
in canonical form, so one manifest has exactly one signed encoding: any change after signing,
even re-ordering keys or adding a space, is a different payload and fails.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from mesh.config import ExpertManifest
from mesh.errors import InvalidInput
from mesh.federation.errors import Unauthenticated
from mesh.federation.trust import TrustList

DOMAIN = b"mesh.v1.manifest\x00"
"""Prefix of every signed message: binds the signature to its purpose."""


def canonical_payload(data: dict[str, Any]) -> bytes:
    """The one byte encoding of a manifest mapping that gets signed."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_payload(manifest: ExpertManifest) -> bytes:
    """The canonical payload of a validated manifest."""
    return canonical_payload(manifest.model_dump(mode="json"))


@dataclass(frozen=True)
class SignedManifest:
    """A manifest as the hub receives it: payload bytes and their signature."""

    payload: bytes
    signature: bytes


def sign_manifest(manifest: ExpertManifest, key: Ed25519PrivateKey) -> SignedManifest:
    """Sign a validated manifest with the organization's key."""
    payload = manifest_payload(manifest)
    return SignedManifest(payload, key.sign(DOMAIN + payload))


def _parse(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InvalidInput("signed_manifest", f"is not UTF-8 JSON ({e})") from None
    if not isinstance(data, dict):
        raise InvalidInput("signed_manifest", "must be a JSON object (a manifest)")
    return data


def verify_manifest(signed: SignedManifest, trust: TrustList) -> ExpertManifest:
    """The manifest, if its organization is trusted and the signature is its key's.

    Raises Unauthenticated (no signature, or one that does not verify: changed after signing,
    or signed by another key), PermissionDenied (organization not trusted or revoked),
    InvalidInput (not a manifest, or not in canonical form).
    """
    if not signed.signature:
        raise Unauthenticated("the manifest is unsigned; sign it with `mesh publish` "
                              "(the organization's key from `mesh keys init`)")
    data = _parse(signed.payload)
    organization = data.get("organization")
    if not isinstance(organization, str) or not organization:
        raise InvalidInput("signed_manifest.organization", "is missing; name the organization")
    key = trust.key_for(organization)  # PermissionDenied when untrusted or revoked
    try:
        key.verify(signed.signature, DOMAIN + signed.payload)
    except InvalidSignature:
        raise Unauthenticated(
            f"the manifest's signature is not {organization}'s: it was changed after signing, "
            "or signed with another organization's key"
        ) from None
    if canonical_payload(data) != signed.payload:
        raise InvalidInput("signed_manifest", "is not in canonical form; sign it with "
                           "`mesh publish`, which writes the canonical JSON")
    try:
        return ExpertManifest(**data)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InvalidInput(f"signed_manifest.{field}", first["msg"]) from None
