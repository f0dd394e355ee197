"""Authorization: who may do what, decided by a pure function of a policy and a request.

Owns: `Policy` (parsed from a TOML policy file: principals → roles, roles → rules), the
`Operation` names, `Principal`, and the decisions `Policy.allows` and `Policy.scope`. No I/O
here except `load_policy`, which reads a file; no clock, no grpc.
Must not import gater.store, gater.subscriptions, gater.node or gater.gateway.

The rules, deny by default:
- A principal's roles are the ones the policy gives its name (`[principals]`), the ones given
  to every authenticated principal (`"*"`), and any its credential carries (a JWT claim).
- A rule allows `operations` on `stores` and `streams`. Stores are names or "*". Streams are
  exact ids, prefixes ending in "*" ("orders-*"), "*" (every stream and `$all`), or "$all"
  (reading or subscribing across the whole store, which implies each stream). Other names
  starting with "$" are reserved: they match only themselves or "*".
- An operation on a store without a stream (listing, status, store administration) needs a
  rule for that store, whatever its streams.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "ALL_STREAM",
    "ANONYMOUS",
    "Operation",
    "Policy",
    "PolicyError",
    "Principal",
    "Rule",
    "Scope",
    "allow_all",
    "load_policy",
    "parse_policy",
    "roles_from_claim",
]

ALL_STREAM = "$all"


class Operation(enum.StrEnum):
    """What a call does, as policies name it."""

    READ = "read"
    """ReadEvents, GetVersion, ListStreams, GetStreamMetadata, GetStoreStatus."""
    APPEND = "append"
    """AppendEvents."""
    STREAM_ADMIN = "stream_admin"
    """DeleteStream, SetStreamMetadata, RedactEvent (the stream is the one named)."""
    SUBSCRIBE = "subscribe"
    """Subscribe (transient and persistent), AckEvent, NackEvent, ListSubscriptions."""
    SUBSCRIPTION_ADMIN = "subscription_admin"
    """SaveSubscription, RemoveSubscription, ReplayParkedEvents."""
    SNAPSHOT = "snapshot"
    """Record, read, delete and list snapshots (the stream is the snapshot's stream_uuid)."""
    STORE_ADMIN = "store_admin"
    """CreateStore, RemoveStore, GetStoreConfig, Scavenge, GetScavengeStatus."""
    CLUSTER_READ = "cluster_read"
    """Cluster.GetStatus, Cluster.WatchMembers."""
    AUDIT = "audit"
    """Reading the audit log (the reserved store `_audit`) of administrative operations."""
    PEER = "peer"
    """Act for the principal a gateway names (gateways and nodes of the cluster)."""


class PolicyError(ValueError):
    """A policy file that cannot be used; the message says where and what."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, as authentication found them."""

    name: str
    """"key:<id>", "jwt:<subject>", "cert:<common name>", "secret:cluster" or "anonymous"."""
    roles: frozenset[str] = frozenset()
    """Roles the credential itself carries (a JWT claim); the policy adds its own."""

    @property
    def anonymous(self) -> bool:
        return self.name == "anonymous"


ANONYMOUS = Principal("anonymous")
"""The principal of a call that carries no credentials."""


@dataclass(frozen=True, slots=True)
class Rule:
    operations: frozenset[str]
    stores: tuple[str, ...] = ("*",)
    streams: tuple[str, ...] = ("*",)

    def covers(self, operation: str, store: str) -> bool:
        return (operation in self.operations or "*" in self.operations) and (
            "*" in self.stores or store in self.stores
        )


def _stream_matches(pattern: str, stream: str) -> bool:
    if pattern == "*":
        return True
    if pattern == ALL_STREAM and not stream.startswith("$"):
        return True  # who may read every event in order may read each stream of them
    if stream.startswith("$") or pattern.startswith("$"):
        return pattern == stream  # reserved names only match themselves
    if pattern.endswith("*"):
        return stream.startswith(pattern[:-1])
    return pattern == stream


@dataclass(frozen=True, slots=True)
class Scope:
    """The streams of one store a principal may use for one operation."""

    everything: bool
    """True: every stream and `$all` (no filtering needed)."""
    patterns: tuple[str, ...] = ()

    @property
    def nothing(self) -> bool:
        return not self.everything and not self.patterns

    def allows(self, stream: str) -> bool:
        return self.everything or any(_stream_matches(p, stream) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class Policy:
    """Roles per principal and rules per role; see the module docstring."""

    principals: Mapping[str, frozenset[str]] = field(default_factory=dict)
    roles: Mapping[str, tuple[Rule, ...]] = field(default_factory=dict)

    def roles_of(self, principal: Principal) -> frozenset[str]:
        given = set(principal.roles) | set(self.principals.get(principal.name, ()))
        if not principal.anonymous:
            given |= self.principals.get("*", frozenset())
        return frozenset(given)

    def _rules(self, principal: Principal, operation: str, store: str) -> list[Rule]:
        return [
            rule
            for role in sorted(self.roles_of(principal))
            for rule in self.roles.get(role, ())
            if rule.covers(operation, store)
        ]

    def allows(self, principal: Principal, operation: str, store: str, stream: str | None = None) -> bool:
        """May `principal` do `operation` on `stream` of `store` (on the store as a whole when
        `stream` is None)?"""
        rules = self._rules(principal, operation, store)
        if stream is None:
            return bool(rules)
        return any(_stream_matches(p, stream) for rule in rules for p in rule.streams)

    def scope(self, principal: Principal, operation: str, store: str) -> Scope:
        """The streams of `store` the principal may use for `operation`: what listings and
        subscriptions across streams are filtered to."""
        patterns: list[str] = []
        for rule in self._rules(principal, operation, store):
            if "*" in rule.streams or ALL_STREAM in rule.streams:
                return Scope(everything=True)
            patterns.extend(p for p in rule.streams if p not in patterns)
        return Scope(everything=False, patterns=tuple(patterns))


_OPERATIONS = frozenset(o.value for o in Operation) | {"*"}


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{where}: must be a list of non-empty strings")
    return tuple(value)


def parse_policy(data: Mapping[str, Any], source: str = "policy") -> Policy:
    """A Policy from the parsed TOML document (see docs/security.md for the format)."""
    unknown = set(data) - {"principals", "roles"}
    if unknown:
        raise PolicyError(f"{source}: unknown sections {sorted(unknown)} (expected [principals] and [roles.NAME])")
    principals_raw = data.get("principals", {})
    if not isinstance(principals_raw, Mapping):
        raise PolicyError(f"{source}: [principals] must be a table of name = [roles]")
    principals = {
        name: frozenset(_strings(roles, f"{source}: principals.{name}")) for name, roles in principals_raw.items()
    }
    roles_raw = data.get("roles", {})
    if not isinstance(roles_raw, Mapping):
        raise PolicyError(f"{source}: [roles] must hold one table per role")
    roles: dict[str, tuple[Rule, ...]] = {}
    for role, body in roles_raw.items():
        where = f"{source}: roles.{role}"
        if not isinstance(body, Mapping) or set(body) - {"rules"}:
            raise PolicyError(f"{where}: a role is a table with `rules = [{{...}}, ...]`")
        rules = []
        for i, raw in enumerate(body.get("rules", [])):
            at = f"{where}.rules[{i}]"
            if not isinstance(raw, Mapping) or set(raw) - {"operations", "stores", "streams"}:
                raise PolicyError(f"{at}: a rule has `operations`, and optionally `stores` and `streams`")
            if "operations" not in raw:
                raise PolicyError(f"{at}: `operations` is required")
            operations = frozenset(_strings(raw["operations"], f"{at}.operations"))
            bad = operations - _OPERATIONS
            if bad:
                raise PolicyError(f"{at}.operations: unknown {sorted(bad)}; known: {sorted(_OPERATIONS)}")
            rules.append(
                Rule(
                    operations=operations,
                    stores=_strings(raw.get("stores", ["*"]), f"{at}.stores"),
                    streams=_strings(raw.get("streams", ["*"]), f"{at}.streams"),
                )
            )
        roles[role] = tuple(rules)
    undefined = {r for rs in principals.values() for r in rs} - set(roles)
    if undefined:
        raise PolicyError(f"{source}: principals name roles that are not defined: {sorted(undefined)}")
    return Policy(principals, roles)


def load_policy(path: Path) -> Policy:
    """Reads and checks a TOML policy file; PolicyError says what is wrong and where."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise PolicyError(f"cannot read policy file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise PolicyError(f"policy file {path} is not valid TOML: {e}") from None
    return parse_policy(data, str(path))


_ALLOW_ALL = Policy({"*": frozenset({"all"}), "anonymous": frozenset({"all"})}, {"all": (Rule(frozenset({"*"})),)})


def allow_all() -> Policy:
    """The policy when authorization is off: every principal may do everything (one object:
    `policy is allow_all()` tells a caller needs no filtering)."""
    return _ALLOW_ALL


def roles_from_claim(value: Any) -> Iterable[str]:
    """Roles from a JWT claim: a list of strings or a space-separated string (OAuth scopes)."""
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return ()
