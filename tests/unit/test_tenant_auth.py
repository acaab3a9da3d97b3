"""Credentials to tenants: tokens in metadata, certificate names, open mode, authorization,
and changes made through another connection reaching a warm Authenticator within a second."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh.errors import PermissionDenied, Unauthenticated
from mesh.tenants import OPEN, Authenticator, Limits, Tenant, TenantStore


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TenantStore]:
    s = TenantStore(tmp_path / "tenants.sqlite3")
    s.create(Tenant("acme", experts=("a",), limits=Limits(rps=5), cert_subjects=("acme-cn",)))
    yield s
    s.close()


def _bearer(token: str) -> list[tuple[str, str | bytes]]:
    return [("user-agent", "test"), ("authorization", f"Bearer {token}")]


def test_bearer_and_x_mesh_token_both_map_to_the_tenant(store: TenantStore) -> None:
    token = store.issue_token("acme")
    auth = Authenticator(store, required=True)
    assert auth.authenticate(_bearer(token)).name == "acme"
    assert auth.authenticate([("x-mesh-token", token)]).name == "acme"
    assert auth.authenticate([("x-mesh-token", token.encode())]).limits == Limits(rps=5)
    assert auth.authenticate([("authorization", f"bearer  {token} ")]).name == "acme"


def test_missing_unknown_and_malformed_credentials_are_refused(store: TenantStore) -> None:
    auth = Authenticator(store, required=True)
    with pytest.raises(Unauthenticated, match=r"carries none.*Bearer.*mesh tenants token"):
        auth.authenticate([("user-agent", "x")])
    other = TenantStore(store.path.parent / "other.sqlite3")
    other.create(Tenant("acme"))
    foreign = other.issue_token("acme")
    other.close()
    with pytest.raises(Unauthenticated, match="unknown token") as e:
        auth.authenticate(_bearer(foreign))
    assert foreign.split("_", 2)[2] not in str(e.value)
    with pytest.raises(Unauthenticated, match="malformed"):
        auth.authenticate(_bearer("not-a-token"))
    with pytest.raises(Unauthenticated, match="Bearer"):
        auth.authenticate([("authorization", "Basic dXNlcjpwYXNz")])


def test_a_token_with_the_right_id_but_wrong_secret_is_refused(store: TenantStore) -> None:
    token = store.issue_token("acme")
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    auth = Authenticator(store, required=True)
    with pytest.raises(Unauthenticated, match="unknown token"):
        auth.authenticate(_bearer(forged))


def test_revoked_and_grace_expired_tokens_are_refused(store: TenantStore) -> None:
    first = store.issue_token("acme")
    store.revoke(first.split("_")[1])
    second = store.issue_token("acme")
    third = store.rotate("acme", grace_s=0.3)
    auth = Authenticator(store, required=True)
    with pytest.raises(Unauthenticated, match=r"revoked.*mesh tenants token acme"):
        auth.authenticate(_bearer(first))
    assert auth.authenticate(_bearer(second)).name == "acme"  # inside the grace period
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        try:
            auth.authenticate(_bearer(second))
        except Unauthenticated:
            break
        time.sleep(0.02)
    else:
        pytest.fail("a token past its grace period was still accepted")
    assert auth.authenticate(_bearer(third)).name == "acme"


def test_certificate_common_name_maps_to_its_tenant(store: TenantStore) -> None:
    auth = Authenticator(store, required=True)
    assert auth.authenticate([], cert_common_name="acme-cn").name == "acme"
    with pytest.raises(Unauthenticated, match="--cert-subject stranger"):
        auth.authenticate([], cert_common_name="stranger")


def test_open_mode_lets_anonymous_calls_in_but_checks_given_tokens(store: TenantStore) -> None:
    token = store.issue_token("acme")
    revoked = store.issue_token("acme")
    store.revoke(revoked.split("_")[1])
    auth = Authenticator(store, required=False)
    assert auth.authenticate([]) is OPEN
    assert auth.authenticate([], cert_common_name="stranger") is OPEN
    assert auth.authenticate(_bearer(token)).name == "acme"
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.authenticate(_bearer(revoked))
    assert OPEN.allows("any") and OPEN.limits.unlimited
    no_store = Authenticator(None, required=False)
    assert no_store.authenticate([]) is OPEN
    with pytest.raises(Unauthenticated):
        no_store.authenticate(_bearer(token))
    with pytest.raises(Unauthenticated):
        Authenticator(None, required=True).authenticate([])


def test_authorize_names_the_expert_the_allowed_set_and_the_fix(store: TenantStore) -> None:
    auth = Authenticator(store, required=True)
    tenant = store.get("acme")
    auth.authorize(tenant, ["a"])
    with pytest.raises(PermissionDenied, match=r"'acme' may not use expert 'b'.*: a\b.*"
                                               r"mesh tenants set acme --experts"):
        auth.authorize(tenant, ["a", "b"])
    auth.authorize(OPEN, ["a", "b"])


def test_changes_from_another_connection_reach_a_warm_authenticator_within_a_second(
        store: TenantStore) -> None:
    token = store.issue_token("acme")
    auth = Authenticator(store, required=True, refresh_s=0.2)
    assert auth.authenticate(_bearer(token)).name == "acme"  # warm
    admin = TenantStore(store.path)  # what the CLI does, from its own connection
    try:
        admin.revoke(token.split("_")[1])
        revoked_at = time.monotonic()
        new = admin.issue_token("acme")
        admin.update(Tenant("acme", experts=("a", "b")))
    finally:
        admin.close()
    elapsed = _seconds_until_refused(auth, token, revoked_at)
    assert elapsed < 1.0, f"revoked token still accepted after {elapsed:.2f} s"
    tenant = auth.authenticate(_bearer(new))
    assert tenant.experts == ("a", "b")


def _seconds_until_refused(auth: Authenticator, token: str, since: float) -> float:
    for _ in range(300):  # bounded: 300 x 10 ms
        try:
            auth.authenticate(_bearer(token))
        except Unauthenticated:
            return time.monotonic() - since
        time.sleep(0.01)
    return float("inf")


def test_the_hot_path_does_not_touch_sqlite_between_refreshes(store: TenantStore) -> None:
    token = store.issue_token("acme")
    auth = Authenticator(store, required=True, refresh_s=60)
    store.close()  # any read of the file now would raise
    for _ in range(1000):
        assert auth.authenticate(_bearer(token)).name == "acme"


def test_a_store_that_cannot_be_read_keeps_the_last_snapshot(
        store: TenantStore, caplog: pytest.LogCaptureFixture) -> None:
    token = store.issue_token("acme")
    auth = Authenticator(store, required=True, refresh_s=0.0)
    store.close()
    assert auth.authenticate(_bearer(token)).name == "acme"
    assert "cannot reload tenants" in caplog.text
    assert token not in caplog.text
