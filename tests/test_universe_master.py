"""The instrument master: the simulator's copy is shaped like Upstox's (upstox-api.md,
"Instrument master"), and the parser keeps exactly the F&O underlyings, ignores noise and
unknown fields, and refuses a truncated or malformed file whole."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta

import pytest

from expirytrack_desktop.sandbox import tradingcal
from expirytrack_desktop.sandbox.market import Market
from expirytrack_desktop.sandbox.master import master_gzip, master_rows
from expirytrack_desktop.upstox.master import MasterMalformed, parse_master

TODAY = date(2025, 11, 20)

# Field -> type, per row kind, as upstox-api.md documents them.
FO_FIELDS = {
    "weekly": bool, "segment": str, "name": str, "exchange": str, "expiry": int,
    "instrument_type": str, "underlying_symbol": str, "underlying_key": str,
    "underlying_type": str, "instrument_key": str, "exchange_token": str, "lot_size": int,
    "minimum_lot": int, "freeze_quantity": float, "tick_size": float, "trading_symbol": str,
    "strike_price": float,
}  # fmt: skip
EQ_FIELDS = {
    "segment": str, "name": str, "exchange": str, "isin": str, "instrument_type": str,
    "instrument_key": str, "trading_symbol": str, "short_name": str, "lot_size": int,
    "tick_size": float, "freeze_quantity": float, "exchange_token": str, "security_type": str,
}  # fmt: skip
INDEX_FIELDS = {
    "segment": str, "name": str, "instrument_type": str, "instrument_key": str,
    "trading_symbol": str, "exchange_token": str,
}  # fmt: skip


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(seed=7, today=TODAY, stocks=True)


@pytest.fixture(scope="module")
def rows(market) -> list[dict]:
    return json.loads(gzip.decompress(master_gzip(market)))


def _chunks(data: bytes, size: int = 4096) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def _gz(rows: list[dict]) -> bytes:
    return gzip.compress(json.dumps(rows).encode())


def test_simulator_master_has_documented_fields_and_types(rows):
    kinds = Counter()
    for row in rows:
        seg = row["segment"]
        spec = (
            FO_FIELDS if seg.endswith("_FO") else EQ_FIELDS if seg.endswith("_EQ")
            else INDEX_FIELDS
        )  # fmt: skip
        kinds[seg] += 1
        for field, kind in spec.items():
            assert field in row, (field, row)
            assert type(row[field]) is kind, (field, row[field], row)
    # The noise a real master has, and the F&O rows.
    assert {"NSE_FO", "BSE_FO", "NSE_EQ", "BSE_EQ", "NSE_INDEX", "BSE_INDEX", "MCX_FO"} <= set(
        kinds
    )
    fo = [r for r in rows if r["segment"] in ("NSE_FO", "BSE_FO")]
    assert {r["instrument_type"] for r in fo} == {"CE", "PE", "FUT"}
    assert all(r["instrument_key"].count("|") == 1 for r in fo)  # current: no date in the key
    for r in fo:
        if r["instrument_type"] == "FUT":
            assert r["strike_price"] == 0.0 and " FUT " in r["trading_symbol"]
        # expiry: epoch milliseconds of the expiry day (IST), in the future
        day = (datetime.fromtimestamp(r["expiry"] / 1000, UTC) + timedelta(hours=5.5)).date()
        assert day >= TODAY and tradingcal.is_trading_day(day)
    stock_fo = {r["underlying_symbol"] for r in fo if r["underlying_type"] == "EQUITY"}
    assert len(stock_fo) >= 200
    assert {"M&M", "BAJAJ-AUTO", "RELIANCE", "NAM-INDIA", "M&MFIN"} <= stock_fo
    assert any(not float(r["strike_price"]).is_integer() for r in fo)  # e.g. 2.5 steps
    cash = {r["trading_symbol"] for r in rows if r["segment"] == "NSE_EQ"}
    assert cash - stock_fo  # cash-only stocks are listed too


def test_parser_keeps_exactly_the_fo_underlyings(market, rows):
    data = master_gzip(market)
    summary = parse_master(_chunks(data))
    assert summary.rows == len(rows)
    assert summary.compressed_bytes == len(data)
    by_symbol = {u.symbol: u for u in summary.underlyings}
    expected = {u.symbol for u in market.underlyings()}
    assert set(by_symbol) == expected  # no MCX, no currency, no cash-only, no non-F&O index
    rel = by_symbol["RELIANCE"]
    assert (rel.key, rel.kind, rel.segment) == ("NSE_EQ|INE002A01018", "EQUITY", "NSE_FO")
    assert rel.name == "RELIANCE INDUSTRIES LTD"
    nifty = by_symbol["NIFTY"]
    assert (nifty.key, nifty.name, nifty.kind) == ("NSE_INDEX|Nifty 50", "Nifty 50", "INDEX")
    assert by_symbol["SENSEX"].segment == "BSE_FO"
    mm = market.underlying(by_symbol["M&M"].key)
    assert by_symbol["M&M"].lot_size == mm.lot_size
    assert by_symbol["M&M"].name == "MAHINDRA & MAHINDRA LTD"


def test_lot_size_comes_from_the_nearest_expiry():
    base = {
        "segment": "NSE_FO", "instrument_key": "NSE_FO|1", "underlying_key": "NSE_EQ|X",
        "underlying_symbol": "XYZ", "underlying_type": "EQUITY", "instrument_type": "FUT",
        "name": "XYZ LTD",
    }  # fmt: skip
    rows = [
        {**base, "lot_size": 500, "expiry": 2_000_000_000_000},
        {**base, "lot_size": 450, "expiry": 1_900_000_000_000},
        {**base, "lot_size": 475, "expiry": 1_950_000_000_000},
    ]
    (u,) = parse_master([_gz(rows)]).underlyings
    assert u.lot_size == 450


def test_unknown_fields_are_ignored_and_plain_json_is_read(rows):
    extra = [{**r, "some_new_field": [1, {"x": None}], "lot_size_v2": "?"} for r in rows[:400]]
    extra += [r for r in rows if r["segment"] == "NSE_FO"][:50]
    a = parse_master([_gz(extra)])
    b = parse_master([json.dumps(extra).encode()])  # an uncompressed local copy also works
    assert a.underlyings == b.underlyings and a.underlyings


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda r: r.pop("underlying_key"), "underlying_key"),
        (lambda r: r.pop("underlying_symbol"), "underlying_symbol"),
        (lambda r: r.update(lot_size="75"), "lot_size"),
        (lambda r: r.update(lot_size=None), "lot_size"),
        (lambda r: r.pop("expiry"), "expiry"),
        (lambda r: r.pop("segment"), "segment"),
        (lambda r: r.update(underlying_symbol=""), "underlying_symbol"),
    ],
)
def test_a_row_missing_a_required_field_refuses_the_whole_master(rows, mutate, message):
    fo = [dict(r) for r in rows if r["segment"] == "NSE_FO"][:300]
    mutate(fo[123])
    with pytest.raises(MasterMalformed, match=message):
        parse_master([_gz(fo)])


def test_truncated_gzip_is_refused(market):
    data = master_gzip(market)
    for cut in (len(data) // 3, len(data) - 10, len(data) - 1):
        with pytest.raises(MasterMalformed, match="truncated"):
            parse_master(_chunks(data[:cut]))


def test_corrupt_gzip_and_broken_json_are_refused(market, rows):
    data = bytearray(master_gzip(market))
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(MasterMalformed):
        parse_master([bytes(data)])
    text = json.dumps(rows[:50])
    with pytest.raises(MasterMalformed, match="JSON"):
        parse_master([gzip.compress(text[:-40].encode())])  # complete gzip, cut JSON
    with pytest.raises(MasterMalformed, match="JSON"):
        parse_master([gzip.compress(b"[{" + b'"segment": NaNa' + b"}]")])
    with pytest.raises(MasterMalformed, match="not an object"):
        parse_master([gzip.compress(b"[1, 2]")])


def test_a_master_without_fo_rows_or_empty_is_refused(rows):
    cash = [r for r in rows if r["segment"] == "NSE_EQ"]
    with pytest.raises(MasterMalformed, match="no NSE_FO/BSE_FO"):
        parse_master([_gz(cash)])
    with pytest.raises(MasterMalformed, match="no NSE_FO/BSE_FO"):
        parse_master([_gz([])])
    with pytest.raises(MasterMalformed, match="no NSE_FO/BSE_FO"):
        parse_master([gzip.compress(b'{"status": "success"}')])
    with pytest.raises(MasterMalformed, match="empty"):
        parse_master([b""])


def test_master_rows_are_deterministic(market):
    twin = Market(seed=7, today=TODAY, stocks=True)
    assert master_rows(twin) == master_rows(market)
    assert master_gzip(twin) == master_gzip(market)


def test_contracts_per_expiry_is_what_one_expiry_lists(market):
    """The master lists every strike of a live expiry, as Upstox's does: the parser keeps the
    most contracts of one expiry per underlying, which is what an expired monthly of it
    lists (the estimate's count before its contracts are listed)."""
    summary = parse_master(_chunks(master_gzip(market)))
    by_key = {u.key: u for u in summary.underlyings}
    for key in ("NSE_INDEX|Nifty 50", market.underlying_keys()[-1]):  # an index and a stock
        monthly = next(d for d in reversed(market.expiries(key)) if not market.is_weekly(key, d))
        listed = len(market.option_contracts(key, monthly)) + len(
            market.future_contracts(key, monthly)
        )
        assert by_key[key].contracts_per_expiry == listed > 10
    nifty = "NSE_INDEX|Nifty 50"
    week = next(d for d in reversed(market.expiries(nifty)) if market.is_weekly(nifty, d))
    assert by_key[nifty].contracts_per_weekly == len(market.option_contracts(nifty, week))
    assert by_key[market.underlying_keys()[-1]].contracts_per_weekly == 0  # a stock: none
    base = {
        "segment": "NSE_FO", "underlying_key": "NSE_EQ|X", "underlying_symbol": "XYZ",
        "underlying_type": "EQUITY", "name": "XYZ LTD", "lot_size": 500,
    }  # fmt: skip
    rows = [
        {**base, "instrument_key": "NSE_FO|1", "instrument_type": "FUT", "expiry": 1_900_000},
        *({**base, "instrument_key": f"NSE_FO|{i}", "instrument_type": "CE",
           "expiry": 2_000_000} for i in range(2, 5)),
    ]  # fmt: skip
    (x,) = parse_master([_gz(rows)]).underlyings
    assert x.contracts_per_expiry == 3  # the later expiry lists 3, the nearer 1
