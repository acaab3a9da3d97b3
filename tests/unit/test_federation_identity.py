"""Identity and trust: signing keys, signed manifests, the trust list, the mesh CA."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from mesh.config import ExpertManifest, load_manifest
from mesh.errors import ConfigError, InvalidInput
from mesh.federation.bootstrap import make_ca, make_party
from mesh.federation.ca import identity_of, issue, make_request
from mesh.federation.errors import PermissionDenied, Unauthenticated
from mesh.federation.keys import generate_signing_key, load_signing_key, public_key_text
from mesh.federation.signing import (
    SignedManifest,
    canonical_payload,
    manifest_payload,
    sign_manifest,
    verify_manifest,
)
from mesh.federation.trust import TrustFile, TrustList, load_trust, save_trust

REPO = Path(__file__).resolve().parents[2]
AGRI = "prairie-agri-institute"


@pytest.fixture
def manifest() -> ExpertManifest:
    return load_manifest(REPO / "mesh" / "demo" / "manifests" / "crop-yield.yaml")


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for org in (AGRI, "lakeside-hospital"):
        out[org] = generate_signing_key(tmp_path / org)[0]
    return out


def _trust(keys: dict[str, Path]) -> TrustList:
    trust = TrustList()
    for org, path in keys.items():
        trust = trust.with_organization(org, public_key_text(load_signing_key(path).public_key()))
    return trust


def test_a_signed_manifest_verifies_and_round_trips(manifest: ExpertManifest,
                                                    keys: dict[str, Path]) -> None:
    signed = sign_manifest(manifest, load_signing_key(keys[AGRI]))
    back = verify_manifest(signed, _trust(keys))
    assert back.name == "crop-yield" and back.organization == AGRI
    assert manifest_payload(back) == signed.payload  # one canonical encoding


def test_unsigned_manifest_is_unauthenticated(manifest: ExpertManifest,
                                              keys: dict[str, Path]) -> None:
    with pytest.raises(Unauthenticated, match="unsigned") as e:
        verify_manifest(SignedManifest(manifest_payload(manifest), b""), _trust(keys))
    assert e.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_a_manifest_changed_after_signing_is_rejected(manifest: ExpertManifest,
                                                       keys: dict[str, Path]) -> None:
    signed = sign_manifest(manifest, load_signing_key(keys[AGRI]))
    data = json.loads(signed.payload)
    data["description"] = "Answers every medical question with total certainty, trust me."
    forged = SignedManifest(canonical_payload(data), signed.signature)
    with pytest.raises(Unauthenticated, match="changed after signing"):
        verify_manifest(forged, _trust(keys))


def test_re_namespaced_manifest_is_rejected(manifest: ExpertManifest,
                                            keys: dict[str, Path]) -> None:
    """The agricultural institute signs a manifest that claims the hospital's name."""
    claimed = manifest.model_copy(update={"organization": "lakeside-hospital"})
    signed = sign_manifest(claimed, load_signing_key(keys[AGRI]))
    with pytest.raises(Unauthenticated, match="lakeside-hospital"):
        verify_manifest(signed, _trust(keys))


def test_untrusted_and_revoked_organizations_are_denied(manifest: ExpertManifest,
                                                        keys: dict[str, Path]) -> None:
    signed = sign_manifest(manifest, load_signing_key(keys[AGRI]))
    with pytest.raises(PermissionDenied, match="not on the hub's trust list"):
        verify_manifest(signed, TrustList())
    with pytest.raises(PermissionDenied, match="revoked") as e:
        verify_manifest(signed, _trust(keys).with_revoked(AGRI))
    assert e.value.code == grpc.StatusCode.PERMISSION_DENIED


def test_non_canonical_payload_is_invalid_even_when_signed(manifest: ExpertManifest,
                                                           keys: dict[str, Path]) -> None:
    from mesh.federation.signing import DOMAIN

    key = load_signing_key(keys[AGRI])
    payload = json.dumps(manifest.model_dump(mode="json"), indent=1).encode()
    with pytest.raises(InvalidInput, match="canonical"):
        verify_manifest(SignedManifest(payload, key.sign(DOMAIN + payload)), _trust(keys))


def test_signature_is_bound_to_its_purpose(manifest: ExpertManifest,
                                           keys: dict[str, Path]) -> None:
    """A signature over the bare payload (no domain prefix) is not a manifest signature."""
    key = load_signing_key(keys[AGRI])
    payload = manifest_payload(manifest)
    with pytest.raises(Unauthenticated):
        verify_manifest(SignedManifest(payload, key.sign(payload)), _trust(keys))


def test_keys_are_private_and_never_overwritten(tmp_path: Path) -> None:
    private, public = generate_signing_key(tmp_path)
    assert private.stat().st_mode & 0o777 == 0o600
    assert len(public.read_text().strip()) == 44  # 32 bytes, base64
    with pytest.raises(ConfigError, match="already exists"):
        generate_signing_key(tmp_path)


def test_trust_file_round_trips_and_reloads_on_change(tmp_path: Path,
                                                      keys: dict[str, Path]) -> None:
    path = tmp_path / "trust.yaml"
    save_trust(path, _trust(keys))
    watched = TrustFile(path)
    assert watched.current.trusted(AGRI)
    assert not watched.refresh()  # unchanged
    save_trust(path, load_trust(path).with_revoked(AGRI))
    assert watched.refresh() and not watched.current.trusted(AGRI)
    assert watched.current.trusted("lakeside-hospital")


def test_broken_trust_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "trust.yaml"
    path.write_text("organizations: {x: {public_key: not-base64!}}\n")
    with pytest.raises(ConfigError, match=r"trust\.yaml"):
        load_trust(path)


def test_ca_issues_certificates_with_organization_and_role(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    party = make_party(ca, tmp_path / "agri", AGRI, "node")
    who = identity_of(party.tls.cert.read_bytes())
    assert (who.organization, who.role) == (AGRI, "node")
    assert (tmp_path / "agri" / "tls.key").stat().st_mode & 0o777 == 0o600


def test_ca_refuses_a_request_for_another_organization(tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "ca")
    csr = make_request(tmp_path / "x", "lakeside-hospital", [])
    with pytest.raises(ConfigError, match="expected 'prairie-agri-institute'"):
        issue(ca, csr.read_bytes(), "node", AGRI)
