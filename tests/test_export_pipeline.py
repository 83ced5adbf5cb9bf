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


def _planned(db: Path):
    """The contracts with their planned counts, as run_export's plan makes them."""
    from dataclasses import replace

    contracts = _contracts(db)
    with closing(connect_readonly(db)) as conn:
        counts = rows_per_contract(conn, contracts, 1, TS_MIN, TS_MAX)
    return [replace(c, rows=counts.get(c.id, 0)) for c in contracts]


def test_rows_added_after_the_plan_are_read_with_their_contract(db):
    planned = _planned(db)
    target = max(planned, key=lambda c: c.rows)
    with closing(sqlite3.connect(db)) as conn, conn:  # a collector stores one more candle
        last = conn.execute(
            "SELECT max(ts) FROM candle WHERE contract_id = ? AND interval = 1", (target.id,)
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO candle VALUES (?, 1, ?, 100, 0, 0, 0, 7, 9)", (target.id, last + 60)
        )
    groups = list(ArrowCandleSource(db, 1, TS_MIN, TS_MAX, 10).groups(planned))
    got = {c.id: n for g in groups for c, n in zip(g.contracts, g.counts, strict=True)}
    assert got[target.id] == target.rows + 1
    assert all(got[c.id] == c.rows for c in planned if c.id != target.id)
    g = next(g for g in groups if target in g.contracts)
    end = sum(g.counts[: g.contracts.index(target) + 1])
    assert int(g.ts[end - 1]) == last + 60 and int(g.volume[end - 1]) == 7


def test_planned_groups_equal_the_groups_read_with_ids(db):
    import pyarrow as pa

    def read(contracts):
        groups = list(ArrowCandleSource(db, 1, TS_MIN, TS_MAX, 10).groups(contracts))
        counts = {c.id: n for g in groups for c, n in zip(g.contracts, g.counts, strict=True)}
        return counts, pa.concat_tables([g.table for g in groups])

    planned = _planned(db)  # read without contract_id (the counts are known)
    counts, table = read(planned)
    ids_counts, ids_table = read(_contracts(db))  # no planned counts: read with contract_id
    assert counts == ids_counts and table.to_pylist() == ids_table.to_pylist()
    assert counts == {c.id: c.rows for c in planned} and table.num_rows == 32


def test_an_export_does_not_import_pandas(db, tmp_path):
    """pyarrow's pa.array/to_numpy import pandas (0.17 s, ~35 MiB); export/arrow_np.py
    avoids them on every format's fast path."""
    import subprocess
    import sys

    code = (
        "import sys; from pathlib import Path\n"
        "from expirytrack_desktop.export.api import ExportOptions, run_export\n"
        f"keys = {ALL!r}\n"
        "for fmt in ('csv', 'json', 'parquet'):\n"
        "    for meta in (False, True):\n"
        f"        out = Path({str(tmp_path)!r}) / f'x_{{meta}}.{{fmt}}'\n"
        "        opts = ExportOptions(keys, format=fmt, include_metadata=meta)\n"
        f"        run_export(Path({str(db)!r}), opts, out, record_history=False)\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr


def test_numpy_arrow_round_trips():
    import numpy as np
    import pyarrow as pa

    from expirytrack_desktop.export.arrow_np import arrow_of, numpy_of, strings

    values = np.array([3, -1, 2**62, 0], np.int64)
    a = arrow_of(values)
    assert a.type == pa.int64() and a.to_pylist() == values.tolist()
    assert numpy_of(a.slice(1, 2)).tolist() == [-1, 2**62]  # an offset into the buffer
    assert numpy_of(pa.chunked_array([a.slice(0, 1), a.slice(3)])).tolist() == [3, 0]
    floats = arrow_of(np.array([1.5, 0.0, -2.25]), np.array([True, False, True]))
    assert floats.to_pylist() == [1.5, None, -2.25] and floats.null_count == 1
    with pytest.raises(ValueError, match="nulls"):
        numpy_of(floats)
    assert numpy_of(arrow_of(np.array([0.05, -1e300]))).tolist() == [0.05, -1e300]
    assert numpy_of(arrow_of(np.array([7], np.int32))).dtype == np.int32
    assert strings(["NIFTY", "", "M&M ₹"]).to_pylist() == ["NIFTY", "", "M&M ₹"]
    with pytest.raises(TypeError, match="unsupported"):
        numpy_of(pa.array(["x"]))
    with pytest.raises(TypeError, match="unsupported"):
        arrow_of(np.array([1], np.uint8))


def test_openblas_keeps_to_one_thread_unless_told_otherwise():
    """Its per-core threads spin ~60 ms of CPU each after numpy loads (a 2-core export's
    readers lose it); nothing in the app multiplies matrices."""
    import os
    import subprocess
    import sys

    code = (
        "import os, expirytrack_desktop, numpy\n"
        "tasks = len(os.listdir('/proc/self/task')) if os.path.isdir('/proc/self/task') else 1\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'], tasks)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    run = partial(subprocess.run, [sys.executable, "-c", code], capture_output=True, text=True)
    assert run(env=env, check=True).stdout.split() == ["1", "1"]
    assert run(env={**env, "OPENBLAS_NUM_THREADS": "2"}, check=True).stdout.split()[0] == "2"


@pytest.mark.parametrize(
    "opts",
    [
        ExportOptions(ALL, per_contract=True),
        ExportOptions(ALL, format="zip"),
        ExportOptions(ALL, format="parquet", per_contract=True),
        ExportOptions(ALL, format="parquet", parquet_partitioned=True),
        ExportOptions(ALL, format="json", per_contract=True),
        ExportOptions(ALL, format="historify"),
    ],
    ids=[
        "csv-per-contract",
        "zip",
        "parquet-per-contract",
        "dataset",
        "json-per-contract",
        "historify-files",
    ],
)
def test_many_files_come_from_one_read(db, tmp_path, monkeypatch, opts):
    """Every file's candles from one stream of groups (export/parts.py), not a reader per
    file: ~2 ms per contract before (bench/RESULTS.md)."""
    from expirytrack_desktop.export.api import run_export

    calls = []
    real = ArrowCandleSource.groups

    def counted(self, contracts, prepare=None):
        calls.append(len(contracts))
        return real(self, contracts, prepare)

    monkeypatch.setattr(ArrowCandleSource, "groups", counted)
    result = run_export(db, opts, tmp_path / "out", record_history=False, chunk_rows=10)
    assert result.rows == 32 and calls == [len(_contracts(db))]
    assert result.files > 1 or opts.format == "zip"


def test_runs_cut_groups_where_the_file_changes():
    from expirytrack_desktop.export.arrow_read import CandleGroup
    from expirytrack_desktop.export.parts import Parts, Run

    c = _contracts_stub(5)
    plan = Parts([[c[0], c[1]], [], [c[2]], [c[3], c[4]]])
    assert plan.contracts == c and plan.part_of == [0, 0, 2, 3, 3]

    def group(members, counts):
        return CandleGroup(members, counts, [0] * sum(counts), None, None, None)

    first = list(plan.runs(group(c[:3], [2, 0, 5])))
    assert first == [Run(0, 0, 2, 0, 2), Run(2, 2, 3, 2, 5)]
    assert list(plan.runs(group(c[3:], [1, 1]))) == [Run(3, 0, 2, 0, 2)]


def _contracts_stub(n):
    from expirytrack_desktop.export.query import SelectedContract

    return [
        SelectedContract(i, f"S{i}", "K", "U", "U", "2025-01-30", "CE", 1.0, "t", 1)
        for i in range(n)
    ]
