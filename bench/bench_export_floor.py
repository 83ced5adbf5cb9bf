"""Where an export's CPU goes, part by part, on bench_export.py's database (build it first).

    .venv/bin/python bench/bench_export_floor.py [--repeat 2] [--encode-runs 7]
        [--connectorx-python /tmp/cx/bin/python] [--duckdb-python /tmp/ddb/bin/python]

- read: the ADBC driver reading the stored candle columns of every contract in groups of
  64 ids, as CPU seconds: with and without ``contract_id``, and with open/high/low and
  volume/oi packed into two integers by SQLite (4 columns instead of 7), unchecked (the
  floor of the idea) and with the overflow checks that exactness needs; the 7 columns
  through a memory map (``PRAGMA mmap_size``) and, given an interpreter that has it
  (``python -m venv /tmp/cx && /tmp/cx/bin/pip install connectorx``), by connectorx; by
  DuckDB's SQLite scanner (``--duckdb-python``, see ``duckdb_scan``), with its own COPY to
  a Parquet file beside it;
- count: the planning count (``query.rows_per_contract``) on one connection and split across
  two, and the GROUP BY form it replaced; the review page's figures (``count_per_contract``)
  and theirs;
- encode: Parquet encoding of the whole export's row groups (already typed, in memory) with
  the export's settings and with the variants tried (``--encode-runs N``: each N times by
  turns, the median);
- timeline: one ``run_export`` of the Parquet file with marks at the plan's start and end and
  at the first and last group (wall and process CPU at each).
The C floor (the system SQLite stepping the same query, no driver) is
``bench/sqlite_read_floor.c``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DB = ROOT / "bench" / "out" / "export_bench_v4.sqlite3"
KEYS = ("NSE_INDEX|Nifty 50", "NSE_INDEX|Nifty Bank", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")
PACKED = (
    "ts, close, ((open + 1048576) << 42) | ((high + 1048576) << 21) | (low + 1048576),"
    " (oi << 32) | volume"
)  # wrong for values that do not fit (21 bits, 32 bits): the floor of the idea, not usable
R = "BETWEEN -1048576 AND 1048575"
SEVEN = "ts, close, open, high, low, volume, oi"  # what the export reads
CHECKED = (  # NULL where a value does not fit (those rows would be read again): usable
    f"ts, close, CASE WHEN open {R} AND high {R} AND low {R} THEN"
    " ((open + 1048576) << 42) | ((high + 1048576) << 21) | (low + 1048576) END,"
    " CASE WHEN volume BETWEEN 0 AND 4294967295 AND oi BETWEEN 0 AND 2147483647"
    " THEN (oi << 32) | volume END"
)


def read(columns: str, mmap: int = 0) -> float:
    import adbc_driver_manager as dm
    import adbc_driver_sqlite
    import pyarrow as pa

    from expirytrack_desktop.store.readonly import readonly_uri

    c0 = time.process_time()
    with adbc_driver_sqlite.connect(readonly_uri(DB)) as db, dm.AdbcConnection(db) as conn:
        if mmap:  # SQLite reads the file through a memory map (not what the export does)
            with dm.AdbcStatement(conn) as st:
                st.set_sql_query(f"PRAGMA mmap_size = {int(mmap)}")
                handle, _ = st.execute_query()
                pa.RecordBatchReader._import_from_c(handle.address).read_all()
        for lo in range(0, 4000, 64):
            ids = ",".join(str(i) for i in range(lo, lo + 64))
            with dm.AdbcStatement(conn) as st:
                st.set_options(**{"adbc.sqlite.query.batch_rows": "65536"})
                st.set_sql_query(
                    f"SELECT {columns} FROM candle WHERE contract_id IN ({ids}) AND interval = 1"
                    " ORDER BY contract_id, ts"
                )
                handle, _ = st.execute_query()
                pa.RecordBatchReader._import_from_c(handle.address).read_all()
    return time.process_time() - c0


CONNECTORX = """
import sys, time
import connectorx as cx
db = sys.argv[1]
c0 = time.process_time()
for lo in range(0, 4000, 64):
    ids = ",".join(str(i) for i in range(lo, lo + 64))
    cx.read_sql("sqlite://" + db, "SELECT ts, close, open, high, low, volume, oi FROM candle"
                f" WHERE contract_id IN ({ids}) AND interval = 1 ORDER BY contract_id, ts",
                return_type="arrow")
