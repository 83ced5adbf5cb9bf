"""Selection filters, time ranges, sort order, file names, previews and wizard lists."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from expirytrack_desktop.export.api import (
    EmptySelectionError,
    ExportOptions,
    InvalidOptionsError,
    UnknownInstrumentError,
    available_expiries,
    available_underlyings,
    count_rows,
    default_filename,
    preview,
    resolve_underlyings,
    run_export,
)
from expirytrack_desktop.export.options import default_csv_columns
from expirytrack_desktop.export.query import ts_bounds
from tests._export_db import build_db, expected_rows

NIFTY = "NSE_INDEX|Nifty 50"
ALL = (NIFTY, "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def exported(db: Path, tmp_path: Path, opts: ExportOptions, **kw) -> list[tuple]:
    out = tmp_path / f"f{len(list(tmp_path.iterdir()))}.csv"
    run_export(db, opts, out, record_history=False, **kw)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    return [
        (r["openalgo_symbol"], int(datetime.fromisoformat(r["timestamp"]).timestamp()))
        for r in rows
    ]


def keys(rows: list[tuple]) -> list[tuple]:
    return [(r[0], r[1]) for r in rows]


def test_sorted_by_symbol_then_time(db, tmp_path):
    got = exported(db, tmp_path, ExportOptions(ALL))
    assert got == sorted(got)
    assert got == keys(expected_rows())


def test_contract_types(db, tmp_path):
    got = exported(db, tmp_path, ExportOptions(ALL, contract_types=("FUT",)))
    assert got == keys(expected_rows([100, 105]))
    got = exported(db, tmp_path, ExportOptions((NIFTY,), contract_types=("PE",)))
    assert got == keys(expected_rows([102]))


def test_strike_range_keeps_futures(db, tmp_path):
    got = exported(db, tmp_path, ExportOptions((NIFTY,), strike_min=20400, strike_max=20400))
    assert got == keys(expected_rows([100, 101, 102]))
    got = exported(db, tmp_path, ExportOptions(ALL, strike_max=300, contract_types=("CE",)))
    assert got == keys(expected_rows([106]))


def test_expiries(db, tmp_path):
    got = exported(db, tmp_path, ExportOptions((NIFTY,), expiries=(date(2025, 4, 17),)))
    assert got == keys(expected_rows([104]))


def test_from_to_dates_are_inclusive_ist_days(db, tmp_path):
    opts = ExportOptions(ALL, date_from=date(2025, 4, 22), date_to=date(2025, 4, 23))
    lo, hi = ts_bounds(opts)
    assert lo == int(datetime(2025, 4, 21, 18, 30, tzinfo=UTC).timestamp())
    assert hi == int(datetime(2025, 4, 23, 18, 30, tzinfo=UTC).timestamp())
    got = exported(db, tmp_path, opts)
    assert got == keys(expected_rows(None, lo, hi))
    assert {s for s, _ in got} == {
        "NIFTY24APR2520400CE", "NIFTY24APR2520400PE", "NIFTY24APR25FUT", "SENSEX5024APR25FUT"
    }  # fmt: skip


def test_last_days_uses_the_injected_clock(db, tmp_path):
    def clock():
        return datetime(2025, 4, 24, 10, 0, tzinfo=UTC)  # 15:30 IST on the 24th

    got = exported(db, tmp_path, ExportOptions(ALL, last_days=2), clock=clock)
    days = {datetime.fromtimestamp(ts, UTC).date() for _, ts in got}
    assert days == {date(2025, 4, 23), date(2025, 4, 24)}
    assert count_rows(db, ExportOptions(ALL, last_days=2), clock=clock) == len(got)


def test_interval(db, tmp_path):
    got = exported(db, tmp_path, ExportOptions(ALL, interval="5minute"))
    assert got == [("NIFTY24APR25FUT", 1745293500)]


def test_default_filename():
    now = datetime(2025, 9, 19, 9, 14, 56)
    assert (
        default_filename(ExportOptions((NIFTY,)), now)
        == "OpenAlgo_ExpiryTrack_Nifty_50_20250919_091456.csv"
    )
    assert (
        default_filename(ExportOptions(("NSE_INDEX|Nifty Bank",), format="json"), now)
        == "OpenAlgo_ExpiryTrack_Nifty_Bank_20250919_091456.json"
    )
    assert (
        default_filename(ExportOptions(ALL, format="zip"), now)
        == "OpenAlgo_ExpiryTrack_All_20250919_091456.zip"
    )
    stock = ExportOptions(("NSE_EQ|INE205A01025",), format="parquet", parquet_partitioned=True)
    assert (
        default_filename(stock, now, symbol="VEDL") == "OpenAlgo_ExpiryTrack_VEDL_20250919_091456"
    )
    one = ExportOptions((NIFTY,), expiries=(date(2025, 4, 24),))
    assert default_filename(one, now) == "OpenAlgo_ExpiryTrack_Nifty_50_24APR25_20250919_091456.csv"
    two = ExportOptions(
        (NIFTY,), expiries=(date(2025, 4, 24), date(2025, 4, 17)), compression="gzip"
    )
    assert (
        default_filename(two, now)
        == "OpenAlgo_ExpiryTrack_Nifty_50_17APR25-24APR25_20250919_091456.csv.gz"
    )


@pytest.mark.parametrize(
    ("opts", "error"),
    [
        (ExportOptions(()), EmptySelectionError),
        (ExportOptions(ALL, expiries=()), EmptySelectionError),
        (ExportOptions(ALL, contract_types=()), EmptySelectionError),
        (ExportOptions(ALL, contract_types=("XX",)), InvalidOptionsError),
        (ExportOptions(ALL, format="xls"), InvalidOptionsError),  # type: ignore[arg-type]
        (ExportOptions(ALL, interval="2minute"), InvalidOptionsError),
        (ExportOptions(ALL, strike_min=10, strike_max=5), InvalidOptionsError),
        (ExportOptions(ALL, last_days=0), InvalidOptionsError),
        (ExportOptions(ALL, last_days=3, date_from=date(2025, 1, 1)), InvalidOptionsError),
        (
            ExportOptions(ALL, date_from=date(2025, 2, 1), date_to=date(2025, 1, 1)),
            InvalidOptionsError,
        ),
    ],
)
def test_invalid_options(db, tmp_path, opts, error):
    with pytest.raises(error) as info:
        run_export(db, opts, tmp_path / "x.csv")
    assert "\n" not in str(info.value) and str(info.value)
    assert list(tmp_path.iterdir()) == [tmp_path / "store.sqlite3"]


def test_preview_and_counts(db):
    p = preview(db, ExportOptions((NIFTY,)), sample_rows=5)
    assert (p.contracts, p.empty_contracts, p.rows) == (5, 1, 24)
    assert len(p.sample) == 5 and p.sample[0][0] == "NIFTY17APR2522000CE"
    assert p.sample[0][1:4] == ("2025-04-16", "09:15:00", "2025-04-16T09:15:00+05:30")
    assert p.first_ts == min(r[1] for r in expected_rows([100, 101, 102, 103, 104]))
    assert count_rows(db, ExportOptions(ALL)) == 32
    assert p.sample_columns == default_csv_columns(False) and p.sample[0][10] == "NFO"


def test_preview_samples_the_columns_the_export_writes(db):
    """A CSV's own columns and order (custom, exchange, metadata); others: the default CSV
    columns with the metadata when asked."""
    cols = ("strike", "openalgo_symbol", "exchange", "close", "time", "lot_size")
    p = preview(db, ExportOptions((NIFTY,), csv_columns=cols), sample_rows=2)
    assert p.sample_columns == cols
    assert p.sample[0] == ("22000", "NIFTY17APR2522000CE", "NFO", p.sample[0][3], "09:15:00", 75)
    assert isinstance(p.sample[0][3], float)
    meta = preview(db, ExportOptions((NIFTY,), format="parquet", include_metadata=True))
    assert meta.sample_columns == default_csv_columns(True)
    row = dict(zip(meta.sample_columns, meta.sample[0], strict=True))
    assert (row["underlying"], row["expiry"], row["option_type"]) == ("NIFTY", "2025-04-17", "CE")


def test_wizard_lists(db):
    us = available_underlyings(db)
    assert [(u.symbol, u.expiries, u.contracts) for u in us] == [
        ("NIFTY", 2, 5), ("SENSEX50", 1, 1), ("VEDL", 1, 1)
    ]  # fmt: skip
    ex = available_expiries(db, [NIFTY], with_candle_counts=True)
    assert [(e.expiry, e.contracts, e.candles) for e in ex] == [
        (date(2025, 4, 17), 1, 4), (date(2025, 4, 24), 4, 20)
    ]  # fmt: skip


def test_resolve_underlyings(db):
    assert resolve_underlyings(db, ["NIFTY", "sensex50", NIFTY]) == (NIFTY, "BSE_INDEX|SNSX50")
    with pytest.raises(UnknownInstrumentError, match="BANKNIFTY"):
        resolve_underlyings(db, ["BANKNIFTY"])


def test_find_contracts_by_openalgo_symbol(db):
    from expirytrack_desktop.export.api import find_contracts

    hits = find_contracts(db, "nifty24apr25")
    assert [h.openalgo_symbol for h in hits] == [
        "NIFTY24APR2520400CE",
        "NIFTY24APR2520450CE",
        "NIFTY24APR25FUT",
    ]  # fmt: skip  (the 20400 PE has no stored symbol: the collector fills it)
    (vedl,) = find_contracts(db, "VEDL25APR24292.5CE")
    assert (vedl.strike, vedl.expiry, vedl.contract_type) == (292.5, date(2024, 4, 25), "CE")
    assert find_contracts(db, "SENSEX50%") == []  # LIKE wildcards are literal
