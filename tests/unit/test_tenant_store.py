"""The tenants file: tenants, tokens, rotation, revocation and the generation number."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.tenants import Limits, Tenant, TenantError, TenantStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TenantStore]:
    s = TenantStore(tmp_path / "tenants.sqlite3")
    yield s
    s.close()


def test_tenant_round_trips_with_every_field(store: TenantStore) -> None:
    tenant = Tenant("acme", experts=("a", "b"), limits=Limits(rps=2.5, burst=4, concurrent=3),
                    expert_limits={"a": Limits(concurrent=1)}, cert_subjects=("acme-client",))
    store.create(tenant)
    assert store.get("acme") == tenant
    assert store.tenants() == [tenant]
    assert tenant.allows("a") and not tenant.allows("c")
    assert Tenant("x").allows("anything")


def test_duplicate_unknown_and_reserved_names_are_clear_errors(store: TenantStore) -> None:
    store.create(Tenant("acme"))
    with pytest.raises(TenantError, match=r"exists.*mesh tenants set acme"):
        store.create(Tenant("acme"))
    with pytest.raises(TenantError, match="mesh tenants list"):
        store.get("nobody")
    with pytest.raises(TenantError, match="built-in"):
        store.create(Tenant("open"))
    with pytest.raises(TenantError, match="name"):
        Tenant("Bad Name")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"rps": 0}, "rps"), ({"rps": float("inf")}, "rps"), ({"rps": 1, "burst": 0}, "burst"),
    ({"burst": 3}, "burst"), ({"concurrent": 0}, "concurrent"),
])
def test_bad_limits_name_the_field(kwargs: dict[str, float], field: str) -> None:
    with pytest.raises(TenantError, match=field):
        Limits(**kwargs)  # type: ignore[arg-type]


def test_burst_defaults_to_one_second_of_rps() -> None:
    assert Limits(rps=2.5).bucket == 3
    assert Limits(rps=0.2).bucket == 1
    assert Limits(rps=5, burst=20).bucket == 20
    assert Limits().unlimited and not Limits(concurrent=1).unlimited


def test_a_certificate_name_maps_to_one_tenant_only(store: TenantStore) -> None:
    store.create(Tenant("a", cert_subjects=("cn-1",)))
    with pytest.raises(TenantError, match=r"cn-1.*tenant 'a'"):
        store.create(Tenant("b", cert_subjects=("cn-1",)))
    store.update(Tenant("a", cert_subjects=("cn-1", "cn-2")))


def test_tokens_are_listed_without_secrets_and_revoked(store: TenantStore) -> None:
    store.create(Tenant("acme"))
    token = store.issue_token("acme")
    [info] = store.tokens("acme")
    assert info.tenant == "acme" and info.revoked_at is None
    assert token.split("_")[1] == info.id and token not in repr(info)
    store.revoke(info.id)
    [info] = store.tokens()
    assert info.revoked_at is not None and not info.active(time.time())
    with pytest.raises(TenantError, match="mesh tenants tokens"):
        store.revoke("000000000000")


def test_rotate_revokes_old_tokens_now_or_after_a_grace(store: TenantStore) -> None:
    store.create(Tenant("acme"))
    store.issue_token("acme")
    store.rotate("acme", grace_s=60)
    old, new = store.tokens("acme")
    now = time.time()
    assert old.active(now) and old.revoked_at is not None and old.revoked_at > now + 50
    assert new.active(now)
    store.rotate("acme")
    assert [t.active(time.time() + 0.001) for t in store.tokens("acme")] == [False, False, True]


def test_delete_revokes_the_tenants_tokens(store: TenantStore) -> None:
    store.create(Tenant("acme"))
    store.issue_token("acme")
    store.delete("acme")
    assert store.tenants() == []
    assert all(not t.active(time.time() + 0.001) for t in store.tokens())
    with pytest.raises(TenantError):
        store.issue_token("acme")


def test_generation_moves_on_every_write_from_any_connection(tmp_path: Path) -> None:
    a = TenantStore(tmp_path / "t.sqlite3")
    b = TenantStore(tmp_path / "t.sqlite3")
    try:
        seen = [a.generation()]
        b.create(Tenant("x"))
        seen.append(a.generation())
        b.issue_token("x")
        seen.append(a.generation())
        b.tenants()  # reads do not move it
        TenantStore(tmp_path / "t.sqlite3").close()  # nor does opening the file
        seen.append(a.generation())
        assert seen[0] < seen[1] < seen[2] == seen[3]
        assert a.snapshot().generation == seen[3]
    finally:
        a.close()
        b.close()
