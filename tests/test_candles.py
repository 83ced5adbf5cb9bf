"""decode_candles: the fast reading equals the checked one, whatever the answer looks like."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expirytrack_desktop.timeutil import IST, parse_ts
from expirytrack_desktop.upstox.candles import (
    CandleBodyError,
    CandleRows,
    candle_from_row,
    decode_candles,
)


def body(rows, **extra) -> bytes:
    return json.dumps({"status": "success", "data": {"candles": rows}, **extra}).encode()


def as_stored(batch: CandleRows) -> list[tuple]:
    """The rows as the store writes them: ISO times through SQLite's unixepoch."""
    if not batch.iso:
        return list(batch.rows)
    with closing(sqlite3.connect(":memory:")) as con:
        return [
            (con.execute("SELECT unixepoch(?)", (r[0],)).fetchone()[0], *r[1:]) for r in batch.rows
        ]


def test_a_canonical_answer_keeps_its_times_as_text_and_knows_its_days():
    rows = [
        ["2025-05-23T09:16:00+05:30", 10, 11.5, 9, 10.25, 300, 1200],
        ["2025-05-22T15:29:00+05:30", 9.5, 10, 9, 9.75, 0, 1100],
    ]
    got = decode_candles(body(rows))
    assert got.iso and got.days == {date(2025, 5, 22), date(2025, 5, 23)}
    assert got.rows[0] == ("2025-05-23T09:16:00+05:30", 10.0, 11.5, 9.0, 10.25, 300, 1200)
    assert all(type(v) is float for r in got.rows for v in r[1:5])
    assert as_stored(got) == [candle_from_row(r) for r in rows]
    one = got.in_days(date(2025, 5, 22), date(2025, 5, 22))
    assert one.rows == [got.rows[1]] and one.days == {date(2025, 5, 22)}
    assert got.in_days(date(2025, 5, 1), date(2025, 5, 31)) is got  # nothing to drop


@pytest.mark.parametrize(
    "stamp",
    [
        "2025-05-22T03:46:00Z",  # UTC, other length
        "2025-05-22T03:46:00+00:00",  # another offset, same length
        "2025-05-22 09:16:00+05:30",  # a space: accepted by both readers
        "2025-05-22T09:16:00.000+05:30",  # fractions
    ],
)
def test_other_layouts_are_read_one_by_one_to_the_same_moment(stamp):
    got = decode_candles(body([[stamp, 1, 2, 0.5, 1, 7, 0]]))
    assert as_stored(got) == [(parse_ts("2025-05-22T09:16:00+05:30"), 1.0, 2.0, 0.5, 1.0, 7, 0)]


def test_an_unknown_field_takes_the_checked_path_and_stays_exact():
    rows = [["2025-05-22T09:16:00+05:30", 1, 2, 0.5, 1, 7, 3]]
    got = decode_candles(body(rows, note="as of 2025-05-22T09:16:00+05:30"))
    assert not got.iso and got.rows == [candle_from_row(rows[0])]
    clipped = got.in_days(date(2025, 5, 23), date(2025, 5, 24))
    assert clipped.rows == []


@pytest.mark.parametrize(
    "row, why",
    [
        (["2025-02-30T09:15:00+05:30", 1, 1, 1, 1, 1, 0], "day is out of range"),
        (["2025-05-22T09:15:00", 1, 1, 1, 1, 1, 0], "without a UTC offset"),
        (["2025-05-22T09:15:00+05:30", 1, 1, 1, 1, 1.5, 0], "fractional volume"),
        (["2025-05-22T09:15:00+05:30", 1, 1, 1, 1, 1, 2.5], "fractional open interest"),
        (["2025-05-22T09:15:00+05:30", "x", 1, 1, 1, 1, 0], "could not convert"),
        (["2025-05-22T09:15:00+05:30", 1, 1, 1], "index out of range"),
    ],
)
def test_unreadable_candles_are_refused_by_position(row, why):
    good = ["2025-05-22T09:14:00+05:30", 1, 1, 1, 1, 1, 0]
    with pytest.raises(CandleBodyError, match=why) as err:
        decode_candles(body([good, row]))
    assert err.value.complete and "candle 1 " in str(err.value)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"status":"success","data":{"candles":[["2025-05-22T09:15:00+05:30",1,1,1,1,1,0]',
        b'{"status":"success","data":{"candles":[]}} trailing',
        b'{"status":"error","errors":[]}',
        b'{"status":"success","data":{}}',
        b"<html>busy</html>",
        b'{"status":"succ\xff"}',
    ],
)
def test_incomplete_or_foreign_bodies_are_not_complete_answers(raw):
    with pytest.raises(CandleBodyError) as err:
        decode_candles(raw)
    assert not err.value.complete  # the client retries these like a 5xx


OFFSETS = [timedelta(hours=5, minutes=30), timedelta(0), timedelta(hours=-4)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(1_700_000_000 // 60, 1_800_000_000 // 60),  # minute of the candle
            st.floats(0, 1e6, allow_nan=False),
            st.integers(0, 10**12),
            st.integers(0, 10**12),
            st.sampled_from(OFFSETS),
            st.booleans(),  # price written as an integer
        ),
        max_size=40,
    ),
    st.booleans(),  # an extra field in the answer
)
def test_fast_reading_equals_the_checked_reading(candles, extra):
    rows = []
    for minute, price, volume, oi, offset, as_int in candles:
        moment = datetime.fromtimestamp(minute * 60, UTC).astimezone(timezone(offset))
        p = round(price) if as_int else price
        rows.append([moment.isoformat(), p, p, p, p, volume, oi])
    got = decode_candles(body(rows, **({"meta": 1} if extra else {})))
    assert as_stored(got) == [candle_from_row(r) for r in rows]
    first_of_each: dict[int, tuple] = {}
    for r in rows:
        c = candle_from_row(r)
        first_of_each.setdefault(c[0], c)
    assert got.candles() == sorted(first_of_each.values())
    if rows:
        first = min(datetime.fromtimestamp(m * 60, IST).date() for m, *_ in candles)
        clipped = got.in_days(first, first)
        want = [candle_from_row(r) for r in rows]
        assert as_stored(clipped) == [
            c for c in want if datetime.fromtimestamp(c[0], IST).date() == first
        ]
