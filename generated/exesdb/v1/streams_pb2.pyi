import datetime

from exesdb.v1 import types_pb2 as _types_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STREAM_STATE_LIVE: _ClassVar[StreamState]
    STREAM_STATE_SOFT_DELETED: _ClassVar[StreamState]
    STREAM_STATE_TOMBSTONED: _ClassVar[StreamState]

class ReadDirection(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    READ_DIRECTION_FORWARD: _ClassVar[ReadDirection]
    READ_DIRECTION_BACKWARD: _ClassVar[ReadDirection]
STREAM_STATE_LIVE: StreamState
STREAM_STATE_SOFT_DELETED: StreamState
STREAM_STATE_TOMBSTONED: StreamState
READ_DIRECTION_FORWARD: ReadDirection
READ_DIRECTION_BACKWARD: ReadDirection

class DeleteStreamRequest(_message.Message):
    __slots__ = ("store", "stream_id", "expected_state", "expected_version", "tombstone")
    STORE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_STATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONE_FIELD_NUMBER: _ClassVar[int]
    store: str
    stream_id: str
    expected_state: _types_pb2.ExpectedState
    expected_version: int
    tombstone: bool
    def __init__(self, store: _Optional[str] = ..., stream_id: _Optional[str] = ..., expected_state: _Optional[_Union[_types_pb2.ExpectedState, str]] = ..., expected_version: _Optional[int] = ..., tombstone: _Optional[bool] = ...) -> None: ...

class DeleteStreamResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class StreamMetadata(_message.Message):
    __slots__ = ("max_count", "max_age_s", "truncate_before", "custom")
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_S_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_FIELD_NUMBER: _ClassVar[int]
    max_count: int
    max_age_s: int
    truncate_before: int
    custom: _struct_pb2.Struct
    def __init__(self, max_count: _Optional[int] = ..., max_age_s: _Optional[int] = ..., truncate_before: _Optional[int] = ..., custom: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetStreamMetadataRequest(_message.Message):
    __slots__ = ("store", "stream_id")
    STORE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    store: str
    stream_id: str
    def __init__(self, store: _Optional[str] = ..., stream_id: _Optional[str] = ...) -> None: ...

class GetStreamMetadataResponse(_message.Message):
    __slots__ = ("metadata", "meta_version", "state")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    META_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    metadata: StreamMetadata
    meta_version: int
    state: StreamState
    def __init__(self, metadata: _Optional[_Union[StreamMetadata, _Mapping]] = ..., meta_version: _Optional[int] = ..., state: _Optional[_Union[StreamState, str]] = ...) -> None: ...

class SetStreamMetadataRequest(_message.Message):
    __slots__ = ("store", "stream_id", "metadata", "expected_state", "expected_meta_version")
    STORE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_STATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_META_VERSION_FIELD_NUMBER: _ClassVar[int]
    store: str
    stream_id: str
    metadata: StreamMetadata
    expected_state: _types_pb2.ExpectedState
    expected_meta_version: int
    def __init__(self, store: _Optional[str] = ..., stream_id: _Optional[str] = ..., metadata: _Optional[_Union[StreamMetadata, _Mapping]] = ..., expected_state: _Optional[_Union[_types_pb2.ExpectedState, str]] = ..., expected_meta_version: _Optional[int] = ...) -> None: ...

class SetStreamMetadataResponse(_message.Message):
    __slots__ = ("meta_version",)
    META_VERSION_FIELD_NUMBER: _ClassVar[int]
    meta_version: int
    def __init__(self, meta_version: _Optional[int] = ...) -> None: ...

class RedactEventRequest(_message.Message):
    __slots__ = ("store", "stream_id", "version")
    STORE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    store: str
    stream_id: str
    version: int
    def __init__(self, store: _Optional[str] = ..., stream_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RedactEventResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AppendEventsRequest(_message.Message):
    __slots__ = ("store", "stream_id", "expected_state", "expected_version", "events", "condition", "more_streams", "checks")
    STORE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_STATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    MORE_STREAMS_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    store: str
    stream_id: str
    expected_state: _types_pb2.ExpectedState
    expected_version: int
    events: _containers.RepeatedCompositeFieldContainer[_types_pb2.NewEvent]
    condition: _types_pb2.AppendCondition
    more_streams: _containers.RepeatedCompositeFieldContainer[StreamEvents]
    checks: _containers.RepeatedCompositeFieldContainer[StreamCheck]
    def __init__(self, store: _Optional[str] = ..., stream_id: _Optional[str] = ..., expected_state: _Optional[_Union[_types_pb2.ExpectedState, str]] = ..., expected_version: _Optional[int] = ..., events: _Optional[_Iterable[_Union[_types_pb2.NewEvent, _Mapping]]] = ..., condition: _Optional[_Union[_types_pb2.AppendCondition, _Mapping]] = ..., more_streams: _Optional[_Iterable[_Union[StreamEvents, _Mapping]]] = ..., checks: _Optional[_Iterable[_Union[StreamCheck, _Mapping]]] = ...) -> None: ...

class StreamEvents(_message.Message):
    __slots__ = ("stream_id", "expected_state", "expected_version", "events")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_STATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    expected_state: _types_pb2.ExpectedState
    expected_version: int
    events: _containers.RepeatedCompositeFieldContainer[_types_pb2.NewEvent]
    def __init__(self, stream_id: _Optional[str] = ..., expected_state: _Optional[_Union[_types_pb2.ExpectedState, str]] = ..., expected_version: _Optional[int] = ..., events: _Optional[_Iterable[_Union[_types_pb2.NewEvent, _Mapping]]] = ...) -> None: ...

class StreamCheck(_message.Message):
    __slots__ = ("stream_id", "expected_state", "expected_version")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_STATE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    expected_state: _types_pb2.ExpectedState
    expected_version: int
    def __init__(self, stream_id: _Optional[str] = ..., expected_state: _Optional[_Union[_types_pb2.ExpectedState, str]] = ..., expected_version: _Optional[int] = ...) -> None: ...

class AppendSessionRequest(_message.Message):
    __slots__ = ("correlation_id", "append")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    APPEND_FIELD_NUMBER: _ClassVar[int]
    correlation_id: int
    append: AppendEventsRequest
    def __init__(self, correlation_id: _Optional[int] = ..., append: _Optional[_Union[AppendEventsRequest, _Mapping]] = ...) -> None: ...

class AppendSessionResponse(_message.Message):
    __slots__ = ("correlation_id", "appended", "error")
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    APPENDED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    correlation_id: int
    appended: AppendEventsResponse
    error: _status_pb2.Status
    def __init__(self, correlation_id: _Optional[int] = ..., appended: _Optional[_Union[AppendEventsResponse, _Mapping]] = ..., error: _Optional[_Union[_status_pb2.Status, _Mapping]] = ...) -> None: ...

class AppendEventsResponse(_message.Message):
    __slots__ = ("version", "position", "first_version", "first_position", "duplicate", "more_streams")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    FIRST_VERSION_FIELD_NUMBER: _ClassVar[int]
    FIRST_POSITION_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    MORE_STREAMS_FIELD_NUMBER: _ClassVar[int]
    version: int
    position: int
    first_version: int
    first_position: int
    duplicate: bool
    more_streams: _containers.RepeatedCompositeFieldContainer[AppendEventsResponse]
    def __init__(self, version: _Optional[int] = ..., position: _Optional[int] = ..., first_version: _Optional[int] = ..., first_position: _Optional[int] = ..., duplicate: _Optional[bool] = ..., more_streams: _Optional[_Iterable[_Union[AppendEventsResponse, _Mapping]]] = ...) -> None: ...

class ReadEventsRequest(_message.Message):
    __slots__ = ("store", "stream_id", "from_version", "count", "direction", "json", "query", "head", "stream_prefix", "from_time")
    STORE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    STREAM_PREFIX_FIELD_NUMBER: _ClassVar[int]
    FROM_TIME_FIELD_NUMBER: _ClassVar[int]
    store: str
    stream_id: str
    from_version: int
    count: int
    direction: ReadDirection
    json: bool
    query: _types_pb2.Query
    head: int
    stream_prefix: str
    from_time: _timestamp_pb2.Timestamp
    def __init__(self, store: _Optional[str] = ..., stream_id: _Optional[str] = ..., from_version: _Optional[int] = ..., count: _Optional[int] = ..., direction: _Optional[_Union[ReadDirection, str]] = ..., json: _Optional[bool] = ..., query: _Optional[_Union[_types_pb2.Query, _Mapping]] = ..., head: _Optional[int] = ..., stream_prefix: _Optional[str] = ..., from_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ReadEventsResponse(_message.Message):
    __slots__ = ("events", "head")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_types_pb2.EventRecord]
    head: int
    def __init__(self, events: _Optional[_Iterable[_Union[_types_pb2.EventRecord, _Mapping]]] = ..., head: _Optional[int] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ("store", "stream_id")
    STORE_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    store: str
    stream_id: str
    def __init__(self, store: _Optional[str] = ..., stream_id: _Optional[str] = ...) -> None: ...

class GetVersionResponse(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class ListStreamsRequest(_message.Message):
    __slots__ = ("store", "page_size", "page_token")
    STORE_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    store: str
    page_size: int
    page_token: str
    def __init__(self, store: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class StreamInfo(_message.Message):
    __slots__ = ("stream_id", "version")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    version: int
    def __init__(self, stream_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListStreamsResponse(_message.Message):
    __slots__ = ("streams", "next_page_token")
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    streams: _containers.RepeatedCompositeFieldContainer[StreamInfo]
    next_page_token: str
    def __init__(self, streams: _Optional[_Iterable[_Union[StreamInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
