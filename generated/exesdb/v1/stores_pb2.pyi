import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
