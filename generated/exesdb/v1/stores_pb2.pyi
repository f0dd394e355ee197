import datetime

from exesdb.v1 import types_pb2 as _types_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StoreInfo(_message.Message):
    __slots__ = ("store_id", "created_at")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, store_id: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateStoreRequest(_message.Message):
    __slots__ = ("store_id",)
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    def __init__(self, store_id: _Optional[str] = ...) -> None: ...

class CreateStoreResponse(_message.Message):
    __slots__ = ("store",)
    STORE_FIELD_NUMBER: _ClassVar[int]
    store: StoreInfo
    def __init__(self, store: _Optional[_Union[StoreInfo, _Mapping]] = ...) -> None: ...

class RemoveStoreRequest(_message.Message):
    __slots__ = ("store_id",)
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    def __init__(self, store_id: _Optional[str] = ...) -> None: ...

class RemoveStoreResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStoresRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListStoresResponse(_message.Message):
    __slots__ = ("stores",)
    STORES_FIELD_NUMBER: _ClassVar[int]
    stores: _containers.RepeatedCompositeFieldContainer[StoreInfo]
    def __init__(self, stores: _Optional[_Iterable[_Union[StoreInfo, _Mapping]]] = ...) -> None: ...

class GetStoreStatusRequest(_message.Message):
    __slots__ = ("store_id",)
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    def __init__(self, store_id: _Optional[str] = ...) -> None: ...

class GetStoreStatusResponse(_message.Message):
    __slots__ = ("store_id", "stream_count", "event_count", "last_position", "snapshot_count", "subscription_count", "size_bytes", "open", "open_files", "threads")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    OPEN_FILES_FIELD_NUMBER: _ClassVar[int]
    THREADS_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    stream_count: int
    event_count: int
    last_position: int
    snapshot_count: int
    subscription_count: int
    size_bytes: int
    open: bool
    open_files: int
    threads: int
    def __init__(self, store_id: _Optional[str] = ..., stream_count: _Optional[int] = ..., event_count: _Optional[int] = ..., last_position: _Optional[int] = ..., snapshot_count: _Optional[int] = ..., subscription_count: _Optional[int] = ..., size_bytes: _Optional[int] = ..., open: _Optional[bool] = ..., open_files: _Optional[int] = ..., threads: _Optional[int] = ...) -> None: ...

class GetStoreConfigRequest(_message.Message):
    __slots__ = ("store_id",)
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    def __init__(self, store_id: _Optional[str] = ...) -> None: ...

class GetStoreConfigResponse(_message.Message):
    __slots__ = ("store_id", "backend", "location", "durability", "max_events_per_append", "max_message_bytes", "created_at")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    DURABILITY_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_PER_APPEND_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    backend: str
    location: str
    durability: str
    max_events_per_append: int
    max_message_bytes: int
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, store_id: _Optional[str] = ..., backend: _Optional[str] = ..., location: _Optional[str] = ..., durability: _Optional[str] = ..., max_events_per_append: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExportStoreRequest(_message.Message):
    __slots__ = ("store_id", "from_position", "to_position")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_POSITION_FIELD_NUMBER: _ClassVar[int]
    TO_POSITION_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    from_position: int
    to_position: int
    def __init__(self, store_id: _Optional[str] = ..., from_position: _Optional[int] = ..., to_position: _Optional[int] = ...) -> None: ...

class ExportStoreResponse(_message.Message):
    __slots__ = ("header", "entries", "last_position", "events")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    header: TransferHeader
    entries: bytes
    last_position: int
    events: int
    def __init__(self, header: _Optional[_Union[TransferHeader, _Mapping]] = ..., entries: _Optional[bytes] = ..., last_position: _Optional[int] = ..., events: _Optional[int] = ...) -> None: ...

class TransferHeader(_message.Message):
    __slots__ = ("format_version", "store_id", "head", "exported_at", "backend")
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    EXPORTED_AT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    format_version: int
    store_id: str
    head: int
    exported_at: _timestamp_pb2.Timestamp
    backend: str
    def __init__(self, format_version: _Optional[int] = ..., store_id: _Optional[str] = ..., head: _Optional[int] = ..., exported_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., backend: _Optional[str] = ...) -> None: ...

class TransferSubscription(_message.Message):
    __slots__ = ("name", "definition_json", "state_json", "checkpoint")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DEFINITION_JSON_FIELD_NUMBER: _ClassVar[int]
    STATE_JSON_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    name: str
    definition_json: str
    state_json: str
    checkpoint: int
    def __init__(self, name: _Optional[str] = ..., definition_json: _Optional[str] = ..., state_json: _Optional[str] = ..., checkpoint: _Optional[int] = ...) -> None: ...

