"""Spark reads every Parquet form the app writes: the counts and a sample equal the database.

    .venv/bin/python bench/spark_read_check.py --spark-python /path/to/venv-with-pyspark/bin/python
        [--candles 1000000] [--work /tmp/spark-check]

pyspark (~450 MB, plus a Java runtime) is NOT a dependency of the app: install it in a
scratch virtual environment (``python -m venv v && v/bin/pip install pyspark``) and pass its
interpreter. This script (in the project's environment) builds a store database shaped like
real data (bench_export.build), writes the single Parquet file, the partitioned dataset,
the incremental mirror and the Historify files, and takes the expected figures from SQLite:
total and per (underlying, expiry) candle counts, and a sample of candles. Then the pyspark
interpreter runs this same file with ``--check``: it reads each form with
``spark.read.parquet`` (session time zone UTC) and compares. Prints one line per form.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_SQL = """
SELECT c.openalgo_symbol, k.ts, k.open, k.high, k.low, k.close, k.volume, k.oi
FROM candle_rupees k JOIN contract c ON c.id = k.contract_id
WHERE k.interval = 1 AND (k.ts / 60 + k.contract_id * 7919) % 4001 = 0
ORDER BY c.openalgo_symbol, k.ts
"""
PARTITION_SQL = """
SELECT u.symbol, e.expiry_date, count(*)
FROM candle k JOIN contract c ON c.id = k.contract_id JOIN expiry e ON e.id = c.expiry_id
JOIN underlying u ON u.id = e.underlying_id WHERE k.interval = 1 GROUP BY 1, 2
"""


def prepare(work: Path, candles: int) -> dict:
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_export import DB, UNDERLYINGS, build

    from expirytrack_desktop.export.api import ExportOptions, run_export
    from expirytrack_desktop.export.mirror import update_mirror

    db = work / "store.sqlite3"
    if not db.exists():
        if DB.exists() and candles == 0:
            db = DB
        else:
            build(db, candles)
    keys = tuple(u[1] for u in UNDERLYINGS)
    forms = {
        "single": work / "single.parquet",
        "partitioned": work / "partitioned",
        "historify": work / "historify",
        "mirror": work / "mirror",
    }
    t0 = time.perf_counter()
    run_export(db, ExportOptions(keys, format="parquet"), forms["single"], overwrite=True,
               record_history=False)  # fmt: skip
    for name, opts in (
        ("partitioned", ExportOptions(keys, format="parquet", parquet_partitioned=True)),
        ("historify", ExportOptions(keys, format="historify")),
    ):
        if not forms[name].exists():
            run_export(db, opts, forms[name], record_history=False)
    update_mirror(db, ExportOptions(keys), forms["mirror"])
    written = time.perf_counter() - t0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        total = conn.execute("SELECT count(*) FROM candle WHERE interval = 1").fetchone()[0]
        sample = conn.execute(SAMPLE_SQL).fetchall()
        parts = {f"{u}/{e}": n for u, e, n in conn.execute(PARTITION_SQL)}
    return {
        "db": str(db),
        "total": total,
        "sample": sample,
        "partitions": parts,
        "forms": {k: str(v) for k, v in forms.items()},
        "export_seconds": round(written, 1),
    }


def check(expected_path: Path) -> list[str]:
    """Runs in the pyspark interpreter: pyspark and the standard library only."""
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    want = json.loads(expected_path.read_text())
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("expirytrack-read-check")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    sample = {(s, ts): tuple(v) for s, ts, *v in want["sample"]}
    lines = [f"spark {spark.version}, database {want['total']:,} candles, sample {len(sample)}"]
    forms = want["forms"]

    def compare(name: str, df: Any, symbol_col: Any) -> None:
        t0 = time.perf_counter()
        schema = dict(df.dtypes)
        total = df.count()
        keyed = df.select(
            symbol_col.alias("s"), F.col("timestamp").cast("long").alias("ts"),
            "open", "high", "low", "close", "volume", "oi",
        )  # fmt: skip
        syms = sorted({s for s, _ in sample})
        got = {
            (r["s"], r["ts"]): (r["open"], r["high"], r["low"], r["close"], r["volume"], r["oi"])
            for r in keyed.where(F.col("s").isin(syms)).collect()
            if (r["s"], r["ts"]) in sample
        }
        same = sum(got.get(k) == v for k, v in sample.items())
        extra = ""
        if "underlying" in schema and "expiry" in schema:
            counts = {
                f"{r['underlying']}/{r['expiry']}": r["count"]
                for r in df.groupBy("underlying", "expiry").count().collect()
            }
            extra = f", partitions {len(counts)} equal: {counts == want['partitions']}"
        ok = total == want["total"] and same == len(sample)
        lines.append(
            f"{'OK  ' if ok else 'FAIL'} {name}: rows {total:,} (db {want['total']:,}), "
            f"sample {same}/{len(sample)} equal, timestamp {schema['timestamp']}{extra}, "
            f"{time.perf_counter() - t0:.1f} s"
        )

    compare("single file", spark.read.parquet(forms["single"]), F.col("openalgo_symbol"))
    spark.conf.set("spark.sql.session.timeZone", "Asia/Kolkata")  # shown in IST: 09:15-15:29
    hhmm = F.date_format("timestamp", "HH:mm")
    first, last = spark.read.parquet(forms["single"]).select(F.min(hhmm), F.max(hhmm)).first()
    lines.append(f"     single file in session time zone Asia/Kolkata: minutes {first} .. {last}")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    part = spark.read.parquet(forms["partitioned"])
    compare("partitioned dataset", part.withColumn("expiry", F.col("expiry").cast("string")),
            F.col("openalgo_symbol"))  # fmt: skip
    mirror = spark.read.parquet(forms["mirror"])
    compare("mirror", mirror.withColumn("expiry", F.col("expiry").cast("string")),
            F.col("openalgo_symbol"))  # fmt: skip
    files = spark.read.parquet(forms["historify"] + "/NFO", forms["historify"] + "/BFO")
    files = files.withColumn("timestamp", F.col("timestamp").cast("timestamp"))
    sym = F.regexp_extract(F.input_file_name(), r"/([^/]+)\.parquet$", 1)
    compare("historify files (int64 epoch seconds)", files, sym)
    spark.stop()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spark-python", help="an interpreter with pyspark installed")
    ap.add_argument("--candles", type=int, default=1_000_000)
    ap.add_argument("--work", default="/tmp/expirytrack-spark-check")
    ap.add_argument("--check", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.check:
        print("\n".join(check(Path(args.check))))
        return
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    want = prepare(work, args.candles)
    path = work / "expected.json"
    path.write_text(json.dumps(want))
    print(f"wrote the four Parquet forms of {want['total']:,} candles "
          f"in {want['export_seconds']} s under {work}")  # fmt: skip
    py = args.spark_python or sys.executable
    subprocess.run([py, __file__, "--check", str(path)], check=True)


if __name__ == "__main__":
    main()
