"""The generated code in mesh/proto/v1 must match what protos/mesh/v1 generates today."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _generate(out: Path) -> None:
    spec = importlib.util.spec_from_file_location("gen_protos", REPO / "scripts" / "gen_protos.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_protos"] = module
    spec.loader.exec_module(module)
    module.generate(out)


def test_generated_code_matches_protos(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (dev extra) regenerates the stubs")
    _generate(tmp_path)
    committed = REPO / "mesh" / "proto" / "v1"
    fresh = {p.name: p.read_text() for p in tmp_path.iterdir()}
    current = {p.name: p.read_text() for p in committed.iterdir() if p.is_file()}
    assert sorted(fresh) == sorted(current), "files differ: run `make protos`"
    stale = [name for name in fresh if fresh[name] != current[name]]
    assert not stale, f"out of date with protos/mesh/v1: {stale}; run `make protos`"


def test_every_message_and_rpc_is_documented() -> None:
    """Every message, field, enum value and RPC has a comment (the wire is the contract)."""
    for proto in sorted((REPO / "protos" / "mesh" / "v1").glob("*.proto")):
        lines = proto.read_text().splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            starts = ("message ", "service ", "enum ", "rpc ")
            is_field = (stripped.endswith(";") and "=" in stripped
                        and not stripped.startswith(("option", "syntax", "package", "import")))
            if stripped.startswith(starts) or is_field:
                above = lines[i - 1].strip() if i else ""
                assert above.startswith("//"), f"{proto.name}:{i + 1} has no comment: {stripped}"


def test_enum_zero_values_are_unspecified() -> None:
    zeros = []
    for proto in sorted((REPO / "protos" / "mesh" / "v1").glob("*.proto")):
        for line in proto.read_text().splitlines():
            tokens = line.split()
            if len(tokens) == 3 and tokens[1] == "=" and tokens[2] == "0;":
                zeros.append(tokens[0])
    assert zeros, "no enum found: the check itself is broken"
    bad = [z for z in zeros if not z.endswith("_UNSPECIFIED")]
    assert not bad, f"enum zero values must end in _UNSPECIFIED: {bad}"
