"""A client certificate from the mesh CA instead of a token: the orchestrator serves mutual
TLS, a mapped certificate's common name is its tenant, an unmapped one is UNAUTHENTICATED, and
a client without a certificate cannot connect at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from mesh.client import MeshClient
from mesh.config import load_config
from mesh.federation.ca import init_ca, issue, make_request
from mesh.federation.tls import TlsFiles, channel_credentials
from mesh.tenants import Tenant, TenantStore, store_path
from tests.support.hub import iris_mesh, orchestrator_process

pytestmark = pytest.mark.slow


def _certify(ca: Path, folder: Path, organization: str, role: str) -> TlsFiles:
    folder.mkdir()
    csr = make_request(folder, organization, ["localhost", "127.0.0.1"])
    (folder / "tls.crt").write_bytes(issue(ca, csr.read_bytes(), role, organization))  # type: ignore[arg-type]
    return TlsFiles(folder / "tls.crt", folder / "tls.key", ca / "ca.crt")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    folder = tmp_path_factory.mktemp("mtls")
    ca = folder / "ca"
    ca.mkdir()
    init_ca(ca, "test mesh")
    server = _certify(ca, folder / "hub", "test-hub", "hub")
    config = iris_mesh(folder, extra=(
        f"orchestrator: {{tls_cert: {server.cert}, tls_key: {server.key}, tls_ca: {server.ca}}}\n"
        "auth: {required: true}\n"))
    store = TenantStore(store_path(load_config(config).state_path()))
    store.create(Tenant("clinic", experts=("iris",), cert_subjects=("acme-clinic client",)))
    store.close()
    with orchestrator_process(config, folder / "orchestrator.log") as (port, _):
        yield port, folder


def test_a_mapped_client_certificate_is_its_tenant(hub: tuple[int, Path]) -> None:
    port, folder = hub
    tls = _certify(folder / "ca", folder / "clinic", "acme-clinic", "client")
    with MeshClient(f"127.0.0.1:{port}", credentials=channel_credentials(tls)) as client:
        listed = client.experts()
    assert [e.card.name for e in listed.experts] == ["iris"]


def test_an_unmapped_certificate_is_unauthenticated_and_told_how_to_map_it(
    hub: tuple[int, Path],
) -> None:
    port, folder = hub
    tls = _certify(folder / "ca", folder / "stranger", "stranger-lab", "client")
    with (MeshClient(f"127.0.0.1:{port}", credentials=channel_credentials(tls)) as client,
          pytest.raises(grpc.RpcError) as info):
        client.experts()
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "--cert-subject stranger-lab client" in info.value.details()


def test_a_client_without_a_certificate_cannot_connect(hub: tuple[int, Path]) -> None:
    port, _ = hub
    with (MeshClient(f"127.0.0.1:{port}", timeout_s=5) as client,  # plaintext
          pytest.raises(grpc.RpcError) as info):
        client.experts()
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
