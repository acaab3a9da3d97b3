from mesh.proto.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InferRequest(_message.Message):
    __slots__ = ("expert", "input", "history", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EXPERT_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    expert: str
    input: _common_pb2.Content
    history: _containers.RepeatedCompositeFieldContainer[_common_pb2.Turn]
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, expert: _Optional[str] = ..., input: _Optional[_Union[_common_pb2.Content, _Mapping]] = ..., history: _Optional[_Iterable[_Union[_common_pb2.Turn, _Mapping]]] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class InferResponse(_message.Message):
    __slots__ = ("expert", "output", "metadata", "latency_ms")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EXPERT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    expert: str
    output: _common_pb2.Content
    metadata: _containers.ScalarMap[str, str]
    latency_ms: float
    def __init__(self, expert: _Optional[str] = ..., output: _Optional[_Union[_common_pb2.Content, _Mapping]] = ..., metadata: _Optional[_Mapping[str, str]] = ..., latency_ms: _Optional[float] = ...) -> None: ...

class InferChunk(_message.Message):
    __slots__ = ("text_delta", "final")
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    text_delta: str
    final: InferResponse
    def __init__(self, text_delta: _Optional[str] = ..., final: _Optional[_Union[InferResponse, _Mapping]] = ...) -> None: ...

class DescribeRequest(_message.Message):
    __slots__ = ("expert",)
    EXPERT_FIELD_NUMBER: _ClassVar[int]
    expert: str
    def __init__(self, expert: _Optional[str] = ...) -> None: ...

class DescribeResponse(_message.Message):
    __slots__ = ("experts",)
    EXPERTS_FIELD_NUMBER: _ClassVar[int]
    experts: _containers.RepeatedCompositeFieldContainer[ExpertCard]
    def __init__(self, experts: _Optional[_Iterable[_Union[ExpertCard, _Mapping]]] = ...) -> None: ...

class ExpertCard(_message.Message):
    __slots__ = ("name", "version", "organization", "description", "examples", "input_kind", "runtime", "tags", "languages")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    INPUT_KIND_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGES_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    organization: str
    description: str
    examples: _containers.RepeatedScalarFieldContainer[str]
    input_kind: str
    runtime: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    languages: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ..., organization: _Optional[str] = ..., description: _Optional[str] = ..., examples: _Optional[_Iterable[str]] = ..., input_kind: _Optional[str] = ..., runtime: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ..., languages: _Optional[_Iterable[str]] = ...) -> None: ...
