from google.protobuf import struct_pb2 as _struct_pb2
from exesdb.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SubscriptionType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUBSCRIPTION_TYPE_BY_STREAM: _ClassVar[SubscriptionType]
    SUBSCRIPTION_TYPE_BY_EVENT_TYPE: _ClassVar[SubscriptionType]
    SUBSCRIPTION_TYPE_BY_EVENT_PATTERN: _ClassVar[SubscriptionType]
    SUBSCRIPTION_TYPE_BY_EVENT_PAYLOAD: _ClassVar[SubscriptionType]
    SUBSCRIPTION_TYPE_BY_QUERY: _ClassVar[SubscriptionType]

class NackAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NACK_ACTION_RETRY: _ClassVar[NackAction]
    NACK_ACTION_PARK: _ClassVar[NackAction]
    NACK_ACTION_SKIP: _ClassVar[NackAction]
SUBSCRIPTION_TYPE_BY_STREAM: SubscriptionType
SUBSCRIPTION_TYPE_BY_EVENT_TYPE: SubscriptionType
SUBSCRIPTION_TYPE_BY_EVENT_PATTERN: SubscriptionType
SUBSCRIPTION_TYPE_BY_EVENT_PAYLOAD: SubscriptionType
SUBSCRIPTION_TYPE_BY_QUERY: SubscriptionType
NACK_ACTION_RETRY: NackAction
NACK_ACTION_PARK: NackAction
NACK_ACTION_SKIP: NackAction

class StartFrom(_message.Message):
    __slots__ = ("origin", "revision")
    class Origin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        ORIGIN_BEGINNING: _ClassVar[StartFrom.Origin]
        ORIGIN_NOW: _ClassVar[StartFrom.Origin]
    ORIGIN_BEGINNING: StartFrom.Origin
    ORIGIN_NOW: StartFrom.Origin
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    origin: StartFrom.Origin
    revision: int
    def __init__(self, origin: _Optional[_Union[StartFrom.Origin, str]] = ..., revision: _Optional[int] = ...) -> None: ...

class SubscriptionSettings(_message.Message):
    __slots__ = ("message_timeout_ms", "max_retries", "max_in_flight")
    MESSAGE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRIES_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    message_timeout_ms: int
    max_retries: int
    max_in_flight: int
    def __init__(self, message_timeout_ms: _Optional[int] = ..., max_retries: _Optional[int] = ..., max_in_flight: _Optional[int] = ...) -> None: ...

class SaveSubscriptionRequest(_message.Message):
    __slots__ = ("store", "name", "type", "selector", "pattern", "start_from", "settings")
    STORE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    START_FROM_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    store: str
    name: str
    type: SubscriptionType
    selector: str
    pattern: _struct_pb2.Struct
    start_from: StartFrom
    settings: SubscriptionSettings
    def __init__(self, store: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[_Union[SubscriptionType, str]] = ..., selector: _Optional[str] = ..., pattern: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., start_from: _Optional[_Union[StartFrom, _Mapping]] = ..., settings: _Optional[_Union[SubscriptionSettings, _Mapping]] = ...) -> None: ...

class SaveSubscriptionResponse(_message.Message):
    __slots__ = ("subscription", "created")
    SUBSCRIPTION_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    subscription: SubscriptionInfo
    created: bool
    def __init__(self, subscription: _Optional[_Union[SubscriptionInfo, _Mapping]] = ..., created: _Optional[bool] = ...) -> None: ...

