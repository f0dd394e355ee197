"""`gater console` driven through a pseudo-terminal as a person would, plus the pattern
parser and the greenhouse generator it relies on."""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import re

import pytest
from rich.console import Console

from gater.client import Client
from gater.console import EVENT_TYPES, OPERATORS, PatternError, generate_events, parse_pattern
from gater.console._io import ConsoleIO
from gater.errors import PermissionDeniedError, UnavailableError
from gater.node import NodeServer
from tests.console.screen import console


@pytest.mark.timeout(120)
async def test_a_session_with_producers_a_john_observer_and_a_subscription(node: NodeServer) -> None:
    async with console(node.address) as screen:
        await screen.expect("ExESDB Interactive Test Console Started!")
        menu = await screen.expect(r"(?s)Observers:.*21\. Exit Console")
        assert len(re.findall(r"^\s+\d+\. ", menu.group(), re.M)) == 21
        assert re.search(r"(?s)Data Lifecycle:\s+15\. Delete a Stream.*20\. Import a File into a Store", menu.group())

        # Producers: three of them, 20 events per append, every ~100 ms.
        await screen.choose(7)
        for prompt, answer in (("Number of producers", "3"), ("Events per append", "20"), ("Milliseconds between appends", "100")):
            await screen.expect(prompt)
            await screen.type(answer)
        await screen.expect("Started 3 producers")
        await screen.count(r"APPENDED \[20 event\(s\) to default:greenhouse\d\.v\(\d+\)\]", 3)

        # A payload observer typed in the seed's map syntax.
        await screen.choose(3)
        await screen.expect("Enter observer name: ")
        await screen.type("johns")
        await screen.expect("Pattern: ")
        await screen.type('%{operator: "John"}')
        await screen.expect("Observer 'johns' created")
        seen = await screen.count(r"SEEN \[(.*?)\] ← johns", 3)
        assert all(re.fullmatch(r'greenhouse\d:desired_\w+_set:v1 \(v\d+\) => \{.*"operator": "John"\}', s) for s in seen), seen
        assert len(re.findall(r"SEEN \[", screen.text)) == len(seen)  # only John's events, nothing else

        await screen.choose(4)
        await screen.expect(r"johns\s+│\s+by_event_payload\s+│\s+\{\"operator\": \"John\"\}\s+│\s+\d+\s+│\s+🟢 Running")
        await screen.choose(9)
        for n in (1, 2, 3):
            await screen.expect(rf"greenhouse{n}\s+│\s+20\s+│\s+100\s+│")

        # A persistent subscription from the beginning of greenhouse1: it receives and acks.
        await screen.choose(10)
        for prompt, answer in (("Enter subscription name", "audit"), ("Enter stream name", "greenhouse1"), ("Start from", "")):
            await screen.expect(prompt)
            await screen.type(answer)
        await screen.expect("Subscription 'audit' created")
        await screen.count(r"RECEIVED \['audit' greenhouse1:initialized:v1 \(v0\) => \{\"temperature\": ", 1)
        await screen.choose(11)
        await screen.expect(r"audit\s+│\s+by_stream greenhouse1\s+│")

        # Stop things, look at data, append by hand, ask for the cluster status.
        await screen.choose(6)
        await screen.expect("Enter observer name to stop: ")
        await screen.type("johns")
        await screen.expect("Observer 'johns' stopped")
        await screen.choose(8)
        await screen.expect(r"Enter stream ID to stop producer \(or 'all'\): ")
        await screen.type("all")
        for n in (1, 2, 3):
            await screen.expect(rf"Producer for 'greenhouse{n}' stopped \(\d+ events appended\)")
        await screen.choose(9)
        await screen.expect("No active producers")

        await screen.choose(12)
        await screen.expect("Enter stream name")
        await screen.type("greenhouse2")
        await screen.expect("Number of events to fetch")
        await screen.type("3")
        await screen.expect(r"0\s+│\s+greenhouse2\s+│\s+0\s+│\s+initialized:v1")

        await screen.choose(13)
        await screen.expect("Enter stream name: ")
        await screen.type("manual")
        await screen.expect("Event type")
        await screen.type("temperature_measured:v1")
        await screen.expect("Data")
        await screen.type('%{temperature: 21.5, operator: "John"}')
        await screen.expect("Tags")
        await screen.type("room:r1 crop:basil")
        await screen.expect("Condition: ")
        await screen.type("")  # none
        await screen.expect(r"Appended temperature_measured:v1 to 'manual' \(now at version 0\) at position \d+")

        await screen.choose(12)  # a query read by tag
        await screen.expect("Enter stream name")
        await screen.type("tags:crop:basil")
        await screen.expect("Number of events to fetch")
        await screen.type("")
        await screen.expect(r"Query read of \$all cut at head \d+")
        await screen.expect(r"manual\s+│\s+0\s+│\s+temperature_measured:v1\s+│\s+crop:basil\s+room:r1")

        await screen.choose(14)
        await screen.expect(r"Role: node\s+Node: \S+")
        await screen.expect(re.escape(node.address))

        await screen.choose(99)
        await screen.expect("Invalid choice")
        await screen.expect("→ type a number from 1 to 21")  # what to do next, below the error

        await screen.choose(21)
        await screen.expect("Stopped subscriber: audit")
        await screen.expect("Console shut down successfully!")
        assert await asyncio.wait_for(screen.proc.wait(), 20) == 0

    async with await Client.connect(node.address) as client:
        (manual,) = await client.get_events("", "manual")
        assert (manual.event_type, manual.data) == ("temperature_measured:v1", {"temperature": 21.5, "operator": "John"})
        assert manual.tags == ("crop:basil", "room:r1")
        (audit,) = await client.get_subscriptions("")
        assert audit.name == "audit" and audit.checkpoint >= 0  # it acked what it received


