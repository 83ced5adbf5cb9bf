"""Every Parquet form read back by the readers quants use (pyarrow, pandas, Polars, DuckDB),
each row compared with the database, plus the Parquet types Spark needs."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from expirytrack_desktop.export.api import ExportOptions, run_export
from expirytrack_desktop.timeutil import ist_iso
from tests._export_db import CONTRACTS, build_db, exchange_of, stored_candles

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")
SYMBOL = {c.id: c.expected_symbol for c in CONTRACTS}
EXCHANGE = {c.expected_symbol: exchange_of(c) for c in CONTRACTS}
Row = tuple[str, int, float, float, float, float, int, int, str]

FORMS = {
    "file": ExportOptions(ALL, format="parquet"),
    "file+metadata": ExportOptions(ALL, format="parquet", include_metadata=True),
    "partitioned": ExportOptions(ALL, format="parquet", parquet_partitioned=True),
    "partitioned+metadata": ExportOptions(
        ALL, format="parquet", parquet_partitioned=True, include_metadata=True
    ),
    "per-contract": ExportOptions(ALL, format="parquet", per_contract=True),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    tmp = tmp_path_factory.mktemp("readers")
    db = build_db(tmp / "store.sqlite3")
    outs = {}
    for name, opts in FORMS.items():
        out = tmp / name.replace("+", "_")
        run_export(db, opts, out, record_history=False)
        outs[name] = out
    outs[MIXED] = _with_older_partition(outs["partitioned+metadata"], tmp / "mixed")
    return db, outs


# a dataset (a mirror kept for months) whose first partition an older version wrote, when
# every column was nullable: the readers must read the two kinds of file as one dataset
MIXED = "partitioned, one older (nullable) partition"


def _with_older_partition(src: Path, dst: Path) -> Path:
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    shutil.copytree(src, dst)
    first = sorted(dst.rglob("*.parquet"))[0]
    table = pq.read_table(first)
    assert not table.schema.field("close").nullable
    nullable = pa.schema([f.with_nullable(True) for f in table.schema])
    pq.write_table(table.cast(nullable), first)
    assert pq.read_schema(first).field("close").nullable
    return dst


def db_rows(db: Path) -> list[Row]:
    return [(*row, EXCHANGE[row[0]]) for row in stored_candles(db)]


def glob_of(out: Path) -> str:
    return str(out) if out.is_file() else str(out / "**" / "*.parquet")


def read_pyarrow(out: Path) -> list[Row]:
    import pyarrow as pa
    import pyarrow.dataset as ds

    table = ds.dataset(out, format="parquet", partitioning="hive").to_table()
    assert table.schema.field("timestamp").type == pa.timestamp("ms", tz="Asia/Kolkata")
    d = table.to_pydict()
    ts = table.column("timestamp").cast(pa.int64()).to_pylist()
    return sorted(
        (d["openalgo_symbol"][i], ts[i] // 1000, d["open"][i], d["high"][i], d["low"][i],
         d["close"][i], d["volume"][i], d["oi"][i], d["exchange"][i])
        for i in range(table.num_rows)
    )  # fmt: skip


def read_pandas(out: Path) -> list[Row]:
    import pandas as pd

    df = pd.read_parquet(out)
    assert str(df["timestamp"].dt.tz) == "Asia/Kolkata"
    rows = []
    for r in df.itertuples(index=False):
        ts = int(r.timestamp.timestamp())
        assert r.timestamp.isoformat() == ist_iso(ts)  # wall clock in IST, "+05:30"
        rows.append((str(r.openalgo_symbol), ts, r.open, r.high, r.low, r.close,
                     int(r.volume), int(r.oi), str(r.exchange)))  # fmt: skip
    return sorted(rows)


def _polars_rows(df: object) -> list[Row]:
    import polars as pl

    assert isinstance(df, pl.DataFrame)
    assert df.schema["timestamp"] == pl.Datetime("ms", "Asia/Kolkata")
    assert set(df["timestamp"].dt.hour().to_list()) <= set(range(9, 16))  # IST wall clock
    df = df.select(
        pl.col("openalgo_symbol").cast(pl.String),
        pl.col("timestamp").dt.epoch("s"),
        "open", "high", "low", "close", "volume", "oi",
        pl.col("exchange").cast(pl.String),
    )  # fmt: skip
    return sorted(df.iter_rows())


def read_polars(out: Path) -> list[Row]:
    import polars as pl

    return _polars_rows(pl.read_parquet(glob_of(out), hive_partitioning=out.is_dir()))


def scan_polars(out: Path) -> list[Row]:
    import polars as pl

    lazy = pl.scan_parquet(glob_of(out), hive_partitioning=out.is_dir())
    return _polars_rows(lazy.collect())


def read_duckdb(out: Path) -> list[Row]:
    import duckdb

    with closing(duckdb.connect()) as con:
        typ = con.execute(
            "SELECT typeof(timestamp) FROM read_parquet(?, hive_partitioning = true) LIMIT 1",
            [glob_of(out)],
        ).fetchone()
        assert typ == ("TIMESTAMP WITH TIME ZONE",)
        rows = con.execute(
            "SELECT openalgo_symbol, epoch_ms(timestamp) // 1000, open, high, low, close,"
            " volume, oi, exchange FROM read_parquet(?, hive_partitioning = true)",
            [glob_of(out)],
        ).fetchall()
    return sorted(rows)


READERS: dict[str, Callable[[Path], list[Row]]] = {
    "pyarrow.dataset": read_pyarrow,
    "pandas": read_pandas,
    "polars.read_parquet": read_polars,
    "polars.scan_parquet": scan_polars,
    "duckdb": read_duckdb,
}


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("form", [*FORMS, MIXED])
def test_every_reader_reads_every_form_exactly(exported, form, reader):
    db, outs = exported
    got = READERS[reader](outs[form])
    want = db_rows(db)
    assert len(want) == 32
    assert got == want


def test_metadata_and_partition_columns_read_back(exported):
    import polars as pl

    _, outs = exported
    df = pl.read_parquet(glob_of(outs["partitioned+metadata"]), hive_partitioning=True)
    got = {
        (r["openalgo_symbol"], r["underlying"], str(r["expiry"]), r["strike"], r["lot_size"])
        for r in df.select(pl.all().exclude("timestamp")).iter_rows(named=True)
    }
    assert ("VEDL25APR24292.5CE", "VEDL", "2024-04-25", 292.5, 1550) in got
    assert ("SENSEX5024APR25FUT", "SENSEX50", "2025-04-24", None, 20) in got


@pytest.mark.parametrize("form", ["file", "partitioned+metadata", "per-contract"])
def test_parquet_types_are_the_ones_spark_reads(exported, form):
    """Spark reads INT64 TIMESTAMP(isAdjustedToUTC=true, MILLIS|MICROS) as an instant and
    rejects NANOS; INT96 and unannotated integers would not round-trip."""
    import pyarrow.parquet as pq

    _, outs = exported
    out = outs[form]
    files = [out] if out.is_file() else sorted(out.rglob("*.parquet"))
    assert files
    for path in files:
        schema = pq.ParquetFile(path).schema
        col = schema.column(schema.names.index("timestamp"))
        assert col.physical_type == "INT64"
        logical = json.loads(col.logical_type.to_json())
        assert logical["Type"] == "Timestamp" and logical["isAdjustedToUTC"] is True
        assert logical["timeUnit"] == "milliseconds"
        for name in schema.names:
            assert schema.column(schema.names.index(name)).physical_type != "INT96"
        # a candle's own columns are REQUIRED (never null); the metadata may be null
        arrow = schema.to_arrow_schema()
        for name in ("openalgo_symbol", "timestamp", "open", "close", "volume", "oi", "exchange"):
            assert not arrow.field(name).nullable, name
        if "strike" in arrow.names:
            assert arrow.field("strike").nullable
