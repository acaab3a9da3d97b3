"""`mesh tenants ...` through mesh.cli.main against a state folder in tmp_path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mesh.cli import main
from mesh.tenants import Limits, TenantStore


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MESH_STATE_DIR", str(tmp_path))
    return tmp_path


def _token(out: str) -> str:
    match = re.search(r"token: (mesh_\S+)", out)
    assert match, out
    return match.group(1)


def test_create_list_token_rotate_revoke_delete(state: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tenants", "create", "acme", "--experts", "a,b", "--rps", "5", "--burst",
                 "10", "--concurrent", "4", "--expert-limit", "a:rps=1,concurrent=2",
                 "--cert-subject", "acme-cn"]) == 0
    out = capsys.readouterr().out
    first = _token(out)
    assert "shown once" in out and "authorization: Bearer" in out and "--token" in out
    store = TenantStore(state / "tenants.sqlite3")
    tenant = store.get("acme")
    assert tenant.experts == ("a", "b") and tenant.cert_subjects == ("acme-cn",)
    assert tenant.limits == Limits(rps=5, burst=10, concurrent=4)
    assert tenant.expert_limits["a"] == Limits(rps=1, concurrent=2)

    assert main(["tenants", "token", "acme"]) == 0
    second = _token(capsys.readouterr().out)
    assert main(["tenants", "list"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"acme\s+a,b\s+rps=5 burst=10 concurrent=4\s+a: .*\s2$", listing, re.M)

    assert main(["tenants", "rotate", "acme", "--grace", "30"]) == 0
    third = _token(capsys.readouterr().out)
    assert main(["tenants", "revoke", first.split("_")[1]]) == 0
    assert main(["tenants", "tokens", "acme"]) == 0
    tokens = capsys.readouterr().out
    assert "(grace)" in tokens and third.split("_")[1] in tokens
    for secret in (first, second, third):
        assert secret.split("_", 2)[2] not in tokens

    assert main(["tenants", "set", "acme", "--rps", "none", "--experts", "*"]) == 0
    tenant = store.get("acme")
    assert tenant.experts == () and tenant.limits == Limits(concurrent=4)
    assert tenant.expert_limits["a"] == Limits(rps=1, concurrent=2)  # untouched
    assert main(["tenants", "delete", "acme", "--yes"]) == 0
    assert store.tenants() == []
    store.close()


@pytest.mark.parametrize(("argv", "field"), [
    (["create", "x", "--rps", "fast"], "--rps"),
    (["create", "x", "--concurrent", "1.5"], "--concurrent"),
    (["create", "x", "--burst", "3"], "burst"),
    (["create", "x", "--expert-limit", "a"], "--expert-limit"),
    (["create", "x", "--expert-limit", "a:speed=3"], "--expert-limit"),
    (["create", "Bad Name"], "name"),
    (["set", "nobody", "--rps", "1"], "mesh tenants list"),
    (["rotate", "x", "--grace", "-1"], "--grace"),
    (["revoke", "000000000000"], "mesh tenants tokens"),
    (["delete", "x"], "--yes"),
])
def test_bad_input_is_one_line_naming_the_field_and_exit_2(
        argv: list[str], field: str, capsys: pytest.CaptureFixture[str]) -> None:
    main(["tenants", "create", "x"])
    capsys.readouterr()
    assert main(["tenants", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and field in err, err


def test_creating_a_duplicate_is_exit_2_and_list_says_how_to_start(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["tenants", "list"]) == 0
    assert "mesh tenants create" in capsys.readouterr().out
    assert main(["tenants", "create", "acme"]) == 0
    assert main(["tenants", "create", "acme"]) == 2
    assert "mesh tenants set acme" in capsys.readouterr().err
