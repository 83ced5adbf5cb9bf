"""Typed results of the Upstox endpoints the product uses."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

INTERVALS: tuple[str, ...] = ("1minute", "3minute", "5minute", "15minute", "30minute", "day")
INTERVAL_MINUTES: dict[str, int] = {
    "1minute": 1,
    "3minute": 3,
    "5minute": 5,
    "15minute": 15,
    "30minute": 30,
    "day": 1440,
}


def is_stock_key(instrument_key: str) -> bool:
    """An equity underlying's key (``NSE_EQ|INE002A01018``), not an index's (``NSE_INDEX|…``)."""
    return instrument_key.split("|", 1)[0] in ("NSE_EQ", "BSE_EQ")


# One candle: (epoch seconds of the candle start, open, high, low, close, volume, oi).
Candle = tuple[int, float, float, float, float, int, int]


@dataclass(frozen=True, slots=True)
class Contract:
    """One expired option or future contract (an item of the contract endpoints)."""

    instrument_key: str  # the expired_instrument_key, e.g. "NSE_FO|54452|24-04-2025"
    underlying_key: str
    underlying_symbol: str
    expiry: date
    instrument_type: str  # "CE" | "PE" | "FUT"
    strike_price: float | None
    trading_symbol: str
    exchange_token: str
    lot_size: int
    tick_size: float
    freeze_quantity: float | None = None
    minimum_lot: int | None = None
    weekly: bool | None = None
    name: str = ""
    segment: str = ""
    exchange: str = ""
    underlying_type: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)


@dataclass(frozen=True, slots=True)
class Profile:
    user_id: str
    user_name: str
    email: str
    broker: str
    exchanges: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TokenGrant:
    """Answer of the token exchange; ``access_token`` must never be logged or repr'd."""

    access_token: str = field(repr=False)
    user_id: str = ""
    user_name: str = ""
    email: str = ""
    extended_token: str | None = field(default=None, repr=False)
