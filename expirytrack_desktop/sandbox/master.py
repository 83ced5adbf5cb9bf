"""The simulator's instrument master: Upstox's public ``complete.json.gz`` for the simulated
market, in the same format (field names and types as ``upstox-api.md`` "Instrument master").

It lists what is *current* on the market's ``today``: the next monthly contracts of every
F&O underlying (and the next weeklies of the weekly indices), the index rows, the stocks'
NSE and BSE cash rows, and the noise a real master has: cash-only stocks, indices without
F&O, MCX commodity futures and currency futures. A few undocumented fields ride along, as in
the real file. Built once per market (deterministic), gzip-compressed.
"""

from __future__ import annotations

import gzip
import json
import zlib
from datetime import date, timedelta
from typing import Any

from expirytrack_desktop.sandbox import tradingcal
from expirytrack_desktop.sandbox.market import Market, Underlying, _ist_midnight_epoch, _sym_date

MONTHLY_AHEAD = 3  # a stock has its next three monthly series listed
WEEKLY_AHEAD = 4

# Noise: cash-only companies, indices without F&O, commodities, currencies.
_CASH_ONLY = (
    ("SUNDARMFIN", "SUNDARAM FINANCE LTD"), ("ZENSARTECH", "ZENSAR TECHNOLOGIES LTD"),
    ("RATNAMANI", "RATNAMANI MET & TUB LTD."), ("JBCHEPHARM", "JB CHEMICALS & PHARMA LTD"),
    ("CARBORUNIV", "CARBORUNDUM UNIVERSAL LTD"), ("KPRMILL", "K.P.R. MILL LIMITED"),
    ("GRINDWELL", "GRINDWELL NORTON LTD"), ("VINATIORGA", "VINATI ORGANICS LTD"),
    ("BAJAJ-HIND", "BAJAJ HINDUSTHAN SUGAR LT"), ("S&SPOWER", "S&S POWER SWITCHGEAR LTD"),
)  # fmt: skip
_INDICES_NO_FO = (
    ("NSE_INDEX", "Nifty IT", "NIFTY IT"), ("NSE_INDEX", "Nifty Auto", "NIFTY AUTO"),
    ("NSE_INDEX", "India VIX", "INDIA VIX"), ("BSE_INDEX", "BSE100", "BSE100"),
)  # fmt: skip
_COMMODITIES = (("CRUDEOIL", 100, 5900.0), ("GOLD", 1, 76000.0), ("SILVER", 30, 90000.0),
                ("NATURALGAS", 1250, 280.0))  # fmt: skip


def _expiry_ms(d: date) -> int:
    """Upstox's convention: the expiry day's last second, IST, in epoch milliseconds."""
    return (_ist_midnight_epoch(d) + 86399) * 1000


def _upcoming(u: Underlying, today: date) -> list[tuple[date, bool]]:
    out: dict[date, bool] = {}
    y, m = today.year, today.month
    while len([d for d, w in out.items() if not w]) < MONTHLY_AHEAD:
        d = tradingcal.monthly_expiry(u.exchange, y, m)
        if d >= today:
            out[d] = False
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    if u.weekly:
        end = today + timedelta(days=7 * WEEKLY_AHEAD - 1)
        for d in tradingcal.weekly_expiries(u.exchange, today, end):
            out.setdefault(d, True)
    return sorted(out.items())


def _fo_rows(u: Underlying, today: date, per_side: int) -> list[dict[str, Any]]:
    """An underlying's live contracts: as many strikes per expiry as the market lists for an
    expired one (``Market._contracts_of``), as a real master lists every strike."""
    rows = []
    token = 900_000 + (zlib.crc32(u.key.encode()) % 40_000) * 20
    atm = round(u.base_price / u.strike_step) * u.strike_step
    n = per_side
    if u.underlying_type == "EQUITY":
        n = min(n, 49)
        atm = max(atm, (n + 1) * u.strike_step)  # every strike above zero
    strikes = [round(atm + i * u.strike_step, 2) for i in range(-n, n + 1)]
    for d, weekly in _upcoming(u, today):
        kinds: list[tuple[str, float]] = [] if weekly else [("FUT", 0.0)]
        kinds += [(side, k) for k in strikes for side in ("CE", "PE")]
        for kind, strike in kinds:
            token += 1
            label = "FUT" if kind == "FUT" else f"{_strike(strike)} {kind}"
            tick = u.future_tick if kind == "FUT" else u.option_tick
            rows.append({
                "weekly": weekly,
                "segment": u.segment,
                "name": u.name,
                "exchange": u.exchange,
                "expiry": _expiry_ms(d),
                "instrument_type": kind,
                "asset_symbol": u.symbol,
                "underlying_symbol": u.symbol,
                "instrument_key": f"{u.segment}|{token}",
                "lot_size": u.lot_size,
                "freeze_quantity": u.freeze_quantity,
                "exchange_token": str(token),
                "minimum_lot": u.lot_size,
                "asset_key": u.key,
                "underlying_key": u.key,
                "tick_size": float(tick),
                "asset_type": u.underlying_type,
                "underlying_type": u.underlying_type,
                "trading_symbol": f"{u.symbol} {label} {_sym_date(d)}",
                "strike_price": float(strike),
                "qty_multiplier": 1.0,
            })  # fmt: skip
    return rows


