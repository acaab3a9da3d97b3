"""An organization's signing identity: one ed25519 key pair, kept as PEM files.

The private key never leaves the organization's machine; the hub's trust list holds only the
public key, written as one base64 line so it can be pasted into a YAML file or an email.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mesh.errors import ConfigError

SIGNING_KEY_FILE = "org.key"
PUBLIC_KEY_FILE = "org.pub"


def write_private(path: Path, pem: bytes) -> None:
    """Write secret PEM bytes readable by the owner only; refuses to overwrite (a lost key
    would orphan everything signed with it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


def generate_signing_key(folder: Path) -> tuple[Path, Path]:
    """Create ``org.key`` (private, 0600) and ``org.pub`` in ``folder``; returns both paths."""
    key = Ed25519PrivateKey.generate()
    private = folder / SIGNING_KEY_FILE
    public = folder / PUBLIC_KEY_FILE
    if private.exists():
        raise ConfigError(str(private), [("(file)", "already exists", "keep it, or move it away")])
    write_private(private, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ))
    public.write_text(public_key_text(key.public_key()) + "\n")
    return private, public


def load_signing_key(path: str | Path) -> Ed25519PrivateKey:
    """Read an organization's private key (PEM, from `mesh keys init`)."""
    path = Path(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except FileNotFoundError:
        raise ConfigError(str(path), [("(file)", "does not exist",
                                       "create it with `mesh keys init`")]) from None
    except ValueError as e:
        raise ConfigError(str(path), [("(file)", f"is not a PEM private key: {e}",
                                       "pass the org.key `mesh keys init` wrote")]) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(str(path), [("(file)", "is not an ed25519 key",
                                       "create one with `mesh keys init`")])
    return key


def public_key_text(key: Ed25519PublicKey) -> str:
    """The public key as one base64 line (its 32 raw bytes)."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def public_key_from_text(text: str) -> Ed25519PublicKey:
    """Parse ``public_key_text``'s form; ValueError when it is not 32 base64 bytes."""
    raw = base64.b64decode(text.strip(), validate=True)
    if len(raw) != 32:
        raise ValueError(f"an ed25519 public key is 32 bytes, this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key (first 16 hex digits of its SHA-256), for logs
    and for operators comparing keys over the phone."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]
