"""The federation commands' flags, including the command lines the Helm chart writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from mesh.cli import build_parser, main


def test_parser_takes_the_helm_charts_node_command_line() -> None:
    args = build_parser().parse_args([
        "node", "--config", "/etc/mesh/mesh.yaml", "--tls-cert", "/tls/tls.crt",
        "--tls-key", "/tls/tls.key", "--tls-ca", "/tls/ca.crt", "--health-port", "50059",
        "--hub", "hub.mesh.example.org:50052", "--organization", "prairie-agri-institute",
        "--advertise", "mesh.prairie-agri.example.org:50052", "--signing-key", "/keys/org.key",
    ])
    assert (args.hub, args.organization, args.health_port) == (
        "hub.mesh.example.org:50052", "prairie-agri-institute", 50059)


def test_parser_takes_the_helm_charts_hub_command_line() -> None:
    args = build_parser().parse_args([
        "orchestrator", "--config", "/etc/mesh/mesh.yaml", "--tls-cert", "/tls/tls.crt",
        "--tls-key", "/tls/tls.key", "--tls-ca", "/tls/ca.crt", "--federation-port", "50052",
        "--health-port", "50059",
    ])
    assert (args.federation_port, args.tls_ca) == (50052, "/tls/ca.crt")


def test_keys_ca_and_trust_commands_make_a_usable_identity(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ca", "init", "--dir", str(tmp_path / "ca"), "--name", "t"]) == 0
    assert main(["keys", "init", "--organization", "agri", "--dir", str(tmp_path / "k")]) == 0
    assert main(["ca", "issue", "--dir", str(tmp_path / "ca"), "--csr",
                 str(tmp_path / "k" / "tls.csr"), "--role", "node", "--organization", "agri",
                 "--out", str(tmp_path / "k" / "tls.crt")]) == 0
    trust = str(tmp_path / "trust.yaml")
    assert main(["trust", "add", "agri", "--public-key", str(tmp_path / "k" / "org.pub"),
                 "--trust-list", trust]) == 0
    assert main(["trust", "revoke", "agri", "--trust-list", trust]) == 0
    assert main(["trust", "list", "--trust-list", trust]) == 0
    assert "REVOKED" in capsys.readouterr().out


def test_issuing_for_the_wrong_organization_is_a_config_error(tmp_path: Path) -> None:
    main(["ca", "init", "--dir", str(tmp_path / "ca"), "--name", "t"])
    main(["keys", "init", "--organization", "agri", "--dir", str(tmp_path / "k")])
    code = main(["ca", "issue", "--dir", str(tmp_path / "ca"), "--csr",
                 str(tmp_path / "k" / "tls.csr"), "--role", "node", "--organization", "other",
                 "--out", str(tmp_path / "x.crt")])
    assert code == 2 and not (tmp_path / "x.crt").exists()
