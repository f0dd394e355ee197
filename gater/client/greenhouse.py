"""The greenhouse domain of the seed's test console: event types, operators, payloads.

Owns: the 15 event types, the seven greenhouse streams, the operators, and
`generate_events` (a batch of plausible events with sortable ids and causation/correlation
ids in their metadata). Pure: randomness comes from the `random.Random` passed in.
Used by the console and `gater append --generate`, which must not depend on each other.
Must not import anything from gater but gater.ids and this package.
"""

from __future__ import annotations

import random
from typing import Any

from ..ids import uuid7
from ._values import NewEvent

__all__ = ["EVENT_TYPES", "INITIALIZED", "OPERATORS", "STREAMS", "generate_events", "payload"]

INITIALIZED = "initialized:v1"
MEASUREMENTS = ("temperature_measured:v1", "humidity_measured:v1", "light_measured:v1")
DESIRED = ("desired_temperature_set:v1", "desired_humidity_set:v1", "desired_light_set:v1")
ACTUATORS = (
    "fan_activated:v1",
    "fan_deactivated:v1",
    "light_activated:v1",
    "light_deactivated:v1",
    "heater_activated:v1",
    "heater_deactivated:v1",
    "sprinkler_activated:v1",
    "sprinkler_deactivated:v1",
)
EVENT_TYPES = (INITIALIZED, *MEASUREMENTS, *DESIRED, *ACTUATORS)
"""All 15, `initialized:v1` first; producers pick from the other 14."""

STREAMS = tuple(f"greenhouse{i}" for i in range(1, 8))
OPERATORS = ("John", "Paul", "George", "Ringo", "Jim", "Laura", "Peter")

# Ranges: temperature °C, relative humidity %, illuminance lux, actuator intensity %.
_TEMPERATURE = (-10.0, 45.0)
_HUMIDITY = (0.0, 100.0)
_LIGHT = (0, 100_000)
_DESIRED_TEMPERATURE = (10.0, 35.0)
_DESIRED_HUMIDITY = (30.0, 90.0)
_DESIRED_LIGHT = (1_000, 50_000)


def payload(event_type: str, rng: random.Random) -> dict[str, Any]:
    """A body for `event_type` in the seed's shape, with values in realistic ranges."""
    if event_type == INITIALIZED:
        return {
            "temperature": round(rng.uniform(*_TEMPERATURE), 1),
            "humidity": round(rng.uniform(*_HUMIDITY), 1),
            "light": rng.randint(*_LIGHT),
        }
    if event_type == "temperature_measured:v1":
        return {"temperature": round(rng.uniform(*_TEMPERATURE), 1)}
    if event_type == "humidity_measured:v1":
        return {"humidity": round(rng.uniform(*_HUMIDITY), 1)}
    if event_type == "light_measured:v1":
        return {"light": rng.randint(*_LIGHT)}
    if event_type == "desired_temperature_set:v1":
        return {"temperature": round(rng.uniform(*_DESIRED_TEMPERATURE), 1), "operator": rng.choice(OPERATORS)}
    if event_type == "desired_humidity_set:v1":
        return {"humidity": round(rng.uniform(*_DESIRED_HUMIDITY), 1), "operator": rng.choice(OPERATORS)}
    if event_type == "desired_light_set:v1":
        return {"light": rng.randint(*_DESIRED_LIGHT), "operator": rng.choice(OPERATORS)}
    if event_type.endswith("_deactivated:v1"):
        return {"intensity": 0}
    return {"intensity": rng.randint(1, 100)}


def generate_events(version: int, count: int, rng: random.Random) -> list[NewEvent]:
    """`count` events for a stream now at `version` (-1: new, so the first is initialized:v1).
    One correlation id per batch; each event is caused by the one before it (the first by
    the batch's correlation id), as a command handler would record them."""
    correlation_id = str(uuid7())
    cause = correlation_id
    out = []
    for i in range(count):
        event_type = INITIALIZED if version < 0 and i == 0 else rng.choice(EVENT_TYPES[1:])
        event_id = str(uuid7())
        out.append(
            NewEvent(
                event_type=event_type,
                data=payload(event_type, rng),
                metadata={"causation_id": cause, "correlation_id": correlation_id},
                event_id=event_id,
            )
        )
        cause = event_id
    return out
