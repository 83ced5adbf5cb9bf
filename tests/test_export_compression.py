"""Compressed exports read back to exactly the uncompressed bytes / rows."""

from __future__ import annotations

import gzip
from contextlib import closing
from pathlib import Path

import pytest

from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import ExportOptions, InvalidOptionsError, run_export
from tests._export_db import build_db

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def plain(db: Path, tmp_path: Path) -> bytes:
    run_export(db, ExportOptions(ALL), tmp_path / "plain.csv", record_history=False)
    return (tmp_path / "plain.csv").read_bytes()


@pytest.mark.parametrize("level", [None, 1, 9])
def test_gzip_csv(db, tmp_path, level):
    opts = ExportOptions(ALL, compression="gzip", compression_level=level)
    assert opts.extension == ".csv.gz"
    out = tmp_path / ("x" + opts.extension)
    run_export(db, opts, out, record_history=False)
    assert gzip.decompress(out.read_bytes()) == plain(db, tmp_path)
    run_export(db, opts, tmp_path / "again.csv.gz", record_history=False)
    assert (tmp_path / "again.csv.gz").read_bytes() == out.read_bytes()  # reproducible
    assert b".part" not in out.read_bytes()[:64]  # no temporary name in the gzip header


def test_zstd_csv_reads_in_pandas_and_duckdb(db, tmp_path):
    import duckdb
    import pandas as pd
    import zstandard

    out = tmp_path / "x.csv.zst"
    run_export(db, ExportOptions(ALL, compression="zstd", compression_level=19), out)
    with open(out, "rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f).read()
    assert data == plain(db, tmp_path)
    assert len(pd.read_csv(out)) == 32
    with closing(duckdb.connect()) as con:
        assert con.execute("SELECT count(*) FROM read_csv(?)", [str(out)]).fetchone() == (32,)


def test_per_contract_files_compressed(db, tmp_path):
    out = tmp_path / "folder"
    run_export(db, ExportOptions(ALL, per_contract=True, compression="gzip"), out)
    names = sorted(p.name for p in out.iterdir())
    assert names and all(n.endswith(".csv.gz") for n in names)
    lines = sum(gzip.decompress(p.read_bytes()).count(b"\n") - 1 for p in out.iterdir())
    assert lines == 32


CODECS = [("snappy", None), ("gzip", 9), ("zstd", 15), ("brotli", 5), ("none", None),
          ("lz4", None)]  # fmt: skip


@pytest.mark.parametrize(("codec", "level"), CODECS)
def test_parquet_codecs(db, tmp_path, codec, level):
    import pyarrow.parquet as pq

    out = tmp_path / "x.parquet"
    run_export(db, ExportOptions(ALL, format="parquet", compression=codec,
                                 compression_level=level), out)  # fmt: skip
    ref = tmp_path / "ref.parquet"
    run_export(db, ExportOptions(ALL, format="parquet"), ref)
    assert pq.read_table(out).equals(pq.read_table(ref))
    meta = pq.ParquetFile(out).metadata.row_group(0).column(1)
    want = {"none": "UNCOMPRESSED", "lz4": "LZ4"}.get(codec, codec.upper())
    assert meta.compression in (want, "LZ4_RAW" if codec == "lz4" else want)


@pytest.mark.parametrize(
    ("opts", "message"),
    [
        (ExportOptions(ALL, compression="snappy"), "csv compression is one of"),
        (ExportOptions(ALL, format="json", compression="gzip"), "json has no compression"),
        (ExportOptions(ALL, compression="gzip", compression_level=12), "gzip level is 1..9"),
        (ExportOptions(ALL, format="parquet", compression="snappy", compression_level=3),
         "snappy takes no compression level"),
    ],
)  # fmt: skip
def test_bad_compression_is_refused(db, tmp_path, opts, message):
    with pytest.raises(InvalidOptionsError, match=message):
        run_export(db, opts, tmp_path / "x")


def test_cli_compression(db, tmp_path, capsys):
    folder = tmp_path / "out"
    folder.mkdir()
    code = main(["export", "--db", str(db), "-i", "NIFTY", "--compression", "gzip",
                 "--compression-level", "9", "-o", str(folder), "-q"])  # fmt: skip
    assert code == 0
    (made,) = folder.iterdir()
    assert made.name.endswith(".csv.gz")
    assert gzip.decompress(made.read_bytes()).count(b"\n") == 25
    code = main(["export", "--db", str(db), "-i", "NIFTY", "--compression", "brotli", "-q"])
    assert code == 2 and "csv compression is one of" in capsys.readouterr().err