print(time.process_time() - c0)
"""


def read_connectorx(python: str) -> float:
    """The same read by connectorx (its SQLite source into Arrow; a connection per query),
    in an interpreter that has it: not a project dependency (a 188 MB shared library)."""
    import subprocess

    out = subprocess.run([python, "-c", CONNECTORX, str(DB)], check=True, capture_output=True)
    return float(out.stdout.decode().split()[-1])


DUCKDB_SCAN = """
import sys, time, duckdb
ext, db, out = sys.argv[1:4]
con = duckdb.connect(config={"allow_unsigned_extensions": "true"})
con.execute(f"LOAD '{ext}'")
con.execute("SET threads = 2")
con.execute("SET enable_progress_bar = false")
scan = f"sqlite_scan('{db}', 'candle')"
t0, c0 = time.perf_counter(), time.process_time()
con.execute(f"SELECT sum(ts), sum(close), sum(open), sum(high), sum(low), sum(volume), sum(oi)"
            f" FROM {scan} WHERE interval = 1").fetchone()
t1, c1 = time.perf_counter(), time.process_time()
con.execute(f"COPY (SELECT contract_id, ts, close / 100.0 AS close, (close + open) / 100.0 AS open,"
            f" (close + high) / 100.0 AS high, (close + low) / 100.0 AS low, volume, oi"
            f" FROM {scan} WHERE interval = 1) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
t2, c2 = time.perf_counter(), time.process_time()
print(t1 - t0, c1 - c0, t2 - t1, c2 - c1)
"""


def duckdb_scan(python: str) -> list[float]:
    """DuckDB's SQLite scanner (the PyPI extension package, built for DuckDB 1.5; the project
    pins 2.0) reading the 7 columns, and copying them with prices to a zstd Parquet file, in
    an interpreter that has both (``python -m venv /tmp/ddb && /tmp/ddb/bin/pip install
    duckdb==1.5.5 duckdb-extension-sqlite-scanner==1.5.5``): [read wall, CPU, copy wall, CPU]."""
    import subprocess
    import tempfile

    find = (
        "import duckdb_extension_sqlite_scanner as m, duckdb, pathlib; print(next("
        "pathlib.Path(m.__file__).parent.glob(f'extensions/v{duckdb.__version__}/*')))"
    )
    ext = subprocess.run([python, "-c", find], check=True, capture_output=True, text=True)
    with tempfile.TemporaryDirectory() as tmp:
        args = [python, "-c", DUCKDB_SCAN, ext.stdout.strip(), str(DB), f"{tmp}/x.parquet"]
        out = subprocess.run(args, check=True, capture_output=True, text=True)
    return [float(x) for x in out.stdout.split()]


def planned() -> list:
    from expirytrack_desktop.export.api import ExportOptions
    from expirytrack_desktop.export.db import connect_readonly
    from expirytrack_desktop.export.query import TS_MAX, TS_MIN, rows_per_contract, select_contracts

    conn = connect_readonly(DB)
    contracts = select_contracts(conn, ExportOptions(KEYS, format="parquet"))
    counts = rows_per_contract(conn, contracts, 1, TS_MIN, TS_MAX)
    conn.close()
    return [replace(c, rows=counts.get(c.id, 0)) for c in contracts]


def count(split: bool) -> tuple[float, float]:
    from expirytrack_desktop.export.db import connect_readonly
    from expirytrack_desktop.export.query import TS_MAX, TS_MIN, rows_per_contract

    contracts = planned()
    conn = connect_readonly(DB)
    helper = partial(connect_readonly, DB) if split else None
    t0, c0 = time.perf_counter(), time.process_time()
    rows_per_contract(conn, contracts, 1, TS_MIN, TS_MAX, helper)
    conn.close()
    return time.perf_counter() - t0, time.process_time() - c0


def count_group_by() -> float:
    """CPU of the planning count as it was before (one GROUP BY over ``contract_id IN``)."""
    import json

    from expirytrack_desktop.export.db import connect_readonly

    ids = json.dumps(sorted(c.id for c in planned()))
    conn = connect_readonly(DB)
    c0 = time.process_time()
    conn.execute(
        "SELECT contract_id, count(*) FROM candle WHERE contract_id IN"
        " (SELECT value FROM json_each(?)) AND interval = 1 GROUP BY contract_id",
        (ids,),
    ).fetchall()
    conn.close()
    return time.process_time() - c0


def review_figures() -> tuple[float, float]:
    """CPU of the review page's figures (count, first, last candle per contract): the
    export's ``count_per_contract`` and the GROUP BY form it replaced."""
    import json

    from expirytrack_desktop.export.db import connect_readonly
    from expirytrack_desktop.export.query import TS_MAX, TS_MIN, count_per_contract

    contracts = planned()
    conn = connect_readonly(DB)
    c0 = time.process_time()
    count_per_contract(conn, contracts, 1, TS_MIN, TS_MAX)
    now = time.process_time() - c0
    c0 = time.process_time()
    conn.execute(
        "SELECT contract_id, count(*), min(ts), max(ts) FROM candle WHERE contract_id IN"
        " (SELECT value FROM json_each(?)) AND interval = 1 AND ts >= ? AND ts < ?"
        " GROUP BY contract_id",
        (json.dumps([c.id for c in contracts]), TS_MIN, TS_MAX),
    ).fetchall()
    before = time.process_time() - c0
    conn.close()
    return now, before


