"""Every identity a small federation needs, made in one folder: for examples and tests.

In production each organization runs `mesh keys init` on its own machine and the hub operator
signs its request; here one process plays every part, through the same functions, so the
example in deploy/two-orgs and the tests exercise exactly what the commands do.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mesh.federation.ca import Role, init_ca, issue, make_request
from mesh.federation.keys import generate_signing_key
from mesh.federation.tls import TlsFiles


@dataclass(frozen=True)
class Party:
    """One organization's files."""

    organization: str
    folder: Path

    @property
    def signing_key(self) -> Path:
        """Its ed25519 private key (org.key)."""
        return self.folder / "org.key"

    @property
    def public_key(self) -> Path:
        """Its public key line (org.pub)."""
        return self.folder / "org.pub"

    @property
    def tls(self) -> TlsFiles:
        """Its certificate, TLS key and the CA certificate."""
        return TlsFiles(self.folder / "tls.crt", self.folder / "tls.key",
                        self.folder / "ca.crt")


def make_party(ca_folder: Path, folder: Path, organization: str, role: Role,
               sans: tuple[str, ...] = ("localhost", "127.0.0.1")) -> Party:
    """Keys, request and certificate of one organization, signed by the CA in ``ca_folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    generate_signing_key(folder)
    csr = make_request(folder, organization, list(sans))
    (folder / "tls.crt").write_bytes(issue(ca_folder, csr.read_bytes(), role, organization))
    (folder / "ca.crt").write_bytes((ca_folder / "ca.crt").read_bytes())
    return Party(organization, folder)


def make_ca(folder: Path, name: str = "mesh") -> Path:
    """A CA in ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    init_ca(folder, name)
    return folder
