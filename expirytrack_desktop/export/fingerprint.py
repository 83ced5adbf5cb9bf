"""What the stored candles of each (underlying, expiry) look like now, in a few numbers:
how the Parquet mirror and "only what is new" exports tell a changed expiry from one they
already wrote (new candles, corrected candles, new contracts), without reading the rows."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from expirytrack_desktop.export.query import SelectedContract

Partitions = dict[tuple[str, str], tuple[list[SelectedContract], list[Any]]]


def contract_prints(
    conn: sqlite3.Connection, contracts: Sequence[SelectedContract], iv: int, lo: int, hi: int
) -> dict[int, list[Any]]:
    """contract id -> [rows, first ts, last ts, price sum, volume sum, oi sum] (one grouped
    query; contracts without candles in ``[lo, hi)`` are absent)."""
    sql = """
        SELECT contract_id, count(*), min(ts), max(ts), total(open + high + low + close),
               total(volume), total(oi)
        FROM candle_rupees WHERE contract_id IN (SELECT value FROM json_each(?)) AND interval = ?
          AND ts >= ? AND ts < ? GROUP BY contract_id"""
    ids = json.dumps([c.id for c in contracts])
    return {r[0]: list(r[1:]) for r in conn.execute(sql, (ids, iv, lo, hi))}


def _key(c: SelectedContract) -> tuple[str, str]:
    return (c.underlying, c.expiry)


def partition_prints(
    conn: sqlite3.Connection, contracts: Sequence[SelectedContract], iv: int, lo: int, hi: int
) -> Partitions:
    """(underlying symbol, expiry) -> (its contracts by symbol, with their row counts; its
    fingerprint: the interval and each contract's symbol, exchange and figures), a
    JSON-ready list to compare with the one kept from an earlier run."""
    prints = contract_prints(conn, contracts, iv, lo, hi)
    sized = [replace(c, rows=prints[c.id][0]) if c.id in prints else c for c in contracts]
    out: Partitions = {}
    for key, group in itertools.groupby(sorted(sized, key=_key), key=_key):
        members = sorted(group, key=lambda c: (c.symbol, c.id))
        fp = [iv, [[c.symbol, c.exchange, *prints.get(c.id, [0])] for c in members]]
        out[key] = (members, fp)
    return out
