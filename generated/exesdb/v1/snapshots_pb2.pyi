from exesdb.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RecordSnapshotRequest(_message.Message):
    __slots__ = ("store", "snapshot")
    STORE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    store: str
    snapshot: _types_pb2.SnapshotRecord
    def __init__(self, store: _Optional[str] = ..., snapshot: _Optional[_Union[_types_pb2.SnapshotRecord, _Mapping]] = ...) -> None: ...

class RecordSnapshotResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: _types_pb2.SnapshotRecord
    def __init__(self, snapshot: _Optional[_Union[_types_pb2.SnapshotRecord, _Mapping]] = ...) -> None: ...

class ReadSnapshotRequest(_message.Message):
    __slots__ = ("store", "source_uuid", "stream_uuid", "version", "json")
    STORE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_UUID_FIELD_NUMBER: _ClassVar[int]
    STREAM_UUID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    store: str
    source_uuid: str
    stream_uuid: str
    version: int
    json: bool
    def __init__(self, store: _Optional[str] = ..., source_uuid: _Optional[str] = ..., stream_uuid: _Optional[str] = ..., version: _Optional[int] = ..., json: _Optional[bool] = ...) -> None: ...

class ReadSnapshotResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: _types_pb2.SnapshotRecord
    def __init__(self, snapshot: _Optional[_Union[_types_pb2.SnapshotRecord, _Mapping]] = ...) -> None: ...

class DeleteSnapshotRequest(_message.Message):
    __slots__ = ("store", "source_uuid", "stream_uuid", "version")
    STORE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_UUID_FIELD_NUMBER: _ClassVar[int]
    STREAM_UUID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    store: str
    source_uuid: str
    stream_uuid: str
    version: int
    def __init__(self, store: _Optional[str] = ..., source_uuid: _Optional[str] = ..., stream_uuid: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DeleteSnapshotResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    def __init__(self, deleted: _Optional[int] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ("store", "source_uuid", "stream_uuid", "page_size", "page_token")
    STORE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_UUID_FIELD_NUMBER: _ClassVar[int]
    STREAM_UUID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    store: str
    source_uuid: str
    stream_uuid: str
    page_size: int
    page_token: str
    def __init__(self, store: _Optional[str] = ..., source_uuid: _Optional[str] = ..., stream_uuid: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshots", "next_page_token")
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[_types_pb2.SnapshotRecord]
    next_page_token: str
    def __init__(self, snapshots: _Optional[_Iterable[_Union[_types_pb2.SnapshotRecord, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...