def _strike(k: float) -> str:
    return str(int(k)) if float(k).is_integer() else repr(float(k))


def _equity_row(segment: str, isin: str, symbol: str, name: str, token: int) -> dict[str, Any]:
    return {
        "segment": segment,
        "name": name,
        "exchange": segment[:3],
        "isin": isin,
        "instrument_type": "EQ",
        "instrument_key": f"{segment}|{isin}",
        "lot_size": 1,
        "freeze_quantity": 100000.0,
        "exchange_token": str(token),
        "tick_size": 5.0,
        "trading_symbol": symbol,
        "short_name": name.title()[:20],
        "security_type": "NORMAL",
    }


def _index_row(key: str, symbol: str, token: int) -> dict[str, Any]:
    segment, name = key.split("|", 1)
    return {
        "segment": segment,
        "name": name,
        "exchange": segment[:3],
        "instrument_type": "INDEX",
        "instrument_key": key,
        "exchange_token": str(token),
        "trading_symbol": symbol,
    }


def master_rows(market: Market) -> list[dict[str, Any]]:
    """Every row of the simulated master (cash and index rows first, as Upstox orders them)."""
    today = market.today
    rows: list[dict[str, Any]] = []
    token = 1000
    for u in market.underlyings():
        token += 1
        if u.underlying_type == "INDEX":
            rows.append(_index_row(u.key, u.symbol, 26000 + token))
        else:
            isin = u.key.split("|", 1)[1]
            rows.append(_equity_row("NSE_EQ", isin, u.symbol, u.name, token))
            if token % 3:  # most are listed on BSE too
                rows.append(_equity_row("BSE_EQ", isin, u.symbol, u.name, 500000 + token))
    for j, (symbol, name) in enumerate(_CASH_ONLY):
        isin = f"INE9{j:02d}Z01{j % 10}{(j * 7) % 10}"
        rows.append(_equity_row("NSE_EQ", isin, symbol, name, 7000 + j))
        rows.append(_equity_row("BSE_EQ", isin, symbol, name, 507000 + j))
    for j, (segment, name, symbol) in enumerate(_INDICES_NO_FO):
        rows.append(_index_row(f"{segment}|{name}", symbol, 27000 + j))
    for u in market.underlyings():
        rows.extend(_fo_rows(u, today, market.strikes_per_side))
    for j, (symbol, lot, price) in enumerate(_COMMODITIES):
        d = date(today.year + (today.month == 12), today.month % 12 + 1, 19)
        rows.append({
            "weekly": False, "segment": "MCX_FO", "name": symbol, "exchange": "MCX",
            "expiry": _expiry_ms(d), "instrument_type": "FUT", "underlying_symbol": symbol,
            "instrument_key": f"MCX_FO|{440000 + j}", "lot_size": lot, "freeze_quantity": 0.0,
            "exchange_token": str(440000 + j), "minimum_lot": 1,
            "underlying_key": f"MCX_COM|{symbol}", "tick_size": 100.0,
            "underlying_type": "COM", "trading_symbol": f"{symbol} FUT {_sym_date(d)}",
            "strike_price": 0.0, "last_price": price,
        })  # fmt: skip
    rows.append({
        "weekly": False, "segment": "NCD_FO", "name": "USDINR", "exchange": "NSE",
        "expiry": _expiry_ms(today + timedelta(days=20)), "instrument_type": "FUT",
        "underlying_symbol": "USDINR", "instrument_key": "NCD_FO|1200", "lot_size": 1000,
        "freeze_quantity": 10001.0, "exchange_token": "1200", "minimum_lot": 1,
        "underlying_key": "NSE_INDEX|USDINR", "tick_size": 0.25, "underlying_type": "CUR",
        "trading_symbol": "USDINR FUT", "strike_price": 0.0,
    })  # fmt: skip
    return rows


def master_gzip(market: Market) -> bytes:
    """The master as served: a gzip-compressed JSON array (deterministic bytes)."""
    body = json.dumps(master_rows(market), separators=(",", ":")).encode()
    return gzip.compress(body, compresslevel=6, mtime=0)
