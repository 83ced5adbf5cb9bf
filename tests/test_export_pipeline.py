"""The fast export's pipeline: a format's work on a group runs in the reader threads, the
planning count splits across two connections, and Parquet's typed columns hold no view of
the reader's table. Byte-identity with the reference writer is test_export_fast's job."""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from functools import partial
from pathlib import Path

import pytest

from expirytrack_desktop.export.api import ExportOptions
from expirytrack_desktop.export.arrow_read import ArrowCandleSource, adbc_available, python_groups
from expirytrack_desktop.export.candles import CandleReader
from expirytrack_desktop.export.db import connect_readonly, reading
from expirytrack_desktop.export.query import TS_MAX, TS_MIN, rows_per_contract, select_contracts
from tests._export_db import build_db

pytestmark = pytest.mark.skipif(not adbc_available(), reason="adbc-driver-sqlite not installed")

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def _contracts(db: Path):
    with reading(db) as conn:
        return select_contracts(conn, ExportOptions(ALL))


def test_prepare_runs_in_the_reader_threads_and_inline_without_them(db):
    contracts = _contracts(db)
    seen: list[str] = []

    def prepare(group):
        seen.append(threading.current_thread().name)
        return (group.rows, [c.id for c in group.contracts])

    fast = list(ArrowCandleSource(db, 1, TS_MIN, TS_MAX, 10).groups(contracts, prepare))
    assert len(fast) > 2 and all(g.prepared == prepare(g) for g in fast)
    assert {n for n in seen[: len(fast)]} == {"export-reader-0", "export-reader-1"}

    seen.clear()
    with reading(db) as conn:
        ref = list(python_groups(CandleReader(conn, 1, TS_MIN, TS_MAX), contracts, 10, prepare))
    assert seen[: len(ref)] == [threading.current_thread().name] * len(ref)
    assert [g.prepared for g in ref] == [g.prepared for g in fast]


def test_an_error_in_prepare_reaches_the_consumer_and_stops_the_readers(db):
    contracts = _contracts(db)
    before = {t.name for t in threading.enumerate()}

    def prepare(group):
        if group.contracts[0].id != contracts[0].id:  # every group but the first
            raise ValueError("cannot format this group")

    with pytest.raises(ValueError, match="cannot format this group"):
        list(ArrowCandleSource(db, 1, TS_MIN, TS_MAX, 10).groups(contracts, prepare))
    left = {t.name for t in threading.enumerate()} - before
    assert not {n for n in left if n.startswith("export-reader")}


def test_the_planning_count_split_across_two_connections_is_the_same(db):
    contracts = _contracts(db)
    with closing(connect_readonly(db)) as conn:
        one = rows_per_contract(conn, contracts, 1, TS_MIN, TS_MAX)
        two = rows_per_contract(conn, contracts, 1, TS_MIN, TS_MAX, partial(connect_readonly, db))
        assert one == two and sum(one.values()) == 32 and len(one) > 2
        times = sorted(t for (t,) in conn.execute("SELECT ts FROM candle WHERE interval = 1"))
        mid = times[len(times) // 2]
        narrow = rows_per_contract(conn, contracts, 1, TS_MIN, mid, partial(connect_readonly, db))
        assert narrow == rows_per_contract(conn, contracts, 1, TS_MIN, mid)
        assert 0 < sum(narrow.values()) < 32


def test_a_failing_second_connection_fails_the_count_in_the_caller(db, tmp_path):
    contracts = _contracts(db)

    def broken() -> sqlite3.Connection:
        return connect_readonly(tmp_path / "gone.sqlite3")

    from expirytrack_desktop.export.api import DatabaseError

    with closing(connect_readonly(db)) as conn, pytest.raises(DatabaseError, match="not found"):
        rows_per_contract(conn, contracts, 1, TS_MIN, TS_MAX, broken)


def test_parquet_typed_columns_are_copies_with_the_reference_values(db):
    import pyarrow as pa

    from expirytrack_desktop.export.parquet_format import TZ, typed_candles

    group = next(iter(ArrowCandleSource(db, 1, TS_MIN, TS_MAX, 10).groups(_contracts(db))))
    typed = typed_candles(group)
    ref = group.table
    assert typed.column("timestamp").type == pa.timestamp("ms", tz=TZ)
    assert typed.column("timestamp").cast(pa.int64()).to_pylist() == [
        t * 1000 for t in ref.column("ts").to_pylist()
    ]
    for name in ("open", "high", "low", "close", "volume", "oi"):
        assert typed.column(name).to_pylist() == ref.column(name).to_pylist()
    # a view would keep the reader's whole table alive while a row group is gathered
    for name, values in (("volume", group.volume), ("oi", group.oi)):
        assert typed.column(name).chunks[0].buffers()[1].address != values.ctypes.data
