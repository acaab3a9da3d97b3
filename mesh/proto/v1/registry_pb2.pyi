from mesh.proto.v1 import expert_pb2 as _expert_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    EVENT_KIND_UPSERT: _ClassVar[EventKind]
    EVENT_KIND_REMOVE: _ClassVar[EventKind]
    EVENT_KIND_HEALTH: _ClassVar[EventKind]
EVENT_KIND_UNSPECIFIED: EventKind
EVENT_KIND_UPSERT: EventKind
EVENT_KIND_REMOVE: EventKind
EVENT_KIND_HEALTH: EventKind

class RegisterRequest(_message.Message):
    __slots__ = ("card", "node_address", "signed_manifest", "signature")
    CARD_FIELD_NUMBER: _ClassVar[int]
    NODE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SIGNED_MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    card: _expert_pb2.ExpertCard
    node_address: str
    signed_manifest: bytes
    signature: bytes
    def __init__(self, card: _Optional[_Union[_expert_pb2.ExpertCard, _Mapping]] = ..., node_address: _Optional[str] = ..., signed_manifest: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("lease_id", "heartbeat_interval_s")
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_S_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    heartbeat_interval_s: float
    def __init__(self, lease_id: _Optional[str] = ..., heartbeat_interval_s: _Optional[float] = ...) -> None: ...

class DeregisterRequest(_message.Message):
    __slots__ = ("expert", "lease_id")
    EXPERT_FIELD_NUMBER: _ClassVar[int]
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    expert: str
    lease_id: str
    def __init__(self, expert: _Optional[str] = ..., lease_id: _Optional[str] = ...) -> None: ...

class DeregisterResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("lease_id",)
    LEASE_ID_FIELD_NUMBER: _ClassVar[int]
    lease_id: str
    def __init__(self, lease_id: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("known",)
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    known: bool
    def __init__(self, known: _Optional[bool] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[RegistryEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[RegistryEntry, _Mapping]]] = ...) -> None: ...

class RegistryEntry(_message.Message):
    __slots__ = ("card", "node_address", "last_heartbeat", "healthy")
    CARD_FIELD_NUMBER: _ClassVar[int]
    NODE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    card: _expert_pb2.ExpertCard
    node_address: str
    last_heartbeat: float
    healthy: bool
    def __init__(self, card: _Optional[_Union[_expert_pb2.ExpertCard, _Mapping]] = ..., node_address: _Optional[str] = ..., last_heartbeat: _Optional[float] = ..., healthy: _Optional[bool] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegistryEvent(_message.Message):
    __slots__ = ("kind", "entry")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    kind: EventKind
    entry: RegistryEntry
    def __init__(self, kind: _Optional[_Union[EventKind, str]] = ..., entry: _Optional[_Union[RegistryEntry, _Mapping]] = ...) -> None: ...
