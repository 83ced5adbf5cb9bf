"""An output file's name and what is written into it agree: ``-o x.parquet`` writes Parquet,
``-o x.csv.gz`` gzip, and a name that contradicts a chosen format or compression is refused
(pandas, Polars and DuckDB pick the reader and the decompression by the extension)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd
import polars as pl
import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import ExportOptions, InvalidOptionsError
from expirytrack_desktop.export.options import options_for_name
from tests._export_db import build_db

NIFTY = ("NSE_INDEX|Nifty 50",)
CSV = ExportOptions(NIFTY)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


@pytest.mark.parametrize(
    ("name", "fmt", "codec"),
    [
        ("x.parquet", "parquet", "zstd"),  # Parquet's own default codec
        ("x.csv.gz", "csv", "gzip"),
        ("X.CSV.ZST", "csv", "zstd"),
        ("x.csv", "csv", "none"),
        ("x.json", "json", "none"),
        ("x.zip", "zip", "none"),
        ("x.duckdb", "historify", "none"),
        ("x.txt", "csv", "none"),  # not a name readers know: the user's own
        ("x", "csv", "none"),
    ],
)
def test_what_a_name_says_when_nothing_was_chosen(name, fmt, codec):
    got = options_for_name(CSV, name, format_chosen=False, compression_chosen=False)
    assert (got.format, got.codec) == (fmt, codec)


@pytest.mark.parametrize(
    ("opts", "name", "message"),
    [
        (ExportOptions(NIFTY, format="csv"), "x.parquet",
         "x.parquet is the name of a Parquet file, but the format chosen writes CSV:"
         " name it x.csv"),
        (ExportOptions(NIFTY, format="parquet"), "x.csv.gz",
         "x.csv.gz is the name of a CSV file, but the format chosen writes Parquet:"
         " name it x.parquet"),
        (ExportOptions(NIFTY, compression="gzip"), "x.csv",
         "x.csv is the name of a plain CSV file, but the compression chosen writes"
         " gzip-compressed CSV: name it x.csv.gz"),
        (ExportOptions(NIFTY, compression="zstd"), "x.csv.gz",
         "x.csv.gz is the name of a gzip-compressed CSV file, but the compression chosen writes"
         " zstd-compressed CSV: name it x.csv.zst"),
        # a folder is named for its files: one named for other files is refused the same way
        (ExportOptions(NIFTY, per_contract=True), "x.parquet",
         "x.parquet is the name of a folder of Parquet files, but the format chosen writes CSV:"
         " name it x.csv"),
        (ExportOptions(NIFTY, format="parquet", parquet_partitioned=True), "d.csv",
         "d.csv is the name of a folder of CSV files, but the format chosen writes Parquet:"
         " name it d.parquet"),
        (ExportOptions(NIFTY, per_contract=True, compression="zstd"), "f.csv.gz",
         "f.csv.gz is the name of a folder of gzip-compressed CSV files, but the compression"
         " chosen writes zstd-compressed CSV: name it f.csv.zst"),
    ],
)  # fmt: skip
def test_a_contradiction_is_refused_with_the_right_name(opts, name, message):
    with pytest.raises(InvalidOptionsError) as info:
        options_for_name(opts, name, format_chosen=True, compression_chosen=True)
    assert str(info.value) == message


def test_a_chosen_compression_stays_where_the_name_allows_it():
    snappy = ExportOptions(NIFTY, compression="snappy")  # a Parquet codec, named x.parquet
    got = options_for_name(snappy, "x.parquet", format_chosen=False, compression_chosen=True)
    assert (got.format, got.codec) == ("parquet", "snappy")


@pytest.mark.parametrize(
    ("opts", "name", "fmt", "codec"),
    [  # a folder is named for its files, as Spark names a dataset folder x.parquet
        (ExportOptions(NIFTY, per_contract=True), "x.parquet", "parquet", "zstd"),
        (ExportOptions(NIFTY, per_contract=True), "x.json", "json", "none"),
        (ExportOptions(NIFTY, per_contract=True), "x.csv.gz", "csv", "gzip"),
        (ExportOptions(NIFTY, per_contract=True), "x", "csv", "none"),
        (ExportOptions(NIFTY, per_contract=True), "x.duckdb", "historify", "none"),
        (ExportOptions(NIFTY, format="historify"), "x.parquet", "historify", "none"),
        (ExportOptions(NIFTY, format="parquet", parquet_partitioned=True), "d.parquet",
         "parquet", "zstd"),
    ],
)  # fmt: skip
def test_a_folder_is_named_for_its_files(opts, name, fmt, codec):
    got = options_for_name(opts, name, format_chosen=False, compression_chosen=False)
    assert (got.format, got.codec, got.output_is_folder) == (fmt, codec, True)


def test_per_contract_files_named_zip_are_the_zip_of_them():
    opts = ExportOptions(NIFTY, per_contract=True)
    got = options_for_name(opts, "x.zip", format_chosen=False, compression_chosen=False)
    assert (got.format, got.output_is_folder) == ("zip", False)  # one CSV per contract in it
    with pytest.raises(InvalidOptionsError, match="is the name of a ZIP file, but the format"):
        options_for_name(opts, "x.zip", format_chosen=True, compression_chosen=False)


def test_a_partitioned_dataset_is_parquet_only():
    with pytest.raises(InvalidOptionsError, match="Parquet only, not JSON"):
        ExportOptions(NIFTY, format="json", parquet_partitioned=True).validate()


def test_cli_folders_hold_what_their_names_say(db, tmp_path, capsys):
    base = ["export", "--db", str(db), "-i", "NIFTY", "-q"]
    # --per-contract into x.parquet: Parquet files (was CSV text in a folder named .parquet)
    assert main([*base, "--per-contract", "-o", str(tmp_path / "x.parquet")]) == exitcodes.OK
    files = sorted((tmp_path / "x.parquet").iterdir())
    assert files and all(f.suffix == ".parquet" for f in files)
    assert sum(pl.read_parquet(f).height for f in files) == 24
    # --partitioned alone: a Parquet dataset (was one CSV file named ds)
    assert main([*base, "--partitioned", "-o", str(tmp_path / "ds")]) == exitcodes.OK
    assert (tmp_path / "ds").is_dir()
    assert pl.scan_parquet(tmp_path / "ds" / "**" / "*.parquet").collect().height == 24
    capsys.readouterr()
    # a format that cannot be partitioned, and a folder named for other files: refused
    assert main([*base, "-f", "json", "--partitioned", "-o", str(tmp_path / "j")]) == 2
    assert "a partitioned dataset is written in Parquet only, not JSON" in capsys.readouterr().err
    assert main([*base, "-f", "csv", "--per-contract", "-o", str(tmp_path / "c.parquet")]) == 2
    assert "name it " + str(tmp_path / "c.csv") in capsys.readouterr().err
    assert not (tmp_path / "j").exists() and not (tmp_path / "c.parquet").exists()


def test_cli_writes_what_the_name_says_and_refuses_a_contradiction(db, tmp_path, capsys):
    base = ["export", "--db", str(db), "-i", "NIFTY", "-q"]
    assert main([*base, "-o", str(tmp_path / "n.parquet")]) == exitcodes.OK
    assert (tmp_path / "n.parquet").read_bytes()[:4] == b"PAR1"
    assert pl.read_parquet(tmp_path / "n.parquet").height == 24
    assert main([*base, "-o", str(tmp_path / "n.csv.gz")]) == exitcodes.OK
    assert pd.read_csv(tmp_path / "n.csv.gz").shape[0] == 24  # pandas infers gzip by the name
    assert gzip.decompress((tmp_path / "n.csv.gz").read_bytes()).startswith(b"openalgo_symbol,")
    capsys.readouterr()
    assert main([*base, "-o", str(tmp_path / "m.csv"), "--compression", "gzip"]) == 2
    assert "name it " + str(tmp_path / "m.csv.gz") in capsys.readouterr().err
    assert main([*base, "-o", str(tmp_path / "p.parquet"), "-f", "json"]) == 2
    assert "name it " + str(tmp_path / "p.json") in capsys.readouterr().err
    assert not (tmp_path / "m.csv").exists() and not (tmp_path / "p.parquet").exists()
    # s3://bucket/prefix/ is a folder for the default name: no name to go by (not refused)
    from expirytrack_desktop.export.s3 import names_a_folder

    assert names_a_folder("s3://b/fno/") and not names_a_folder("s3://b/fno/x.parquet")