@pytest.mark.timeout(60)
async def test_the_prompt_stays_usable_while_producers_print(node: NodeServer) -> None:
    async with console(node.address) as screen:
        await screen.choose(7)
        for prompt, answer in (("Number of producers", "3"), ("Events per append", "1"), ("Milliseconds between appends", "20")):
            await screen.expect(prompt)
            await screen.type(answer)
        await screen.expect("Started 3 producers")
        await screen.expect(r"Select an option \(1-21\): ")
        await screen.keys("1")  # half typed while the producers go on printing
        await screen.count(r"APPENDED \[", 30)
        # Once the workers' lines are drawn, the prompt is drawn again below them (a moment
        # later): wait for that; a prompt left above the printed lines never comes back down.
        await screen.until(lambda: screen.bottom_line().endswith("Select an option (1-21): 1"))
        await screen.type("")
        await screen.expect("Creating Observer by Stream")


@pytest.mark.timeout(60)
async def test_the_streams_offered_are_the_stores(node: NodeServer) -> None:
    async with await Client.connect(node.address) as client:
        await client.append_events("", "orchard-9", [{"event_type": "planted:v1", "data": {}}])
    async with console(node.address) as screen:
        await screen.choose(1)
        offered = await screen.expect(r"(?s)Available streams:(.*?)Enter stream name")
        assert "orchard-9" in offered.group(1) and "greenhouse1" not in offered.group(1), offered.group(1)
        await screen.type("orchard-9")
        await screen.expect("Enter observer name: ")
        await screen.type("trees")
        await screen.expect("Observer 'trees' created")


@pytest.mark.timeout(60)
async def test_end_of_input_shuts_down_cleanly(node: NodeServer) -> None:
    async with console(node.address) as screen:
        await screen.expect(r"Select an option \(1-21\): ")
        os.write(screen.master, b"\x04")  # Ctrl-D on an empty line: end of input
        await screen.expect("Console shut down successfully!")
        assert await asyncio.wait_for(screen.proc.wait(), 20) == 0


# -- the pieces --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('%{operator: "John"}', {"operator": "John"}),
        ("%{intensity: _}", {"intensity": "_"}),
        ('{"operator": "John"}', {"operator": "John"}),
        ("%{}", {}),
        ("%{a: %{b: [1, -2.5, 1_000, 1e3, true, false, nil, :on]}}", {"a": {"b": [1, -2.5, 1000, 1000.0, True, False, None, "on"]}}),
        ('%{"with space" => 1, :atom => "x", "quoted": \'single\'}', {"with space": 1, "atom": "x", "quoted": "single"}),
        (r'%{msg: "say \"hi\"\n"}', {"msg": 'say "hi"\n'}),
    ],
)
def test_patterns_parse(text: str, expected: dict) -> None:
    assert parse_pattern(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "%{operator: John}",  # unquoted string
        'File.rm!("/")',  # code is never run, only rejected
        "System.cmd(\"sh\", [])",
        "%{a: 1",
        "%{a 1}",
        '["not", "a", "map"]',
        "%{a: 1} extra",
        "{not json}",
    ],
)
def test_bad_patterns_are_rejected_with_a_position(text: str) -> None:
    with pytest.raises(PatternError) as caught:
        parse_pattern(text)
    assert "column" in str(caught.value)


def test_greenhouse_events_are_plausible() -> None:
    rng = random.Random(7)
    assert len(EVENT_TYPES) == 15 and EVENT_TYPES[0] == "initialized:v1"
    events = generate_events(-1, 500, rng)
    assert events[0].event_type == "initialized:v1"
    assert {e.event_type for e in events[1:]} == set(EVENT_TYPES[1:])
    for e in events:
        d = e.data
        if "temperature" in d:
            assert -10 <= d["temperature"] <= 45
        if "humidity" in d:
            assert 0 <= d["humidity"] <= 100
        if "light" in d:
            assert 0 <= d["light"] <= 100_000
        if "intensity" in d:
            assert 0 <= d["intensity"] <= 100
        if "operator" in d:
            assert d["operator"] in OPERATORS and e.event_type.startswith("desired_")
    # Sortable ids; one correlation id per batch; each event caused by the one before it.
    assert [e.event_id for e in events] == sorted(e.event_id for e in events)
    assert len({e.metadata["correlation_id"] for e in events}) == 1
    assert all(b.metadata["causation_id"] == a.event_id for a, b in zip(events, events[1:], strict=False))
    assert generate_events(4, 3, rng)[0].event_type != "initialized:v1"
    json.dumps([e.data for e in events])  # plain JSON


def test_a_stopped_background_task_says_why_and_what_to_do_next() -> None:
    out = io.StringIO()
    screen = ConsoleIO(None, "", Console(file=out, width=200, color_system=None), io.StringIO(), None)  # type: ignore[arg-type]
    shown = screen.stopped("Observer 'johns'", UnavailableError("no healthy node"), "create it again (Create Observer)")
    assert shown == "UNAVAILABLE: no healthy node"
    # The error's own next step when it has one, else how to start the task anew.
    screen.stopped("Producer 'greenhouse1'", PermissionDeniedError("may not append"), "start it again (Start Producers)")
    lines = out.getvalue().splitlines()
    assert lines == [
        "💀 Observer 'johns' stopped: UNAVAILABLE: no healthy node",
        "   → check that the server runs (Get Cluster Status) and try again",
        "💀 Producer 'greenhouse1' stopped: PERMISSION_DENIED: may not append",
        "   → start it again (Start Producers)",
    ]
