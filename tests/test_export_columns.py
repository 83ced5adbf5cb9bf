"""Custom CSV columns and their order (``--columns``, ``ExportOptions.csv_columns``).

A custom export must be exactly the default export's columns picked out and reordered: the
reference is the default CSV with metadata (itself checked byte for byte against the
row-by-row writer in test_export_fast), parsed and written again with only those columns.
"""

from __future__ import annotations

import csv
import gzip
import io
import zipfile
from pathlib import Path

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import ExportOptions, InvalidOptionsError, run_export
from expirytrack_desktop.export.options import (
    ALL_CSV_COLUMNS,
    options_from_json,
    parse_csv_columns,
)
from expirytrack_desktop.export.presets import Preset, get_preset, save_preset
from tests._export_db import build_db
from tests.test_export_fast import noisy_db

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")
SHAPES = [
    ("openalgo_symbol", "date", "time", "open", "high", "low", "close", "volume", "oi", "exchange"),
    ("timestamp", "open", "high", "low", "close", "volume", "oi"),  # Historify's CSV layout
    ("exchange", "openalgo_symbol", "trading_symbol", "strike", "close"),
    tuple(reversed(ALL_CSV_COLUMNS)),
    ("volume",),
]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def reference(db: Path, tmp_path: Path, columns: tuple[str, ...]) -> bytes:
    """The default export with metadata, cut down to ``columns`` by the csv module."""
    out = tmp_path / "full.csv"
    if not out.exists():
        run_export(db, ExportOptions(ALL, include_metadata=True), out, record_history=False)
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"), newline="")))
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[r[c] for c in columns] for r in rows])
    return buf.getvalue().encode()


@pytest.mark.parametrize("columns", SHAPES)
@pytest.mark.parametrize("arrow", [True, False], ids=["adbc", "sqlite3"])
def test_custom_columns_are_the_default_columns_picked_and_reordered(db, tmp_path, columns, arrow):
    out = tmp_path / "custom.csv"
    opts = ExportOptions(ALL, csv_columns=columns)
    result = run_export(db, opts, out, record_history=False, arrow_reader=arrow)
    assert result.rows == 32
    assert out.read_bytes() == reference(db, tmp_path, columns)


def test_noisy_prices_print_as_the_default_writer_prints_them(db, tmp_path):
    noisy = noisy_db(db)
    columns = ("close", "open", "openalgo_symbol", "high", "low", "oi", "volume")
    out = tmp_path / "custom.csv"
    run_export(noisy, ExportOptions(ALL, csv_columns=columns), out, record_history=False)
    assert out.read_bytes() == reference(noisy, tmp_path, columns)


def test_the_default_list_is_todays_file_byte_for_byte(db, tmp_path):
    run_export(db, ExportOptions(ALL), tmp_path / "a.csv", record_history=False)
    same = ExportOptions(ALL, csv_columns=ALL_CSV_COLUMNS[:11])
    assert not same.custom_columns
    run_export(db, same, tmp_path / "b.csv", record_history=False)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    head = (tmp_path / "a.csv").read_bytes().split(b"\n", 1)[0]
    assert head == b"openalgo_symbol,date,time,timestamp,open,high,low,close,volume,oi,exchange"


def test_per_contract_gzip_and_zip_members_use_the_columns(db, tmp_path):
    columns = ("timestamp", "close", "volume")
    run_export(
        db,
        ExportOptions(ALL, csv_columns=columns, per_contract=True, compression="gzip"),
        tmp_path / "folder",
        record_history=False,
    )
    run_export(db, ExportOptions(ALL, csv_columns=columns, format="zip"), tmp_path / "x.zip")
    with zipfile.ZipFile(tmp_path / "x.zip") as zf:
        members = {n: zf.read(n) for n in zf.namelist() if n.endswith(".csv")}
    files = {p.name[: -len(".gz")]: gzip.decompress(p.read_bytes())
             for p in (tmp_path / "folder").iterdir()}  # fmt: skip
    assert files == members and len(files) == 7  # the empty contract: a header only
    body = files["NIFTY24APR2520400CE.csv"].decode().splitlines()
    assert body[0] == "timestamp,close,volume"
    assert len(body) == 5 and all(line.count(",") == 2 for line in body)
    assert body[1].startswith("2025-04-23T09:15:00+05:30,")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("openalgo_symbol,price", "unknown CSV column 'price'; the columns are: openalgo_symbol,"),
        ("date,time,date", "CSV column 'date' is given twice"),
        (" , ", "no CSV column chosen"),
    ],
)
def test_bad_lists_are_refused(text, message):
    with pytest.raises(InvalidOptionsError) as err:
        parse_csv_columns(text)
    assert str(err.value).startswith(message)


def test_columns_with_metadata_or_another_format_are_refused():
    with pytest.raises(InvalidOptionsError, match="name the metadata columns"):
        ExportOptions(ALL, csv_columns=("open",), include_metadata=True).validate()
    with pytest.raises(InvalidOptionsError, match="for CSV and ZIP exports, not parquet"):
        ExportOptions(ALL, csv_columns=("open",), format="parquet").validate()
    with pytest.raises(InvalidOptionsError, match="given twice"):
        ExportOptions(ALL, csv_columns=("open", "open")).validate()


def test_cli_columns_and_their_errors(db, tmp_path, capsys):
    out = tmp_path / "x.csv"
    argv = ["export", "--db", str(db), "-i", "NIFTY", "-q", "-o", str(out)]
    assert main([*argv, "--columns", "Timestamp, open,close,exchange"]) == exitcodes.OK
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,open,close,exchange"
    assert lines[1].endswith(",NFO") and lines[1].count(",") == 3
    capsys.readouterr()
    code = main([*argv, "--overwrite", "--columns", "symbol,date"])
    err = capsys.readouterr().err.strip()
    assert code == exitcodes.BAD_INPUT
    assert err.count("\n") == 0 and "unknown CSV column 'symbol'" in err
    assert ", ".join(ALL_CSV_COLUMNS) in err  # every valid name is listed
    assert main([*argv, "--overwrite", "--columns", "open,open"]) == exitcodes.BAD_INPUT
    assert "given twice" in capsys.readouterr().err
    assert out.read_text().splitlines()[0] == "timestamp,open,close,exchange"  # untouched


def test_columns_are_kept_in_presets(db, tmp_path, capsys):
    store = tmp_path / "presets.json"
    opts = ExportOptions(ALL[:1], csv_columns=("close", "timestamp"))
    assert options_from_json(opts.to_json_dict()) == opts
    save_preset(store, Preset("short", opts))
    assert get_preset(store, "short").options.csv_columns == ("close", "timestamp")
    argv = ["export", "--db", str(db), "-i", "NIFTY", "-q", "--columns", "close,timestamp"]
    assert main([*argv, "--save-preset", "cols", "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["export", "--db", str(db), "--preset", "cols", "-q", "--overwrite"]) == 0
    assert (tmp_path / "a.csv").read_text().splitlines()[0] == "close,timestamp"
    # another format given over the preset: its CSV columns do not apply (no error)
    pq = tmp_path / "a.parquet"
    assert main(["export", "--db", str(db), "--preset", "cols", "-q", "-f", "parquet",
                 "-o", str(pq)]) == 0  # fmt: skip
    assert pq.stat().st_size > 0


def test_a_mirror_ignores_the_csv_columns_of_a_preset(db, tmp_path):
    from expirytrack_desktop.export.mirror import update_mirror

    result = update_mirror(db, ExportOptions(ALL, csv_columns=("close",)), tmp_path / "m")
    assert result.rows == 32 and len(result.written) == 4
