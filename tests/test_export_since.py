"""Only what is new (export/since.py): an export narrowed to the (underlying, expiry) pairs
whose candles changed since the fingerprints of an earlier one; and the scheduled export
that keeps them (``schedule add --export-preset P --export-new``)."""

from __future__ import annotations

import csv
import sqlite3
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest

from expirytrack_desktop.export.api import ExportOptions
from expirytrack_desktop.export.presets import Preset, presets_path, save_preset
from expirytrack_desktop.export.since import changed_since
from expirytrack_desktop.schedule import Schedule, ScheduleError
from expirytrack_desktop.schedule.exports import check_exports, run_exports, seen_path
from tests._export_db import build_db

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")
NIFTY, VEDL = "NSE_INDEX|Nifty 50", "NSE_EQ|INE205A01025"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def add_candle(db: Path, contract_id: int, ts: int) -> None:
    with closing(sqlite3.connect(db)) as conn, conn:  # O 5 H 6 L 4 C 5.5 (paise, relative)
        conn.execute("INSERT INTO candle VALUES (?, 1, ?, 550, -50, 50, -150, 10, 20)",
                     (contract_id, ts))  # fmt: skip


def test_first_everything_then_nothing_then_only_what_changed(db):
    opts = ExportOptions(ALL)
    first, prints = changed_since(db, opts, {})
    assert first is not None  # every pair with candles; NIFTY's two expiries among them
    assert set(first.underlyings) == set(ALL)
    assert first.expiries == (date(2024, 4, 25), date(2025, 4, 17), date(2025, 4, 24))
    assert changed_since(db, opts, prints) == (None, prints)
    add_candle(db, 104, 1744778700)  # NIFTY 17 APR 25: one new candle
    narrowed, after = changed_since(db, opts, prints)
    assert narrowed is not None
    assert (narrowed.underlyings, narrowed.expiries) == ((NIFTY,), (date(2025, 4, 17),))
    assert after != prints
    with closing(sqlite3.connect(db)) as conn, conn:  # a corrected price, the same count
        conn.execute("UPDATE candle SET close = close + 5 WHERE contract_id = 106")
    narrowed, _ = changed_since(db, opts, after)
    assert narrowed is not None and narrowed.underlyings == (VEDL,)


def test_scheduled_export_of_what_is_new(db, tmp_path):
    config, state, exports = tmp_path / "config", tmp_path / "state", tmp_path / "exports"
    for d in (config, state, exports):
        d.mkdir()
    save_preset(presets_path(config), Preset("all-csv", ExportOptions(ALL), str(exports) + "/"))
    s = Schedule("nightly", ["NIFTY"], ["16:30"], export_preset="all-csv", export_new=True)
    check_exports(s.validate(), config)
    said: list[str] = []
    clock = iter(f"2025-05-0{d}T16:30:00" for d in range(1, 10))

    def run() -> list[Path]:
        from datetime import datetime

        before = set(exports.iterdir())
        assert run_exports(
            s,
            db,
            config,
            exports,
            said.append,
            now=lambda: datetime.fromisoformat(next(clock)),
            state_dir=state,
        )
        return sorted(set(exports.iterdir()) - before)  # fmt: skip

    def rows(path: Path) -> list[dict[str, str]]:
        with path.open(encoding="utf-8") as f:
            return list(csv.DictReader(f))

    [whole] = run()  # the first run: all the preset selects
    assert len(rows(whole)) == 32
    assert seen_path(state, "nightly").is_file()
    assert run() == [] and said[-1] == "export preset 'all-csv': nothing new since its last export"
    add_candle(db, 105, 1745384100)  # SENSEX50 24 APR 25
    [new] = run()
    got = rows(new)
    assert {r["openalgo_symbol"] for r in got} == {"SENSEX5024APR25FUT"}  # that expiry whole
    assert len(got) == 5 and said[-1].endswith("(new: expiries 2025-04-24)")
    # the preset changed (another selection): everything it selects, again
    save_preset(presets_path(config), Preset("all-csv", ExportOptions(ALL, contract_types=("FUT",)),
                                             str(exports) + "/"))  # fmt: skip
    [again] = run()
    assert {r["openalgo_symbol"][-3:] for r in rows(again)} == {"FUT"}


def test_only_with_a_preset_and_never_into_one_file(tmp_path):
    with pytest.raises(ScheduleError, match="--export-new needs --export-preset"):
        Schedule("x", ["NIFTY"], ["16:30"], export_new=True).validate()
    config = tmp_path / "config"
    config.mkdir()
    save_preset(presets_path(config), Preset("one", ExportOptions(ALL), str(tmp_path / "a.csv")))
    s = Schedule("x", ["NIFTY"], ["16:30"], export_preset="one", export_new=True)
    with pytest.raises(Exception, match=r"writes one file .* give it a folder for --export-new"):
        check_exports(s, config)
    # saved with a folder, then the preset saved anew onto one file: the run refuses too
    said: list[str] = []
    db = build_db(tmp_path / "store.sqlite3")
    assert not run_exports(s, db, config, tmp_path, said.append, state_dir=tmp_path)
    assert "give it a folder for --export-new" in said[-1] and not (tmp_path / "a.csv").exists()