class RemoveSubscriptionRequest(_message.Message):
    __slots__ = ("store", "name")
    STORE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    store: str
    name: str
    def __init__(self, store: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class RemoveSubscriptionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSubscriptionsRequest(_message.Message):
    __slots__ = ("store",)
    STORE_FIELD_NUMBER: _ClassVar[int]
    store: str
    def __init__(self, store: _Optional[str] = ...) -> None: ...

class SubscriptionInfo(_message.Message):
    __slots__ = ("name", "type", "selector", "pattern", "settings", "checkpoint", "lag", "in_flight", "parked", "consumers")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    PARKED_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: SubscriptionType
    selector: str
    pattern: _struct_pb2.Struct
    settings: SubscriptionSettings
    checkpoint: int
    lag: int
    in_flight: int
    parked: int
    consumers: int
    def __init__(self, name: _Optional[str] = ..., type: _Optional[_Union[SubscriptionType, str]] = ..., selector: _Optional[str] = ..., pattern: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., settings: _Optional[_Union[SubscriptionSettings, _Mapping]] = ..., checkpoint: _Optional[int] = ..., lag: _Optional[int] = ..., in_flight: _Optional[int] = ..., parked: _Optional[int] = ..., consumers: _Optional[int] = ...) -> None: ...

class ListSubscriptionsResponse(_message.Message):
    __slots__ = ("subscriptions",)
    SUBSCRIPTIONS_FIELD_NUMBER: _ClassVar[int]
    subscriptions: _containers.RepeatedCompositeFieldContainer[SubscriptionInfo]
    def __init__(self, subscriptions: _Optional[_Iterable[_Union[SubscriptionInfo, _Mapping]]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("store", "type", "selector", "pattern", "subscription_name", "start_from", "max_batch", "heartbeat_ms", "json")
    STORE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_NAME_FIELD_NUMBER: _ClassVar[int]
    START_FROM_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    store: str
    type: SubscriptionType
    selector: str
    pattern: _struct_pb2.Struct
    subscription_name: str
    start_from: StartFrom
    max_batch: int
    heartbeat_ms: int
    json: bool
    def __init__(self, store: _Optional[str] = ..., type: _Optional[_Union[SubscriptionType, str]] = ..., selector: _Optional[str] = ..., pattern: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., subscription_name: _Optional[str] = ..., start_from: _Optional[_Union[StartFrom, _Mapping]] = ..., max_batch: _Optional[int] = ..., heartbeat_ms: _Optional[int] = ..., json: _Optional[bool] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("confirmation", "events", "caught_up", "checkpoint", "heartbeat")
    CONFIRMATION_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    confirmation: SubscriptionConfirmation
    events: EventBatch
    caught_up: CaughtUp
    checkpoint: Checkpoint
    heartbeat: Heartbeat
    def __init__(self, confirmation: _Optional[_Union[SubscriptionConfirmation, _Mapping]] = ..., events: _Optional[_Union[EventBatch, _Mapping]] = ..., caught_up: _Optional[_Union[CaughtUp, _Mapping]] = ..., checkpoint: _Optional[_Union[Checkpoint, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class SubscriptionConfirmation(_message.Message):
    __slots__ = ("subscription_name", "consumer_id", "node_id")
    SUBSCRIPTION_NAME_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_ID_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    subscription_name: str
    consumer_id: str
    node_id: str
    def __init__(self, subscription_name: _Optional[str] = ..., consumer_id: _Optional[str] = ..., node_id: _Optional[str] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ("events",)
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[_types_pb2.EventRecord]
    def __init__(self, events: _Optional[_Iterable[_Union[_types_pb2.EventRecord, _Mapping]]] = ...) -> None: ...

class CaughtUp(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class Checkpoint(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("position",)
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class AckEventRequest(_message.Message):
    __slots__ = ("store", "subscription_name", "positions")
    STORE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_NAME_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    store: str
    subscription_name: str
    positions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, store: _Optional[str] = ..., subscription_name: _Optional[str] = ..., positions: _Optional[_Iterable[int]] = ...) -> None: ...

class AckEventResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NackEventRequest(_message.Message):
    __slots__ = ("store", "subscription_name", "positions", "action", "reason")
    STORE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_NAME_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    store: str
    subscription_name: str
    positions: _containers.RepeatedScalarFieldContainer[int]
    action: NackAction
    reason: str
    def __init__(self, store: _Optional[str] = ..., subscription_name: _Optional[str] = ..., positions: _Optional[_Iterable[int]] = ..., action: _Optional[_Union[NackAction, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class NackEventResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReplayParkedEventsRequest(_message.Message):
    __slots__ = ("store", "subscription_name")
    STORE_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIPTION_NAME_FIELD_NUMBER: _ClassVar[int]
    store: str
    subscription_name: str
    def __init__(self, store: _Optional[str] = ..., subscription_name: _Optional[str] = ...) -> None: ...

class ReplayParkedEventsResponse(_message.Message):
    __slots__ = ("replayed",)
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    replayed: int
    def __init__(self, replayed: _Optional[int] = ...) -> None: ...
