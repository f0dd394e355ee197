"""The console's data lifecycle, transfer and DCB entries, driven through a pseudo-terminal as a
person would, then checked through the client: delete and tombstone, metadata, redaction,
scavenge, export and import, prefix and query reads, a conditional append's conflict, and
observers and subscriptions by prefix and by query. Plus the parser of the typed selections."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gater.client import ALL, Client, NewEvent, Query
from gater.console import Selection, SelectionError, parse_selection, subscription_selector
from gater.errors import StreamDeletedError
from gater.node import NodeServer
from tests.console.screen import Screen, console

DELETE, METADATA, REDACT, SCAVENGE, EXPORT, IMPORT, EXIT = 15, 16, 17, 18, 19, 20, 21
VIEW, APPEND, OBSERVE_STREAM, SUBSCRIBE = 12, 13, 1, 10


async def answer(screen: Screen, *pairs: tuple[str, str]) -> None:
    for prompt, typed in pairs:
        await screen.expect(prompt)
        await screen.type(typed)


def _event(event_type: str, *tags: str, **data: object) -> NewEvent:
    return NewEvent(event_type, dict(data), tags=tags)


async def _all(client: Client, store: str) -> list[tuple[int, str, int, str, object]]:
    return [(e.position, e.stream_id, e.version, e.event_id, e.data) for e in await client.get_events(store, ALL)]


@pytest.mark.timeout(120)
async def test_delete_metadata_redact_scavenge_export_and_import(node: NodeServer, tmp_path: Path) -> None:
    async with await Client.connect(node.address) as client:
        await client.append_events("", "soft", [_event("planted:v1", n=n) for n in range(2)])
        await client.append_events("", "doomed", [_event("planted:v1", n=n) for n in range(3)])
        await client.append_events("", "kept", [_event("watered:v1", n=n) for n in range(5)])
        await client.append_events("", "secret", [_event("noted:v1", pin=1234), _event("noted:v1", pin=0)])

    export_file = tmp_path / "default.gater"
    async with console(node.address) as screen:
        # A soft delete, a tombstone refused, then confirmed.
        await screen.choose(DELETE)
        await answer(screen, ("Enter stream name: ", "soft"), ("Soft delete", ""))
        await screen.expect(r"Stream 'soft' soft-deleted: an append brings it back \(its last version was 1\)")
        await screen.choose(DELETE)
        await answer(screen, ("Enter stream name: ", "doomed"), ("Soft delete", "tombstone"))
        await answer(screen, (r"Tombstone stream 'doomed'\? It can never be written again\. \(y/N\): ", ""))
        await screen.expect("Not confirmed: nothing deleted.")
        await screen.choose(DELETE)
        await answer(screen, ("Enter stream name: ", "doomed"), ("Soft delete", "tombstone"), (r"\(y/N\): ", "y"))
        await screen.expect(r"Stream 'doomed' tombstoned: it can never be written again \(its last version was 2\)")

        # Writing to the tombstone: the error, what to do next, and the menu again.
        await screen.choose(APPEND)
        await answer(screen, ("Enter stream name: ", "doomed"), ("Event type", "planted:v1"), ("Data", ""), ("Tags", ""),
                     ("Condition: ", ""))  # fmt: skip
        await screen.expect(r"❌ FAILED_PRECONDITION: stream 'doomed' is tombstoned")
        await screen.expect(r"→ the stream is tombstoned for good: write to another stream")

        # Metadata: shown, then replaced.
        await screen.choose(METADATA)
        await answer(screen, ("Enter stream name: ", "kept"))
        await screen.expect(r"max_count\s+│\s+-\s+│")
        await screen.expect(r"meta_version\s+│\s+-1\s+│")
        await answer(screen, (r"Change it\? \(y/N\): ", "y"), ("max_count: ", "2"), ("max_age: ", ""),
                     ("truncate_before: ", ""), ("custom: ", '{"owner": "ops"}'))  # fmt: skip
        await screen.expect(r"Metadata of 'kept' written \(meta version 0\)")
        await screen.expect(r"max_count\s+│\s+2\s+│")
        await screen.expect(r'custom\s+│\s+\{"owner": "ops"\}\s+│')
        await screen.choose(METADATA)  # a bad value: told, nothing written
        await answer(screen, ("Enter stream name: ", "kept"), (r"Change it\? \(y/N\): ", "y"), ("max_count: ", "zero"))
        await screen.expect(r"❌ Expected a whole number >= 1 or nothing, got 'zero'")

        # Redaction, confirmed.
        await screen.choose(REDACT)
        await answer(screen, ("Enter stream name: ", "secret"), ("Version of the event to redact: ", "0"),
                     (r"Redact version 0 of 'secret'\? Its data and metadata are gone for good\. \(y/N\): ", "y"))  # fmt: skip
        await screen.expect(r'Redacted secret v0: its data and metadata now read \{"\$redacted": true\}')

        # Scavenge: the status, a start without waiting, the status again.
        await screen.choose(SCAVENGE)
        await screen.expect(r"Scavenge of 'default'")
        await answer(screen, (r"Start a scavenge now .*\(y/N\): ", "y"))
        await screen.expect(r"Scavenge of 'default' under way")
        await screen.expect(r"Running\s+┃\s+Examined below position\s+┃\s+Events removed")
        await screen.choose(SCAVENGE)
        await screen.expect(r"│\s+(🟢 yes|no)\s+│\s+\d+\s+│\s+\d+\s+│\s+\d{4}-\d\d-\d\d ")
        await answer(screen, (r"Start a scavenge now .*\(y/N\): ", ""))

        # Export, then import into a new store: progress, then the count and the rate.
        await screen.choose(EXPORT)
        await answer(screen, (r"Store to export \(default default\): ", ""), ("File to write: ", str(export_file)))
        await screen.expect(r"exporting default: [\d,]+ / [\d,]+ positions \(100%\)")
        exported = await screen.expect(r"Exported (\d+) events from 'default' to \S+ in [\d.]+ s \([\d,]+ events/s\)")
        await screen.choose(IMPORT)
        await answer(screen, ("File to read: ", str(tmp_path / "missing.gater")))
        await screen.expect(r"❌ No file at .*missing\.gater")
        (tmp_path / "notes.txt").write_text("not a transfer file\n" * 20)
        await screen.choose(IMPORT)
        await answer(screen, ("File to read: ", str(tmp_path / "notes.txt")), ("Target store", "elsewhere"))
        await screen.expect(r"❌ INVALID_ARGUMENT: file: \S+notes\.txt: is not a transfer file")
        await screen.choose(IMPORT)
        await answer(screen, ("File to read: ", str(export_file)), ("Target store", "restored"))
        await screen.expect(r"importing into restored: [\d,]+ / [\d,]+ positions \(100%\)")
        imported = await screen.expect(r"Imported (\d+) events from \S+ into 'restored' in [\d.]+ s \([\d,]+ events/s\)")
        assert imported.group(1) == exported.group(1) and int(exported.group(1)) > 0
        await screen.choose(IMPORT)  # again into the same store: it holds the whole file already
        await answer(screen, ("File to read: ", str(export_file)), ("Target store", "restored"))
        await screen.expect(r"Imported 0 events")
        await screen.choose(EXPORT)  # the copy, exported in turn: the same events
        await answer(screen, (r"Store to export", "restored"), ("File to write: ", str(tmp_path / "restored.gater")))
        again = await screen.expect(r"Exported (\d+) events from 'restored' to ")
        assert again.group(1) == exported.group(1)

        await screen.choose(EXIT)
        await screen.expect("Console shut down successfully!")

    async with await Client.connect(node.address) as client:
        assert await client.get_events("", "soft") == [] and await client.get_version("", "soft") == -1
        assert (await client.get_stream_metadata("", "doomed")).state == "tombstoned"
        with pytest.raises(StreamDeletedError):
            await client.append_events("", "doomed", [_event("planted:v1")])
        meta = await client.get_stream_metadata("", "kept")
        assert (meta.max_count, meta.max_age_s, meta.truncate_before, dict(meta.custom)) == (2, None, None, {"owner": "ops"})
        assert [e.data for e in await client.get_events("", "kept")] == [{"n": 3}, {"n": 4}]
        assert [e.data for e in await client.get_events("", "secret")] == [{"$redacted": True}, {"pin": 0}]
        status = await client.get_scavenge_status("")
        assert status.started_at is not None
        original = await _all(client, "")
        assert original and await _all(client, "restored") == original
        assert len(original) <= int(exported.group(1))


@pytest.mark.timeout(120)
async def test_prefix_and_query_reads_a_condition_conflict_and_selections_by_prefix_and_query(node: NodeServer) -> None:
    async with await Client.connect(node.address) as client:
        await client.append_events("", "order-1", [_event("placed:v1", "customer:c1", total=10)])  # position 0
        await client.append_events("", "order-2", [_event("placed:v1", "customer:c2", total=20)])  # 1
        await client.append_events("", "invoice-1", [_event("invoiced:v1", "customer:c1", total=10)])  # 2
        await client.append_events("", "orders", [_event("counted:v1", n=2)])  # 3: not in order-

    async with console(node.address) as screen:
        await screen.choose(VIEW)
        await answer(screen, ("Enter stream name", "prefix:order-"), ("Number of events to fetch", ""))
        await screen.expect(r"Query read of \$all.* \(streams order-\*\)")
        table = await screen.expect(r"(?s)Events from 'prefix:order-'.*?└")
        assert re.findall(r"│\s+(\S+)\s+│\s+0\s+│\s+placed:v1", table.group()) == ["order-1", "order-2"], table.group()

        await screen.choose(VIEW)
        await answer(screen, ("Enter stream name", "prefix:order- tags:customer:c1"), ("Number of events to fetch", ""))
        await screen.expect(r"Query read of \$all cut at head 3 \(tags customer:c1, streams order-\*\)")
        table = await screen.expect(r"(?s)Events from 'prefix:order- tags:customer:c1'.*?└")
        assert re.findall(r"│\s+(\S+)\s+│\s+0\s+│\s+placed:v1", table.group()) == ["order-1"], table.group()

        await screen.choose(VIEW)
        await answer(screen, ("Enter stream name", "type:invoiced:v1 counted:v1"), ("Number of events to fetch", ""))
        table = await screen.expect(r"(?s)Events from 'type:invoiced:v1 counted:v1'.*?└")
        assert re.findall(r"│\s+\d+\s+│\s+(\S+)\s+│", table.group()) == ["invoice-1", "orders"], table.group()

        await screen.choose(VIEW)  # a word without a value: told, no read
        await answer(screen, ("Enter stream name", "tags:"), ("Number of events to fetch", ""))
        await screen.expect(r"❌ tags: needs a value, e.g. tags:room:r1")

        # A conditional append decided on position 0 meets invoice-1 (position 2): refused.
        await screen.choose(APPEND)
        await answer(screen, ("Enter stream name: ", "order-3"), ("Event type", "placed:v1"), ("Data", "%{total: 5}"),
                     ("Tags", "customer:c1"), ("Condition: ", "tags:customer:c1"), ("after position", "0"))  # fmt: skip
        await screen.expect(r"Condition: no event with tags customer:c1 after position 0")
        await screen.expect(r"❌ Append refused: the event at position 2 matches the condition \(the store's head was 3\); nothing was written\.")
        await screen.expect(r"→ view it")
        # Decided again after the head: written.
        await screen.choose(APPEND)
        await answer(screen, ("Enter stream name: ", "order-3"), ("Event type", "placed:v1"), ("Data", "%{total: 5}"),
                     ("Tags", "customer:c1"), ("Condition: ", "customer:c1"), ("after position", "3"))  # fmt: skip
        await screen.expect(r"Appended placed:v1 to 'order-3' \(now at version 0\) at position 4")

        # Observers by prefix and by query, a persistent subscription by query.
        await screen.choose(OBSERVE_STREAM)
        await answer(screen, ("Enter stream name", "order-*"), ("Enter observer name: ", "orders"))
        await screen.expect("Observer 'orders' created for stream \"order-\\*\"")
        await screen.choose(OBSERVE_STREAM)
        await answer(screen, ("Enter stream name", "tags:customer:c2"), ("Enter observer name: ", "c2"))
        await screen.expect("Observer 'c2' created for query \"tags:customer:c2\"")
        await screen.choose(SUBSCRIBE)
        await answer(screen, ("Enter subscription name", "c1-sub"), ("Enter stream name", "tags:customer:c1"), ("Start from", ""))
        await screen.expect(r"Subscription 'c1-sub' created \(query tags:customer:c1, checkpoint")
        received = await screen.count(r"RECEIVED \['c1-sub' ([^:\s]+):", 3)
        assert received[:3] == ["order-1", "invoice-1", "order-3"], received
        await screen.choose(SUBSCRIBE)  # a subscription selects by one of them
        await answer(screen, ("Enter subscription name", "both"), ("Enter stream name", "prefix:order- tags:customer:c1"))
        await screen.expect(r"❌ a subscription selects by a prefix or by tags:/type:, not both")

        async with await Client.connect(node.address) as client:
            await client.append_events("", "invoice-2", [_event("invoiced:v1", "customer:c3")])  # neither observer's
            await client.append_events("", "order-4", [_event("placed:v1", "customer:c2", total=1)])
        await screen.count(r"SEEN \[order-4:placed:v1 \(v0\) => \{\"total\": 1\}\] ← (orders|c2)", 2)
        assert "SEEN [invoice" not in screen.text and "SEEN [orders:" not in screen.text

        await screen.choose(EXIT)
        await screen.expect("Console shut down successfully!")

    async with await Client.connect(node.address) as client:
        (placed,) = await client.get_events("", "order-3")
        assert (placed.data, placed.tags, placed.position) == ({"total": 5}, ("customer:c1",), 4)
        (sub,) = await client.get_subscriptions("")
        assert sub.name == "c1-sub" and sub.type.name == "BY_QUERY"


# -- the typed selections -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags:crop:basil room:r1", Selection(Query.of(tags=("crop:basil", "room:r1")))),
        ("type:a:v1 b:v1", Selection(Query.of(types=("a:v1", "b:v1")))),
        ("prefix:order-", Selection(None, "order-")),
        ("prefix:order-*", Selection(None, "order-")),
        ("tags:c:1 type:t prefix:o- tags:d", Selection(Query.of(types=("t",), tags=("c:1", "d")), "o-")),
        ("prefix: order- tags: x", Selection(Query.of(tags=("x",)), "order-")),
    ],
)
def test_selections_parse(text: str, expected: Selection) -> None:
    assert parse_selection(text) == expected


@pytest.mark.parametrize("text", ["greenhouse1", "tags:", "type: prefix:o-", "prefix:a- prefix:b-", "prefix:*"])
def test_bad_selections_are_refused(text: str) -> None:
    with pytest.raises(SelectionError):
        parse_selection(text)


def test_subscription_selectors() -> None:
    assert subscription_selector("greenhouse1") == {"stream": "greenhouse1"}
    assert subscription_selector("order-*") == {"stream": "order-*"}
    assert subscription_selector("prefix:order-") == {"stream": "order-*"}
    assert subscription_selector("tags:c:1") == {"query": Query.of(tags=("c:1",))}
    with pytest.raises(SelectionError):
        subscription_selector("prefix:o- type:t")