class TransferEnd(_message.Message):
    __slots__ = ("events", "snapshots", "subscriptions", "streams")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    events: int
    snapshots: int
    subscriptions: int
    streams: int
    def __init__(self, events: _Optional[int] = ..., snapshots: _Optional[int] = ..., subscriptions: _Optional[int] = ..., streams: _Optional[int] = ...) -> None: ...

class TransferStream(_message.Message):
    __slots__ = ("stream_id", "version", "deleted", "meta_version", "truncate_before", "max_count", "max_age_us", "custom_json")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    META_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRUNCATE_BEFORE_FIELD_NUMBER: _ClassVar[int]
    MAX_COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_AGE_US_FIELD_NUMBER: _ClassVar[int]
    CUSTOM_JSON_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    version: int
    deleted: int
    meta_version: int
    truncate_before: int
    max_count: int
    max_age_us: int
    custom_json: str
    def __init__(self, stream_id: _Optional[str] = ..., version: _Optional[int] = ..., deleted: _Optional[int] = ..., meta_version: _Optional[int] = ..., truncate_before: _Optional[int] = ..., max_count: _Optional[int] = ..., max_age_us: _Optional[int] = ..., custom_json: _Optional[str] = ...) -> None: ...

class TransferEntry(_message.Message):
    __slots__ = ("header", "event", "snapshot", "subscription", "end", "stream")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    header: TransferHeader
    event: _types_pb2.EventRecord
    snapshot: _types_pb2.SnapshotRecord
    subscription: TransferSubscription
    end: TransferEnd
    stream: TransferStream
    def __init__(self, header: _Optional[_Union[TransferHeader, _Mapping]] = ..., event: _Optional[_Union[_types_pb2.EventRecord, _Mapping]] = ..., snapshot: _Optional[_Union[_types_pb2.SnapshotRecord, _Mapping]] = ..., subscription: _Optional[_Union[TransferSubscription, _Mapping]] = ..., end: _Optional[_Union[TransferEnd, _Mapping]] = ..., stream: _Optional[_Union[TransferStream, _Mapping]] = ...) -> None: ...

class ImportEventsRequest(_message.Message):
    __slots__ = ("store_id", "records", "snapshots", "subscriptions", "streams", "starts_file")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    STARTS_FILE_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    records: _containers.RepeatedScalarFieldContainer[bytes]
    snapshots: _containers.RepeatedCompositeFieldContainer[_types_pb2.SnapshotRecord]
    subscriptions: _containers.RepeatedCompositeFieldContainer[TransferSubscription]
    streams: _containers.RepeatedCompositeFieldContainer[TransferStream]
    starts_file: bool
    def __init__(self, store_id: _Optional[str] = ..., records: _Optional[_Iterable[bytes]] = ..., snapshots: _Optional[_Iterable[_Union[_types_pb2.SnapshotRecord, _Mapping]]] = ..., subscriptions: _Optional[_Iterable[_Union[TransferSubscription, _Mapping]]] = ..., streams: _Optional[_Iterable[_Union[TransferStream, _Mapping]]] = ..., starts_file: _Optional[bool] = ...) -> None: ...

class ImportEventsResponse(_message.Message):
    __slots__ = ("last_position", "imported")
    LAST_POSITION_FIELD_NUMBER: _ClassVar[int]
    IMPORTED_FIELD_NUMBER: _ClassVar[int]
    last_position: int
    imported: int
    def __init__(self, last_position: _Optional[int] = ..., imported: _Optional[int] = ...) -> None: ...

class ScavengeRequest(_message.Message):
    __slots__ = ("store_id", "restart", "wait")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    RESTART_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    restart: bool
    wait: bool
    def __init__(self, store_id: _Optional[str] = ..., restart: _Optional[bool] = ..., wait: _Optional[bool] = ...) -> None: ...

class GetScavengeStatusRequest(_message.Message):
    __slots__ = ("store_id",)
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    def __init__(self, store_id: _Optional[str] = ...) -> None: ...

class ScavengeResponse(_message.Message):
    __slots__ = ("running", "next_position", "removed", "started_at")
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    NEXT_POSITION_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    running: bool
    next_position: int
    removed: int
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, running: _Optional[bool] = ..., next_position: _Optional[int] = ..., removed: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...
