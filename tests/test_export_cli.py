"""``expirytrack export`` end to end through ``cli.main.main``."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from contextlib import closing
from pathlib import Path

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import list_export_history
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.settings import Settings
from tests._export_db import build_db, expected_rows


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def run(*argv: str) -> int:
    return main(["export", *argv])


def test_csv_to_a_file_by_symbol(db, tmp_path, capsys):
    out = tmp_path / "nifty.csv"
    code = run("--db", str(db), "--instrument", "NIFTY", "--out", str(out))
    assert code == exitcodes.OK
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["openalgo_symbol"] for r in rows] == [
        r[0] for r in expected_rows([100, 101, 102, 103, 104])
    ]
    captured = capsys.readouterr()
    assert "exported 24 rows" in captured.out and str(out) in captured.out
    assert "exporting 24 rows of 5 contracts" in captured.err  # plain lines: not a TTY
    assert "100% 24 rows" in captured.err


def test_folder_out_uses_the_default_name(db, tmp_path, capsys):
    folder = tmp_path / "exports"
    folder.mkdir()
    code = run(
        "--db", str(db), "-i", "NSE_INDEX|Nifty 50", "-i", "SENSEX50",
        "--format", "zip", "--out", str(folder), "-q",
    )  # fmt: skip
    assert code == exitcodes.OK
    (made,) = folder.iterdir()
    assert made.name.startswith("OpenAlgo_ExpiryTrack_All_") and made.suffix == ".zip"
    assert len(made.stem.split("_")) == 5  # OpenAlgo ExpiryTrack All YYYYMMDD HHMMSS
    with zipfile.ZipFile(made) as zf:
        assert "SENSEX5024APR25FUT.csv" in zf.namelist()
    assert capsys.readouterr().err == ""


def test_filters_and_metadata(db, tmp_path):
    out = tmp_path / "x.json"
    code = run(
        "--db", str(db), "-i", "NIFTY", "--format", "json", "--expiry", "2025-04-24",
        "--type", "ce,PE", "--strike-min", "20400", "--strike-max", "20400",
        "--from", "2025-04-22", "--to", "2025-04-23", "--metadata", "--out", str(out),
    )  # fmt: skip
    assert code == exitcodes.OK
    doc = json.loads(out.read_text())
    contracts = doc["data"]["Nifty_50"]["2025-04-24"]
    got = {c["openalgo_symbol"]: len(c["historical_data"]) for c in contracts}
    assert got == {"NIFTY24APR2520400CE": 4, "NIFTY24APR2520400PE": 4}
    assert contracts[0]["lot_size"] == 75


def test_default_folder_from_settings_and_env_db(db, tmp_path, monkeypatch):
    paths = AppPaths.default()
    target = tmp_path / "chosen"
    Settings(export_dir=str(target)).save(paths.settings_path)
    monkeypatch.setenv("EXPIRYTRACK_DB", str(db))
    assert run("-i", "VEDL", "--format", "parquet", "--partitioned", "-q") == exitcodes.OK
    (made,) = target.iterdir()
    assert made.is_dir() and made.name.startswith("OpenAlgo_ExpiryTrack_VEDL_")
    assert (made / "underlying=VEDL" / "expiry=2024-04-25" / "part-0.parquet").is_file()
    assert list_export_history(db)[0].format == "parquet"


def test_default_folder_without_settings(db):
    assert run("--db", str(db), "-i", "SENSEX50", "-q") == exitcodes.OK
    (made,) = AppPaths.default().export_dir.iterdir()
    assert made.name.startswith("OpenAlgo_ExpiryTrack_SNSX50_") and made.suffix == ".csv"


def test_existing_file_and_overwrite(db, tmp_path, capsys):
    out = tmp_path / "x.csv"
    out.write_text("keep me\n")
    assert run("--db", str(db), "-i", "NIFTY", "--out", str(out)) == exitcodes.BAD_INPUT
    err = capsys.readouterr().err
    assert "--overwrite" in err
    # refused before the planning: no "exporting N rows" line ahead of the refusal
    assert "exporting" not in err and err.count("\n") == 1
    # the way to overwrite said once, as the flag (not also the engine's generic advice)
    assert err.count("overwrite") == 1 and "x.csv exists (choose another name, or" in err
    assert out.read_text() == "keep me\n"
    code = run("--db", str(db), "-i", "NIFTY", "--out", str(out), "-q", "--overwrite")
    assert code == exitcodes.OK
    assert out.read_text().startswith("openalgo_symbol,")


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["-i", "BANKNIFTY"], exitcodes.BAD_INPUT, "no collected data for instrument 'BANKNIFTY'"),
        (["-i", "NIFTY", "--from", "2020-01-01", "--to", "2020-01-02"], exitcodes.BAD_INPUT,
         "no 1minute candles"),
        (["-i", "NIFTY", "--last-days", "3", "--from", "2025-01-01"], exitcodes.BAD_INPUT,
         "either last N days"),
        (["-i", "SENSEX50", "--type", "PE"], exitcodes.BAD_INPUT, "no stored contract"),
    ],
)  # fmt: skip
def test_bad_input(db, tmp_path, capsys, argv, code, message):
    assert run("--db", str(db), "--out", str(tmp_path / "x.csv"), *argv) == code
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not (tmp_path / "x.csv").exists()


def test_bad_argument_values_exit_2(db):
    for argv in (["--type", "CX"], ["--expiry", "24-04-2025"], ["--format", "xls"]):
        with pytest.raises(SystemExit) as info:
            run("--db", str(db), "-i", "NIFTY", *argv)
        assert info.value.code == exitcodes.BAD_INPUT


def test_storage_errors(db, tmp_path, capsys):
    missing = tmp_path / "missing.sqlite3"  # bad input, as for chain, verify and watch
    assert run("--db", str(missing), "-i", "NIFTY") == exitcodes.BAD_INPUT
    assert f"no database at {missing}" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = blocker / "sub" / "x.csv"
    assert run("--db", str(db), "-i", "NIFTY", "--out", str(out), "-q") == exitcodes.STORAGE
    assert "cannot write" in capsys.readouterr().err


def test_progress_bar_on_a_terminal():
    from expirytrack_desktop.cli.export_cmd import _Reporter
    from expirytrack_desktop.export.api import ExportProgress

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    with closing(_Reporter(stream, quiet=False)) as rep:
        rep(ExportProgress("counting", 0, 1000, 0, 3))
        rep(ExportProgress("writing", 600, 1000, 2, 3, "NIFTY24APR25FUT"))
        rep(ExportProgress("writing", 1000, 1000, 3, 3))
        assert rep.bar.n == 1000
    assert "1.00k/1.00k" in stream.getvalue()
