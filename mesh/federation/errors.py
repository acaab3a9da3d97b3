"""Identity errors of the federation, each with the status code it becomes on the wire.

    MeshError
    ├── Unauthenticated     UNAUTHENTICATED    no valid identity: unsigned or forged manifest,
    │                                          no client certificate from the mesh CA
    └── PermissionDenied    PERMISSION_DENIED  a known identity asking for what it may not:
                                               an untrusted or revoked organization, another
                                               organization's namespace or certificate
"""

from __future__ import annotations

import grpc

from mesh.errors import MeshError


class Unauthenticated(MeshError):
    """The caller or the manifest carries no valid proof of who it is."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(MeshError):
    """The caller is known, but what it asks for belongs to someone else or is revoked."""

    code = grpc.StatusCode.PERMISSION_DENIED
