"""Errors of the mesh, each carrying the gRPC status code it becomes on the wire.

One table (``MeshError.code``) maps every error to its status; the orchestrator's error
interceptor is the only place that turns them into gRPC statuses, and anything not in this tree
becomes INTERNAL with a generic message (never a traceback on the wire).

    MeshError                      INTERNAL
    ├── ConfigError                (raised at load time, never on the wire)
    ├── InvalidInput               INVALID_ARGUMENT   bad request, field named
    ├── InputTooLarge              RESOURCE_EXHAUSTED input over the configured size
    ├── QuotaExceeded              RESOURCE_EXHAUSTED tenant over its quota (retry-after hint)
    ├── Unauthenticated            UNAUTHENTICATED    no credential, or one the hub does not know
    ├── PermissionDenied           PERMISSION_DENIED  a tenant asking outside its allowed experts
    ├── ExpertNotFound             NOT_FOUND          unknown expert (hint: `mesh experts`)
    ├── SessionNotFound            NOT_FOUND          unknown session id
    ├── ExpertUnavailable          UNAVAILABLE        expert down or not ready
    ├── ExpertDeadlineExceeded     DEADLINE_EXCEEDED  expert did not answer in time
    ├── OutOfScope                 (not an error on the wire: an answer that says so)
    └── ModelLoadError             FAILED_PRECONDITION a model that cannot be loaded, named
"""

from __future__ import annotations

from typing import Any

import grpc


def _rebuild(cls: type[MeshError], message: str, state: dict[str, Any]) -> MeshError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class MeshError(Exception):
    """Base of every error the mesh raises on purpose.

    Picklable whatever a subclass's constructor takes: errors raised inside a Ray Serve replica
    travel back to the orchestrator through Ray's serializer, and must arrive as themselves
    (not as an UnserializableException) so the client gets the right status code.
    """

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def trailers(self) -> tuple[tuple[str, str], ...]:
        """Trailing metadata the client gets with the status (hints such as retry-after)."""
        return ()

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


class ConfigError(MeshError):
    """A manifest or mesh config that cannot be used: names the file, the field and the fix."""

    def __init__(self, file: str, problems: list[tuple[str, str, str]]) -> None:
        self.file = file
        self.problems = problems
        lines = [f"{file}: {len(problems)} problem(s)"]
        for field, problem, fix in problems:
            lines.append(f"  - field '{field}': {problem}" + (f". Fix: {fix}" if fix else ""))
        super().__init__("\n".join(lines))


class InvalidInput(MeshError):
    """The request is malformed; the message names the field."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{field}: {problem}")


class InputTooLarge(MeshError):
    """The request is bigger than the orchestrator accepts."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class QuotaExceeded(MeshError):
    """A tenant is over its request rate or its concurrent requests. ``retry_after_s`` is when
    a retry can be admitted; it reaches the client as the ``retry-after-ms`` trailer."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(f"{message}; retry after {retry_after_s:.3f} s")

    def trailers(self) -> tuple[tuple[str, str], ...]:
        return (("retry-after-ms", str(max(1, round(self.retry_after_s * 1000)))),)


class Unauthenticated(MeshError):
    """The call carries no credential, or one the hub does not accept (unknown, revoked)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(MeshError):
    """The caller is known but may not do this (an expert outside the tenant's allowed set)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ExpertNotFound(MeshError):
    """No expert with that name; the message lists how to see the valid ones."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        shown = ", ".join(sorted(known)[:20]) or "none"
        super().__init__(
            f"unknown expert '{name}'; known experts: {shown} (list them with `mesh experts`)"
        )


class SessionNotFound(MeshError):
    """No session with that id (start a new one by leaving session_id empty)."""

    code = grpc.StatusCode.NOT_FOUND

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        super().__init__(
            f"unknown session '{session_id}'; leave session_id empty to start a new session"
        )


class ExpertUnavailable(MeshError):
    """The expert exists but cannot answer now (node down, replicas failing)."""

    code = grpc.StatusCode.UNAVAILABLE


class ExpertDeadlineExceeded(MeshError):
    """The expert did not answer before the request's deadline."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ModelLoadError(MeshError):
    """A model could not be loaded; the message names the model and the cause."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, model: str, cause: str) -> None:
        self.model = model
        super().__init__(f"cannot load model '{model}': {cause}")
