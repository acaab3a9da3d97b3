"""The mesh's certificate authority: the certificates hub and nodes present in mutual TLS.

An organization makes its TLS key and a certificate request on its own machine (`mesh keys
init`); the hub operator signs the request (`mesh ca issue`), choosing its role. The private key
never travels. Keys are ECDSA P-256 (what every TLS stack speaks); signing keys for manifests
are a separate ed25519 identity (``keys``).

A certificate names its organization (subject O) and its role (subject OU: ``hub`` or ``node``);
servers read both from the peer's certificate to decide what it may do.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from mesh.errors import ConfigError
from mesh.federation.keys import write_private

Role = Literal["hub", "node", "client"]
ROLES: tuple[Role, ...] = ("hub", "node", "client")
"""hub and node certificates join the federation; a client certificate only calls a hub's
orchestrator port (its common name, "<organization> client", maps to a tenant)."""
CA_KEY, CA_CERT = "ca.key", "ca.crt"
TLS_KEY, TLS_CSR = "tls.key", "tls.csr"
DEFAULT_SANS = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class Identity:
    """Who a certificate speaks for."""

    organization: str
    role: str


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _sans(names: list[str]) -> x509.SubjectAlternativeName:
    out: list[x509.GeneralName] = []
    for n in names:
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(n)))
        except ValueError:
            out.append(x509.DNSName(n))
    return x509.SubjectAlternativeName(out)


def init_ca(folder: Path, name: str, days: int = 3650) -> Path:
    """Create the CA's key (0600) and self-signed certificate in ``folder``; returns the cert."""
    if (folder / CA_KEY).exists():
        raise ConfigError(str(folder / CA_KEY), [("(file)", "already exists",
                                                  "a mesh has one CA; keep it")])
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, name),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{name} mesh CA")])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(folder / CA_KEY, _key_pem(key))
    (folder / CA_CERT).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return folder / CA_CERT


def make_request(folder: Path, organization: str, sans: list[str]) -> Path:
    """Create this organization's TLS key (0600) and a certificate request; returns the CSR.
    The request names the organization; the CA decides the role."""
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                                 x509.NameAttribute(NameOID.COMMON_NAME, organization)]))
        .add_extension(_sans(sans or list(DEFAULT_SANS)), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(folder / TLS_KEY, _key_pem(key))
    (folder / TLS_CSR).write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return folder / TLS_CSR


def _load_ca(folder: Path) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    try:
        key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), None)
        cert = x509.load_pem_x509_certificate((folder / CA_CERT).read_bytes())
    except FileNotFoundError as e:
        raise ConfigError(str(folder), [("(folder)", f"has no CA ({e.filename} missing)",
                                         "create one with `mesh ca init`")]) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ConfigError(str(folder / CA_KEY), [("(file)", "is not an EC key", "")])
    return key, cert


def issue(ca_folder: Path, csr_pem: bytes, role: Role, organization: str | None = None,
          days: int = 365) -> bytes:
    """Sign a certificate request as ``role``; returns the certificate (PEM).

    ``organization``, when given, must equal the request's own (the operator confirms whom
    they are certifying; a mismatch is refused rather than silently trusted).
    """
    if role not in ROLES:
        raise ConfigError("mesh ca issue", [("role", f"'{role}' is not one of {ROLES}", "")])
    ca_key, ca_cert = _load_ca(ca_folder)
    csr = x509.load_pem_x509_csr(csr_pem)
    if not csr.is_signature_valid:
        raise ConfigError("certificate request", [("(file)", "signature does not verify",
                                                   "make a new one with `mesh keys init`")])
    orgs = csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    asked = str(orgs[0].value) if orgs else ""
    if not asked or (organization and organization != asked):
        raise ConfigError("certificate request", [(
            "subject O", f"names '{asked}', expected '{organization}'",
            "ask the organization for a request made with its own name")])
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        sans = _sans(list(DEFAULT_SANS))
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, asked),
                         x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{asked} {role}")])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject)
        .public_key(csr.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(sans, critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def identity_of(cert_pem: bytes) -> Identity:
    """Organization and role named by a certificate this CA issued."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    return Identity(str(orgs[0].value) if orgs else "", str(units[0].value) if units else "")
