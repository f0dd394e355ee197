import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_NODE: _ClassVar[Role]
    ROLE_GATEWAY: _ClassVar[Role]
ROLE_UNSPECIFIED: Role
ROLE_NODE: Role
ROLE_GATEWAY: Role

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Member(_message.Message):
    __slots__ = ("node_id", "address", "cluster_id", "healthy", "ejected_until", "in_flight", "failures")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    HEALTHY_FIELD_NUMBER: _ClassVar[int]
    EJECTED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    cluster_id: str
    healthy: bool
    ejected_until: _timestamp_pb2.Timestamp
    in_flight: int
    failures: int
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ..., cluster_id: _Optional[str] = ..., healthy: _Optional[bool] = ..., ejected_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., in_flight: _Optional[int] = ..., failures: _Optional[int] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("role", "node_id", "cluster_id", "version", "backend", "members", "discovery", "discovery_ok", "address")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    CLUSTER_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_FIELD_NUMBER: _ClassVar[int]
    DISCOVERY_OK_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    role: Role
    node_id: str
    cluster_id: str
    version: str
    backend: str
    members: _containers.RepeatedCompositeFieldContainer[Member]
    discovery: str
    discovery_ok: bool
    address: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., node_id: _Optional[str] = ..., cluster_id: _Optional[str] = ..., version: _Optional[str] = ..., backend: _Optional[str] = ..., members: _Optional[_Iterable[_Union[Member, _Mapping]]] = ..., discovery: _Optional[str] = ..., discovery_ok: _Optional[bool] = ..., address: _Optional[str] = ...) -> None: ...

class WatchMembersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WatchMembersResponse(_message.Message):
    __slots__ = ("change", "member")
    class Change(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        CHANGE_UNSPECIFIED: _ClassVar[WatchMembersResponse.Change]
        CHANGE_PRESENT: _ClassVar[WatchMembersResponse.Change]
        CHANGE_JOINED: _ClassVar[WatchMembersResponse.Change]
        CHANGE_LEFT: _ClassVar[WatchMembersResponse.Change]
        CHANGE_UPDATED: _ClassVar[WatchMembersResponse.Change]
    CHANGE_UNSPECIFIED: WatchMembersResponse.Change
    CHANGE_PRESENT: WatchMembersResponse.Change
    CHANGE_JOINED: WatchMembersResponse.Change
    CHANGE_LEFT: WatchMembersResponse.Change
    CHANGE_UPDATED: WatchMembersResponse.Change
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_FIELD_NUMBER: _ClassVar[int]
    change: WatchMembersResponse.Change
    member: Member
    def __init__(self, change: _Optional[_Union[WatchMembersResponse.Change, str]] = ..., member: _Optional[_Union[Member, _Mapping]] = ...) -> None: ...
