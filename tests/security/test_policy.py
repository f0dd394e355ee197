"""The authorization core: roles per principal, rules per role, deny by default."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gater.security.policy import (
    ANONYMOUS,
    Operation,
    PolicyError,
    Principal,
    allow_all,
    load_policy,
    parse_policy,
)

POLICY = """
[principals]
"key:billing" = ["billing"]
"jwt:alice" = ["admin"]
"*" = ["reader"]

[roles.admin]
rules = [{ operations = ["*"] }]

[roles.billing]
rules = [
  { stores = ["default"], streams = ["billing-*", "invoices"], operations = ["read", "append", "subscribe"] },
]

[roles.reader]
rules = [{ stores = ["public"], streams = ["$all"], operations = ["read", "subscribe"] }]
"""


@pytest.fixture
def policy(tmp_path: Path):
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    return load_policy(path)


BILLING = Principal("key:billing")
ALICE = Principal("jwt:alice")
BOB = Principal("jwt:bob")


@pytest.mark.parametrize(
    ("who", "operation", "store", "stream", "allowed"),
    [
        (BILLING, "append", "default", "billing-42", True),
        (BILLING, "append", "default", "invoices", True),
        (BILLING, "append", "default", "invoices-2", False),  # exact name, not a prefix
        (BILLING, "append", "default", "orders-1", False),
        (BILLING, "append", "other", "billing-42", False),
        (BILLING, "read", "default", "$all", False),  # $all needs its own permission
        (BILLING, "store_admin", "default", None, False),
        (BILLING, "read", "default", None, True),  # listing: some streams are readable
        (BILLING, "read", "public", "$all", True),  # every authenticated principal reads public
        (ALICE, "store_admin", "anything", None, True),
        (ALICE, "read", "default", "$audit", True),
        (BOB, "append", "public", "x", False),
        (BOB, "read", "public", "x", True),
        (ANONYMOUS, "read", "public", "x", False),  # "*" is for authenticated principals only
        (BILLING, "read", "default", "$audit", False),  # reserved names match only themselves
    ],
)
def test_decisions(policy, who, operation, store, stream, allowed) -> None:
    assert policy.allows(who, operation, store, stream) is allowed


def test_scope_filters_listings_and_subscriptions(policy) -> None:
    scope = policy.scope(BILLING, Operation.SUBSCRIBE, "default")
    assert not scope.everything and scope.allows("billing-1") and scope.allows("invoices")
    assert not scope.allows("orders-1") and not scope.allows("$all")
    assert policy.scope(Principal("jwt:bob"), Operation.READ, "public").everything
    assert policy.scope(ANONYMOUS, Operation.READ, "default").nothing


def test_roles_from_the_credential_count(policy) -> None:
    carol = Principal("jwt:carol", frozenset({"admin"}))
    assert policy.allows(carol, "store_admin", "x")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[principals]\n'a' = ['nope']\n", "not defined"),
        ("[roles.r]\nrules = [{ operations = ['fly'] }]\n", "unknown \\['fly'\\]"),
        ("[roles.r]\nrules = [{ stores = ['x'] }]\n", "`operations` is required"),
        ("[users]\n", "unknown sections"),
        ("[roles.r]\nrules = [{ operations = ['read'], streams = [1] }]\n", "non-empty strings"),
    ],
)
def test_bad_policies_say_what_and_where(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=says):
        load_policy(path)


def test_unreadable_policy(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("[principals\n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(tmp_path / "bad.toml")


names = st.text(alphabet="abc-*$", min_size=1, max_size=6)


@given(stream=names, operation=st.sampled_from([o.value for o in Operation]))
def test_no_rule_means_no(stream: str, operation: str) -> None:
    empty = parse_policy({})
    assert not empty.allows(Principal("jwt:x"), operation, "default", stream)
    assert allow_all().allows(Principal("jwt:x"), operation, "default", stream)
    assert allow_all().allows(ANONYMOUS, operation, "default", stream)


@given(prefix=st.text(alphabet="ab-", min_size=1, max_size=4), rest=st.text(alphabet="ab-", max_size=4))
def test_prefix_rules_match_exactly_their_prefix(prefix: str, rest: str) -> None:
    policy = parse_policy(
        {"principals": {"p": ["r"]}, "roles": {"r": {"rules": [{"operations": ["read"], "streams": [prefix + "*"]}]}}}
    )
    assert policy.allows(Principal("p"), "read", "s", prefix + rest)
    assert not policy.allows(Principal("p"), "read", "s", "z" + prefix + rest)
