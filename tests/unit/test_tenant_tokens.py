"""Token format, parsing and hashing; the store keeps hashes only."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mesh.errors import Unauthenticated
from mesh.tenants import Tenant, TenantStore
from mesh.tenants.tokens import hash_token, new_token, token_id


def test_new_token_has_the_documented_shape_and_is_unique() -> None:
    tid, token = new_token()
    assert re.fullmatch(r"mesh_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)
    assert token_id(token) == tid
    assert len({new_token()[1] for _ in range(100)}) == 100


def test_hash_is_stable_sha256_hex_and_differs_per_token() -> None:
    _, a = new_token()
    _, b = new_token()
    assert hash_token(a) == hash_token(a)
    assert re.fullmatch(r"[0-9a-f]{64}", hash_token(a))
    assert hash_token(a) != hash_token(b)


@pytest.mark.parametrize("bad", [
    "", "mesh", "mesh_", "mesh_abc_def", "token_0123456789ab_" + "x" * 43,
    "mesh_0123456789AB_" + "x" * 43, "mesh_0123456789ab_" + "x" * 42,
    "mesh_0123456789ab_" + "x" * 40 + "!!!", "Bearer mesh_0123456789ab_" + "x" * 43,
])
def test_malformed_tokens_are_unauthenticated_and_not_echoed(bad: str) -> None:
    with pytest.raises(Unauthenticated) as e:
        token_id(bad)
    assert "mesh tenants token" in str(e.value)
    if len(bad) > 10:
        assert bad not in str(e.value)


def test_secret_contains_underscores_still_parses() -> None:
    token = "mesh_0123456789ab_" + "a_b-" * 11
    assert token_id(token) == "0123456789ab"


def test_the_store_file_never_contains_the_token_or_its_secret(tmp_path: Path) -> None:
    store = TenantStore(tmp_path / "tenants.sqlite3")
    store.create(Tenant("acme"))
    tokens = [store.issue_token("acme"), store.rotate("acme", grace_s=5)]
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for token in tokens:
        secret = token.split("_", 2)[2]
        assert secret.encode() not in raw and token.encode() not in raw
        assert hash_token(token).encode() in raw
