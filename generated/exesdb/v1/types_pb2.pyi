import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExpectedState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPECTED_STATE_ANY: _ClassVar[ExpectedState]
    EXPECTED_STATE_NO_STREAM: _ClassVar[ExpectedState]
    EXPECTED_STATE_STREAM_EXISTS: _ClassVar[ExpectedState]
EXPECTED_STATE_ANY: ExpectedState
EXPECTED_STATE_NO_STREAM: ExpectedState
EXPECTED_STATE_STREAM_EXISTS: ExpectedState

class NewEvent(_message.Message):
    __slots__ = ("event_id", "event_type", "data", "data_json", "metadata", "metadata_json", "content_type", "metadata_content_type", "tags")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    event_type: str
    data: bytes
    data_json: _struct_pb2.Struct
    metadata: bytes
    metadata_json: _struct_pb2.Struct
    content_type: str
    metadata_content_type: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., data: _Optional[bytes] = ..., data_json: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata: _Optional[bytes] = ..., metadata_json: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., content_type: _Optional[str] = ..., metadata_content_type: _Optional[str] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class EventRecord(_message.Message):
    __slots__ = ("stream_id", "version", "position", "event_id", "event_type", "data", "metadata", "content_type", "metadata_content_type", "created", "created_epoch", "data_json", "metadata_json", "retry_count", "tags")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    METADATA_CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    CREATED_EPOCH_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    version: int
    position: int
    event_id: str
    event_type: str
    data: bytes
    metadata: bytes
    content_type: str
    metadata_content_type: str
    created: _timestamp_pb2.Timestamp
    created_epoch: int
    data_json: _struct_pb2.Struct
    metadata_json: _struct_pb2.Struct
    retry_count: int
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, stream_id: _Optional[str] = ..., version: _Optional[int] = ..., position: _Optional[int] = ..., event_id: _Optional[str] = ..., event_type: _Optional[str] = ..., data: _Optional[bytes] = ..., metadata: _Optional[bytes] = ..., content_type: _Optional[str] = ..., metadata_content_type: _Optional[str] = ..., created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_epoch: _Optional[int] = ..., data_json: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata_json: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., retry_count: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class WrongExpectedVersion(_message.Message):
    __slots__ = ("stream_id", "expected", "current_version")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    expected: str
    current_version: int
    def __init__(self, stream_id: _Optional[str] = ..., expected: _Optional[str] = ..., current_version: _Optional[int] = ...) -> None: ...

class FieldViolation(_message.Message):
    __slots__ = ("field", "description")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    field: str
    description: str
    def __init__(self, field: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class SnapshotRecord(_message.Message):
    __slots__ = ("source_uuid", "stream_uuid", "source_version", "source_type", "data", "metadata", "created_at", "created_epoch", "data_json", "metadata_json")
    SOURCE_UUID_FIELD_NUMBER: _ClassVar[int]
    STREAM_UUID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_EPOCH_FIELD_NUMBER: _ClassVar[int]
    DATA_JSON_FIELD_NUMBER: _ClassVar[int]
    METADATA_JSON_FIELD_NUMBER: _ClassVar[int]
    source_uuid: str
    stream_uuid: str
    source_version: int
    source_type: str
    data: bytes
    metadata: bytes
    created_at: _timestamp_pb2.Timestamp
    created_epoch: int
    data_json: _struct_pb2.Struct
    metadata_json: _struct_pb2.Struct
    def __init__(self, source_uuid: _Optional[str] = ..., stream_uuid: _Optional[str] = ..., source_version: _Optional[int] = ..., source_type: _Optional[str] = ..., data: _Optional[bytes] = ..., metadata: _Optional[bytes] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., created_epoch: _Optional[int] = ..., data_json: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., metadata_json: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class QueryItem(_message.Message):
    __slots__ = ("types", "tags")
    TYPES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    types: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, types: _Optional[_Iterable[str]] = ..., tags: _Optional[_Iterable[str]] = ...) -> None: ...

class Query(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[QueryItem]
    def __init__(self, items: _Optional[_Iterable[_Union[QueryItem, _Mapping]]] = ...) -> None: ...

class AppendCondition(_message.Message):
    __slots__ = ("fail_if_events_match", "after")
    FAIL_IF_EVENTS_MATCH_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    fail_if_events_match: Query
    after: int
    def __init__(self, fail_if_events_match: _Optional[_Union[Query, _Mapping]] = ..., after: _Optional[int] = ...) -> None: ...

class AppendConditionFailed(_message.Message):
    __slots__ = ("conflicting_position", "head")
    CONFLICTING_POSITION_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    conflicting_position: int
    head: int
    def __init__(self, conflicting_position: _Optional[int] = ..., head: _Optional[int] = ...) -> None: ...

class StreamDeleted(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...
