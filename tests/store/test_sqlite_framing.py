"""sqlite/_sql.field_1, the SQL that frames a record for the wire inside SQLite: the same bytes
as `_wire.read_response` for every length, up to the five-byte varints (the expression takes
the length apart from the record, so the long ones are checked without long records)."""

from __future__ import annotations

import sqlite3

import pytest

from gater._wire import read_response, varint
from gater.store.sqlite._sql import field_1

__all__: list[str] = []

LENGTHS = [0, 1, 127, 128, 300, 16_383, 16_384, 2**21 - 1, 2**21, 2**28 - 1, 2**28, 2**35 - 1]


@pytest.mark.parametrize("n", LENGTHS)
def test_the_head_is_protobufs_for_every_length(n: int) -> None:
    db = sqlite3.connect(":memory:")
    (framed,) = db.execute(f"SELECT CAST({field_1} AS BLOB) FROM (SELECT ? AS record, ? AS n)", (b"\x00\xff", n)).fetchone()
    assert framed == b"\x0a" + varint(n) + b"\x00\xff"


def test_a_record_with_every_byte_value_comes_out_as_it_went_in() -> None:
    record = bytes(range(256)) * 3
    db = sqlite3.connect(":memory:")
    (framed,) = db.execute(f"SELECT CAST({field_1} AS BLOB) FROM (SELECT ? AS record, length(?) AS n)", (record, record)).fetchone()
    assert framed == read_response([record])
