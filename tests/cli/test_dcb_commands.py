"""`gater append --tag / --fail-if-* --after` and `gater read --type/--tag` as subprocesses
against a real node: the course-subscription example of docs/dcb.md, exit code 3 on a failed
condition."""

from __future__ import annotations

import pytest

from gater.node import NodeServer
from tests.cli.test_client_commands import gater

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def addr(node: NodeServer) -> str:
    return node.address


async def test_course_subscription_from_the_command_line(addr: str) -> None:
    r = await gater("append", "course-c1", "--type", "course_defined", "--data", '{"capacity": 1}',
                    "--tag", "course:c1", addr=addr)  # fmt: skip
    assert r.rc == 0, r
    r = await gater("read", "--type", "student_subscribed", "--tag", "course:c1", addr=addr)
    assert r.rc == 0, r
    assert r.lines == [{"head": 0}]
    subscribe = ["--type", "student_subscribed", "--tag", "course:c1",
                 "--fail-if-type", "student_subscribed", "--fail-if-tag", "course:c1", "--after", "0"]  # fmt: skip
    r = await gater("append", "student-s1", *subscribe, "--tag", "student:s1", addr=addr)
    assert r.rc == 0, r
    assert r.lines[0]["position"] == 1
    r = await gater("append", "student-s2", *subscribe, "--tag", "student:s2", addr=addr)
    assert r.rc == 3, r
    assert r.error["error"] == "FAILED_PRECONDITION"
    assert (r.error["conflicting_position"], r.error["head"]) == (1, 1)
    r = await gater("read", "--tag", "course:c1", addr=addr)
    *events, head = r.lines
    assert [(e["position"], e["event_type"], e.get("tags")) for e in events] == [
        (0, "course_defined", ["course:c1"]), (1, "student_subscribed", ["course:c1", "student:s1"])
    ]
    assert head == {"head": 1}


async def test_tags_from_json_lines_and_usage_errors(addr: str) -> None:
    lines = '{"event_type": "t", "data": {}, "tags": ["a:1", "b:2"]}\n{"event_type": "t", "data": {}}\n'
    assert (await gater("append", "s", addr=addr, stdin=lines)).rc == 0
    r = await gater("read", "$all", "--tag", "b:2", addr=addr)
    assert [line.get("tags") for line in r.lines] == [["a:1", "b:2"], None]
    assert (await gater("read", "s", "--tag", "a:1", addr=addr)).rc == 1
    assert (await gater("read", addr=addr)).rc == 1
    assert (await gater("append", "s", "--type", "t", "--tag", "bad tag", addr=addr)).rc == 1


async def test_subscribe_by_tag(addr: str) -> None:
    assert (await gater("append", "s", "--type", "t", "--tag", "k:1", addr=addr)).rc == 0
    assert (await gater("append", "s", "--type", "u", "--tag", "k:1", addr=addr)).rc == 0
    r = await gater("subscribe", "--tag", "k:1", "--type", "u", "--limit", "1", addr=addr)
    assert r.rc == 0, r
    assert [(e["position"], e["event_type"]) for e in r.lines] == [(1, "u")]


async def test_read_by_prefix_and_since(addr: str) -> None:
    for stream in ("order-1", "orders", "order-2"):
        assert (await gater("append", stream, "--type", "placed", addr=addr)).rc == 0
    r = await gater("read", "--prefix", "order-", addr=addr)
    assert r.rc == 0, r
    *events, head = r.lines
    assert ([e["stream_id"] for e in events], head) == (["order-1", "order-2"], {"head": 2})
    r = await gater("read", "--prefix", "order-*", "--since", events[1]["created"], "--backward", addr=addr)
    assert [e["position"] for e in r.lines[:-1]] == [2, 0]
    r = await gater("read", "--prefix", "ord", "--since", "2000-01-01T00:00:00Z", "--type", "placed", addr=addr)
    assert [e["position"] for e in r.lines[:-1]] == [0, 1, 2]
    r = await gater("read", "--since", "9999-12-31T00:00:00+00:00", addr=addr)
    assert r.lines == [{"head": 2}]
    assert (await gater("read", "--since", "2026-11-30T10:00:00", addr=addr)).rc != 0  # no zone
    assert (await gater("read", "--since", "yesterday", addr=addr)).rc != 0
    assert (await gater("read", "s", "--prefix", "order-", addr=addr)).rc != 0
    r = await gater("read", "--prefix", "a*b", addr=addr)
    assert r.rc == 1 and "stream_prefix" in r.error["message"], r
