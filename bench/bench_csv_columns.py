"""CSV export with custom columns (``--columns``) next to the default layout, on one database.

    .venv/bin/python bench/bench_csv_columns.py --db /tmp/expirytrack-spark-check/store.sqlite3

Any store database will do (bench/spark_read_check.py and bench/bench_export.py build one).
Each export runs in this process, one after the other, on the same database: wall time and
CPU time (all threads: the ADBC reader, the formatter, the writer), rows per second of each.
The machine is shared, so CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHAPES = {
    "default (11 columns)": None,
    "same 11, reordered": (
        "exchange", "openalgo_symbol", "timestamp", "date", "time",
        "close", "open", "high", "low", "oi", "volume",
    ),
    "historify CSV (7)": ("timestamp", "open", "high", "low", "close", "volume", "oi"),
    "all 17 with metadata": None,  # include_metadata=True through the default path
    "all 17, custom order": (
        "lot_size", "trading_symbol", "option_type", "strike", "expiry", "underlying",
        "exchange", "oi", "volume", "close", "low", "high", "open",
        "timestamp", "time", "date", "openalgo_symbol",
    ),
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--db", required=True)
    args = ap.parse_args()
    from expirytrack_desktop.export.api import ExportOptions, available_underlyings, run_export

    db = Path(args.db)
    keys = tuple(u.instrument_key for u in available_underlyings(db))
    with tempfile.TemporaryDirectory() as tmp:
        for label, columns in SHAPES.items():
            opts = ExportOptions(keys, csv_columns=columns, include_metadata="metadata" in label)
            out = Path(tmp) / "x.csv"
            out.unlink(missing_ok=True)
            t0, c0 = time.perf_counter(), time.process_time()
            result = run_export(db, opts, out, record_history=False)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            mb = out.stat().st_size / 1e6
            print(
                f"{label:24} {result.rows:>10,} rows  wall {wall:6.2f} s"
                f" ({result.rows / wall / 1e6:4.2f} M rows/s)  cpu {cpu:6.2f} s"
                f" ({result.rows / cpu / 1e6:4.2f} M rows/cpu-s)  {mb:7.1f} MB"
            )


if __name__ == "__main__":
    main()