def encode_variants(runs: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from expirytrack_desktop.export import parquet_format as pf
    from expirytrack_desktop.export.arrow_read import ArrowCandleSource
    from expirytrack_desktop.export.query import TS_MAX, TS_MIN

    schema = pf._schema(pa, False, False)
    tables, batch = [], pf._Batch()
    source = ArrowCandleSource(DB, 1, TS_MIN, TS_MAX, 50_000)
    for g in source.groups(planned(), pf.typed_candles):
        batch.add(g.contracts, g.counts, g.prepared)
        if len(batch) >= pf.ROW_GROUP_ROWS:
            tables.append(batch.table(pa, schema))
    tables.append(batch.table(pa, schema))
    few = ["openalgo_symbol", "timestamp", "exchange"]
    variants: dict[str, dict[str, Any]] = {
        "zstd (the export's)": {"compression": "zstd"},
        "snappy": {"compression": "snappy"},
        "none": {"compression": "none"},
        "zstd, dictionary only for the symbol columns": {
            "compression": "zstd", "use_dictionary": ["openalgo_symbol", "exchange"]},
        "zstd, write_batch_size 65,536": {"compression": "zstd", "write_batch_size": 65_536},
        "zstd, data page v2": {"compression": "zstd", "data_page_version": "2.0"},
        "zstd, statistics of 3 columns": {"compression": "zstd", "write_statistics": few},
        "zstd level -1": {"compression": "zstd", "compression_level": -1},
        "zstd level -3": {"compression": "zstd", "compression_level": -3},
        "zstd level -7": {"compression": "zstd", "compression_level": -7},
    }  # fmt: skip
    # before the candle columns were REQUIRED: the same tables, every column nullable
    nullable = pa.schema([f.with_nullable(True) for f in schema])
    variants["zstd, every column nullable (before)"] = {"compression": "zstd", "_schema": nullable}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    size: dict[str, int] = {}
    for _ in range(runs):  # by turns: a slow spell falls on every variant alike
        for name, kw in variants.items():
            kw = dict(kw)
            use = kw.pop("_schema", schema)
            ts = tables if use is schema else [t.cast(use) for t in tables]
            sink = io.BytesIO()
            c0 = time.process_time()
            writer = pq.ParquetWriter(sink, use, **kw)
            for t in ts:
                writer.write_table(t)
            writer.close()
            cpu[name].append(time.process_time() - c0)
            size[name] = len(sink.getvalue())
    for name, got in cpu.items():
        print(f"  encode {name:46s} CPU {statistics.median(got):5.2f} s (median of {runs}), "
              f"{size[name] / 2**20:5.1f} MiB")  # fmt: skip


def timeline() -> None:
    """Run in a fresh process (``--timeline``): imports count."""
    t0 = time.perf_counter()
    marks: list[tuple[float, float, str]] = []

    def mark(what: str) -> None:
        marks.append((time.perf_counter() - t0, time.process_time(), what))

    from expirytrack_desktop.export import arrow_read, runner
    from expirytrack_desktop.export.api import ExportOptions, run_export

    mark("export modules imported")
    plan = runner._plan

    def timed_plan(*a, **k):  # type: ignore[no-untyped-def]
        mark("plan starts")
        out = plan(*a, **k)
        mark("plan ends")
        return out

    runner._plan = timed_plan
    groups = arrow_read.ArrowCandleSource.groups

    def timed_groups(self, contracts, prepare=None):  # type: ignore[no-untyped-def]
        first = True
        for g in groups(self, contracts, prepare):
            if first:
                mark("first group")
                first = False
            yield g
        mark("last group")

    arrow_read.ArrowCandleSource.groups = timed_groups  # type: ignore[method-assign]
    out = Path("/tmp") / "bench_export_floor.parquet"
    out.unlink(missing_ok=True)
    run_export(DB, ExportOptions(KEYS, format="parquet"), out, record_history=False,
               clock=lambda: datetime(2026, 12, 7, tzinfo=UTC))  # fmt: skip
    mark("done")
    out.unlink(missing_ok=True)
    last_wall = last_cpu = 0.0
    for wall, cpu, what in marks:
        cores = (cpu - last_cpu) / (wall - last_wall) if wall > last_wall else 0.0
        print(f"  {wall:6.3f} s  CPU {cpu:6.3f} s  {what:26s} ({cores:.2f} cores since the last)")
        last_wall, last_cpu = wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--timeline", action="store_true", help="(the child process)")
    ap.add_argument("--encode-runs", type=int, default=1, help="runs of each encoding")
    ap.add_argument("--connectorx-python", help="an interpreter with connectorx installed")
    ap.add_argument("--duckdb-python", help="an interpreter with DuckDB's SQLite scanner")
    args = ap.parse_args()
    if args.timeline:
        timeline()
        return
    if not DB.exists():
        sys.exit(f"{DB} is missing: run bench/bench_export.py once to build it")
    for _ in range(args.repeat):
        for name, cols in (
            ("7 stored columns", SEVEN),
            ("8 (with contract_id)", "contract_id, ts, close, open, high, low, volume, oi"),
            ("4, packed in SQL", PACKED),
            ("4, packed, overflow checked", CHECKED),
        ):
            print(f"  read {name:22s} CPU {read(cols):5.2f} s")
        print(f"  read 7 columns, mmap (not used) CPU {read(SEVEN, 1 << 30):5.2f} s")
        if args.connectorx_python:
            cx = read_connectorx(args.connectorx_python)
            print(f"  read 7 columns by connectorx CPU {cx:5.2f} s")
        if args.duckdb_python:
            rw, rc, cw, cc = duckdb_scan(args.duckdb_python)
            print(f"  read 7 columns by DuckDB's sqlite_scan wall {rw:5.2f} s, CPU {rc:5.2f} s;"
                  f" COPY to Parquet wall {cw:5.2f} s, CPU {cc:5.2f} s")  # fmt: skip
        for split in (False, True):
            wall, cpu = count(split)
            print(f"  count {'split in two' if split else 'one connection':14s} "
                  f"wall {wall:5.2f} s, CPU {cpu:5.2f} s")  # fmt: skip
        print(f"  count, GROUP BY contract_id (before) CPU {count_group_by():5.2f} s")
        now, before = review_figures()
        print(f"  review figures CPU {now:5.2f} s, GROUP BY form (before) {before:5.2f} s")
    encode_variants(args.encode_runs)
    import subprocess

    subprocess.run([sys.executable, __file__, "--timeline"], check=True)


if __name__ == "__main__":
    main()
