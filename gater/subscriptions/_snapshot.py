"""The persisted form of a persistent subscription's delivery state, in every format it has had.

Owns: `SNAPSHOT_FORMAT`, `Saved` (the decoded content), `encode()` and `decode()` — JSON-able
dicts in, validated values out, older formats read as the current one. Pure: no I/O.
Must not import grpc, asyncio, gater.store, gater.node or gater.gateway.

Format 2 (written now):
    {"format": 2, "checkpoint": int, "scanned": int, "parked": [int],
     "outstanding": [[first, last, deliveries], ...], "ahead": [int]}
- every position <= "checkpoint" is done, except the outstanding ones listed;
- every position in (checkpoint, scanned] is done (acked, skipped, did not match) unless it is
  parked or outstanding — so an ack the client saw succeed stays done after a crash;
- "outstanding": the events not done yet, as runs of consecutive positions with the same
  number of deliveries so far (in flight counts as delivered), so a takeover redelivers them
  with that retry_count;
- "ahead": positions after "scanned" already done (replayed parked events finished before the
  read reached them): not to be delivered when read.
Format 1 (read only): {"format": 1, "checkpoint", "parked", "replay"}: positions after the
checkpoint were all to be read again; "replay" the replayed parked events at or below it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SNAPSHOT_FORMAT", "Saved", "decode", "encode"]

SNAPSHOT_FORMAT = 2
"""The `"format"` `encode()` writes."""


@dataclass(slots=True)
class Saved:
    """A decoded snapshot: what `PersistentState.restore` rebuilds a state from."""

    checkpoint: int = -1
    scanned: int = -1
    parked: set[int] = field(default_factory=set)
    outstanding: dict[int, int] = field(default_factory=dict)
    """position -> deliveries so far."""
    ahead: set[int] = field(default_factory=set)


def encode(
    checkpoint: int, scanned: int, parked: Iterable[int], outstanding: Mapping[int, int], ahead: Iterable[int]
) -> dict[str, Any]:
    """The JSON-able dict of format 2."""
    runs: list[list[int]] = []
    first = last = count = -2
    for position, deliveries in sorted(outstanding.items()):
        if position == last + 1 and deliveries == count:
            last = position
            continue
        if first >= 0:
            runs.append([first, last, count])
        first = last = position
        count = deliveries
    if first >= 0:
        runs.append([first, last, count])
    return {
        "format": SNAPSHOT_FORMAT,
        "checkpoint": checkpoint,
        "scanned": scanned,
        "parked": sorted(parked),
        "outstanding": runs,
        "ahead": sorted(ahead),
    }


def decode(snapshot: Mapping[str, Any]) -> Saved:
    """The content of a snapshot of any known format. Raises ValueError when it is malformed."""
    version = snapshot.get("format", 1)
    if version not in (1, 2):
        raise ValueError(f"unknown snapshot format {version!r}")
    checkpoint = snapshot.get("checkpoint", -1)
    if not _is_int(checkpoint) or checkpoint < -1:
        raise ValueError(f"checkpoint must be an int >= -1, not {checkpoint!r}")
    saved = Saved(checkpoint, checkpoint, _positions(snapshot.get("parked", ()), "parked"))
    if version == 1:
        replay = _positions(snapshot.get("replay", ()), "replay")
        if replay and max(replay) > checkpoint:
            raise ValueError("replay positions must be at or below the checkpoint")
        saved.outstanding = dict.fromkeys(replay, 0)
    else:
        scanned = snapshot.get("scanned", checkpoint)
        if not _is_int(scanned) or scanned < checkpoint:
            raise ValueError(f"scanned must be an int >= the checkpoint, not {scanned!r}")
        saved.scanned = scanned
        saved.outstanding = _runs(snapshot.get("outstanding", ()))
        saved.ahead = _positions(snapshot.get("ahead", ()), "ahead")
        if saved.ahead and min(saved.ahead) <= scanned:
            raise ValueError("ahead positions must be after scanned")
    both = saved.parked & saved.outstanding.keys()
    if both:
        raise ValueError(f"positions both parked and outstanding: {sorted(both)}")
    if saved.ahead & (saved.parked | saved.outstanding.keys()):
        raise ValueError("ahead positions must be neither parked nor outstanding")
    return saved


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positions(values: Any, name: str) -> set[int]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a list of positions")
    out = set()
    for value in values:
        if not _is_int(value) or value < 0:
            raise ValueError(f"{name}: {value!r} is not a position")
        out.add(value)
    return out


def _runs(values: Any) -> dict[int, int]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValueError("outstanding must be a list of [first, last, deliveries]")
    out: dict[int, int] = {}
    for run in values:
        if (
            not isinstance(run, list | tuple)
            or len(run) != 3
            or not all(_is_int(v) and v >= 0 for v in run)
            or run[0] > run[1]
        ):
            raise ValueError(f"outstanding: {run!r} is not [first, last, deliveries]")
        first, last, deliveries = run
        if last - first >= 10_000_000:
            raise ValueError(f"outstanding: run {run!r} is implausibly long")
        for position in range(first, last + 1):
            if position in out:
                raise ValueError(f"outstanding: position {position} listed twice")
            out[position] = deliveries
    return out
