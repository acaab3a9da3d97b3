"""API tokens: how they look, how they are parsed, and how they are hashed for storage.

A token is ``mesh_<id>_<secret>``: ``<id>`` is 12 hex characters that name the token in
listings and revocations (it is not secret), ``<secret>`` is 32 random bytes, url-safe base64.
Only ``hash_token(token)`` is ever stored, so a copy of the hub's state folder does not let
anyone call the hub.
"""

from __future__ import annotations

import hashlib
import re
import secrets

from mesh.errors import Unauthenticated

PREFIX = "mesh"
_ID_BYTES = 6
_SECRET_BYTES = 32
_ID = re.compile(r"[0-9a-f]{12}")
# token_urlsafe(32) gives 43 characters; accept longer ones so the secret size can grow later.
_SECRET = re.compile(r"[A-Za-z0-9_-]{43,128}")


def new_token() -> tuple[str, str]:
    """A fresh token and its id: ``(token_id, token)``. The secret comes from ``secrets``."""
    tid = secrets.token_hex(_ID_BYTES)
    return tid, f"{PREFIX}_{tid}_{secrets.token_urlsafe(_SECRET_BYTES)}"


def token_id(token: str) -> str:
    """The id part of a token; raises Unauthenticated (without echoing the token) when it does
    not have the shape of a mesh token, so garbage never reaches the lookup."""
    parts = token.strip().split("_", 2)
    if (len(parts) != 3 or parts[0] != PREFIX or not _ID.fullmatch(parts[1])
            or not _SECRET.fullmatch(parts[2])):
        raise Unauthenticated(
            "malformed token: a mesh token looks like mesh_<12 hex>_<secret>; issue one with "
            "`mesh tenants token TENANT`")
    return parts[1]


def hash_token(token: str) -> str:
    """SHA-256 hex digest of the whole token.

    A fast hash is the right choice here, unlike for passwords: the secret has 256 bits of
    entropy, so nobody can brute-force it from the hash however fast the hash is, and a slow
    KDF (bcrypt, scrypt) would cost milliseconds on every authenticated call for nothing.
    """
    return hashlib.sha256(token.strip().encode()).hexdigest()
