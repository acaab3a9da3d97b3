from mesh.proto.v1 import common_pb2 as _common_pb2
from mesh.proto.v1 import expert_pb2 as _expert_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AskRequest(_message.Message):
    __slots__ = ("input", "session_id", "experts", "parameters")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    INPUT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EXPERTS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    input: _common_pb2.Content
    session_id: str
    experts: _containers.RepeatedScalarFieldContainer[str]
    parameters: _containers.ScalarMap[str, str]
    def __init__(self, input: _Optional[_Union[_common_pb2.Content, _Mapping]] = ..., session_id: _Optional[str] = ..., experts: _Optional[_Iterable[str]] = ..., parameters: _Optional[_Mapping[str, str]] = ...) -> None: ...

class AskResponse(_message.Message):
    __slots__ = ("answer", "parts", "route", "timings", "session_id")
    ANSWER_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    answer: str
    parts: _containers.RepeatedCompositeFieldContainer[AnswerPart]
    route: RouteDecision
    timings: Timings
    session_id: str
    def __init__(self, answer: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[AnswerPart, _Mapping]]] = ..., route: _Optional[_Union[RouteDecision, _Mapping]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class AnswerPart(_message.Message):
    __slots__ = ("expert", "organization", "output", "score", "metadata", "latency_ms", "version")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    EXPERT_FIELD_NUMBER: _ClassVar[int]
    ORGANIZATION_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    expert: str
    organization: str
    output: _common_pb2.Content
    score: float
    metadata: _containers.ScalarMap[str, str]
    latency_ms: float
    version: str
    def __init__(self, expert: _Optional[str] = ..., organization: _Optional[str] = ..., output: _Optional[_Union[_common_pb2.Content, _Mapping]] = ..., score: _Optional[float] = ..., metadata: _Optional[_Mapping[str, str]] = ..., latency_ms: _Optional[float] = ..., version: _Optional[str] = ...) -> None: ...

class RouteDecision(_message.Message):
    __slots__ = ("scores", "chosen", "out_of_scope", "threshold", "reason")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_SCOPE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedCompositeFieldContainer[ExpertScore]
    chosen: _containers.RepeatedScalarFieldContainer[str]
    out_of_scope: bool
    threshold: float
    reason: str
    def __init__(self, scores: _Optional[_Iterable[_Union[ExpertScore, _Mapping]]] = ..., chosen: _Optional[_Iterable[str]] = ..., out_of_scope: _Optional[bool] = ..., threshold: _Optional[float] = ..., reason: _Optional[str] = ...) -> None: ...

class ExpertScore(_message.Message):
    __slots__ = ("expert", "score", "nearest_example")
    EXPERT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    NEAREST_EXAMPLE_FIELD_NUMBER: _ClassVar[int]
    expert: str
    score: float
    nearest_example: str
    def __init__(self, expert: _Optional[str] = ..., score: _Optional[float] = ..., nearest_example: _Optional[str] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("route_ms", "experts_ms", "total_ms", "cold_start_ms")
    ROUTE_MS_FIELD_NUMBER: _ClassVar[int]
    EXPERTS_MS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    COLD_START_MS_FIELD_NUMBER: _ClassVar[int]
    route_ms: float
    experts_ms: float
    total_ms: float
    cold_start_ms: float
    def __init__(self, route_ms: _Optional[float] = ..., experts_ms: _Optional[float] = ..., total_ms: _Optional[float] = ..., cold_start_ms: _Optional[float] = ...) -> None: ...

class AskChunk(_message.Message):
    __slots__ = ("expert", "text_delta", "final")
    EXPERT_FIELD_NUMBER: _ClassVar[int]
    TEXT_DELTA_FIELD_NUMBER: _ClassVar[int]
    FINAL_FIELD_NUMBER: _ClassVar[int]
    expert: str
    text_delta: str
    final: AskResponse
    def __init__(self, expert: _Optional[str] = ..., text_delta: _Optional[str] = ..., final: _Optional[_Union[AskResponse, _Mapping]] = ...) -> None: ...

class RouteRequest(_message.Message):
    __slots__ = ("input", "session_id")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    input: _common_pb2.Content
    session_id: str
    def __init__(self, input: _Optional[_Union[_common_pb2.Content, _Mapping]] = ..., session_id: _Optional[str] = ...) -> None: ...

class RouteResponse(_message.Message):
    __slots__ = ("route", "route_ms", "threshold_explanation")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_MS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    route: RouteDecision
    route_ms: float
    threshold_explanation: str
    def __init__(self, route: _Optional[_Union[RouteDecision, _Mapping]] = ..., route_ms: _Optional[float] = ..., threshold_explanation: _Optional[str] = ...) -> None: ...

class ListExpertsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ExpertStatus(_message.Message):
    __slots__ = ("card", "replicas", "status", "replica_seconds", "device", "requests", "cost_per_request", "share", "role")
    CARD_FIELD_NUMBER: _ClassVar[int]
    REPLICAS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REPLICA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    COST_PER_REQUEST_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    card: _expert_pb2.ExpertCard
    replicas: int
    status: str
    replica_seconds: float
    device: str
    requests: int
    cost_per_request: float
    share: float
    role: str
    def __init__(self, card: _Optional[_Union[_expert_pb2.ExpertCard, _Mapping]] = ..., replicas: _Optional[int] = ..., status: _Optional[str] = ..., replica_seconds: _Optional[float] = ..., device: _Optional[str] = ..., requests: _Optional[int] = ..., cost_per_request: _Optional[float] = ..., share: _Optional[float] = ..., role: _Optional[str] = ...) -> None: ...

class ListExpertsResponse(_message.Message):
    __slots__ = ("experts",)
    EXPERTS_FIELD_NUMBER: _ClassVar[int]
    experts: _containers.RepeatedCompositeFieldContainer[ExpertStatus]
    def __init__(self, experts: _Optional[_Iterable[_Union[ExpertStatus, _Mapping]]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("session_id", "turns", "created_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    turns: _containers.RepeatedCompositeFieldContainer[_common_pb2.Turn]
    created_at: float
    def __init__(self, session_id: _Optional[str] = ..., turns: _Optional[_Iterable[_Union[_common_pb2.Turn, _Mapping]]] = ..., created_at: _Optional[float] = ...) -> None: ...
