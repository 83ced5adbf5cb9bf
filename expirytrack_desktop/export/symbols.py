"""OpenAlgo symbols: the canonical names quants' backtests use for F&O contracts.

Format:

- futures: ``BASE + DDMMMYY + FUT``            e.g. ``NIFTY24APR25FUT``
- options: ``BASE + DDMMMYY + STRIKE + CE|PE``  e.g. ``NIFTY17APR2520400PE``,
  ``VEDL25APR24292.5CE`` (an integral strike has no ``.0``; a fractional one keeps its
  decimals).

BASE is the API's ``underlying_symbol`` (NIFTY, BANKNIFTY, NIFTYNXT50, SENSEX50, stocks ...).
The export document also shows ``NIFTY16SEP25C22700``; that example contradicts the format the
same document states, and the stated format wins.

Month names come from a fixed table, never ``strftime('%b')``: that follows the machine's
locale and would give e.g. ``avr.`` on a French Windows.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from expirytrack_desktop.upstox.models import Contract

MONTHS: tuple[str, ...] = (
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN",
    "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
)  # fmt: skip
_MONTH_NUMBER = {name: i for i, name in enumerate(MONTHS, start=1)}
CONTRACT_TYPES: tuple[str, ...] = ("CE", "PE", "FUT")

# The date is the LAST "DD MMM YY" in the symbol: after it come only strike digits and the
# CE/PE/FUT suffix, which hold no month name. So a greedy BASE is exact even for bases that
# end in digits (SENSEX50 + 24APR25 -> "SENSEX5024APR25FUT" is SENSEX50, not SENSEX).
_SYMBOL_RE = re.compile(
    r"(?P<base>.+)(?P<day>\d{2})(?P<month>" + "|".join(MONTHS) + r")(?P<year>\d{2})"
    r"(?:(?P<fut>FUT)|(?P<strike>\d+(?:\.\d+)?)(?P<side>CE|PE))"
)
_BASE_RE = re.compile(r"[A-Z0-9&_\-]+")


class OpenAlgoSymbol(NamedTuple):
    """A parsed OpenAlgo symbol; ``strike`` is None for futures."""

    base: str
    expiry: date
    strike: float | None
    contract_type: str  # "CE" | "PE" | "FUT"

    @property
    def symbol(self) -> str:
        return openalgo_symbol(self.base, self.expiry, self.contract_type, self.strike)


def format_strike(strike: float) -> str:
    """Shortest exact decimal text: ``20400.0 -> "20400"``, ``292.5 -> "292.5"``.

    ``repr`` is the shortest text that reads back as the same float, so parsing inverts it.
    """
    value = Decimal(repr(float(strike)))
    if value == value.to_integral_value():
        return str(int(value))
    return format(value.normalize(), "f")


def format_expiry(expiry: date) -> str:
    """``date(2025, 4, 24) -> "24APR25"``, locale-independent."""
    if not 2000 <= expiry.year <= 2099:
        raise ValueError(f"expiry year {expiry.year} is outside 2000-2099 (two-digit year)")
    return f"{expiry.day:02d}{MONTHS[expiry.month - 1]}{expiry.year % 100:02d}"


def openalgo_symbol(base: str, expiry: date, contract_type: str, strike: float | None) -> str:
    """OpenAlgo symbol of a contract. ``strike`` is ignored for futures, required for options."""
    kind = contract_type.upper()
    if not base or not _BASE_RE.fullmatch(base):
        raise ValueError(f"invalid base symbol {base!r}")
    if kind == "FUT":
        return f"{base}{format_expiry(expiry)}FUT"
    if kind not in ("CE", "PE"):
        raise ValueError(f"contract type must be CE, PE or FUT, not {contract_type!r}")
    if strike is None or not strike > 0 or strike != strike or strike == float("inf"):
        raise ValueError(f"an option needs a positive strike, not {strike!r}")
    return f"{base}{format_expiry(expiry)}{format_strike(strike)}{kind}"


def parse_openalgo_symbol(sym: str) -> OpenAlgoSymbol:
    """Inverse of :func:`openalgo_symbol`; raises ValueError for anything it would not write.

    Strict on purpose (no ``20400.0``, no lower case): a symbol parses only if formatting the
    result gives back exactly the same text, so symbols are usable as keys.
    """
    m = _SYMBOL_RE.fullmatch(sym)
    if not m:
        raise ValueError(f"not an OpenAlgo symbol: {sym!r}")
    try:
        expiry = date(2000 + int(m["year"]), _MONTH_NUMBER[m["month"]], int(m["day"]))
    except ValueError:
        raise ValueError(f"not an OpenAlgo symbol (bad date): {sym!r}") from None
    if m["fut"]:
        parsed = OpenAlgoSymbol(m["base"], expiry, None, "FUT")
    else:
        parsed = OpenAlgoSymbol(m["base"], expiry, float(m["strike"]), m["side"])
    try:
        canonical = parsed.symbol
    except ValueError:
        canonical = None
    if canonical != sym:
        raise ValueError(f"not a canonical OpenAlgo symbol: {sym!r}")
    return parsed


# Upstox segment -> OpenAlgo exchange. F&O contracts carry their own segment (``NSE_FO|...``);
# a contract whose key has none falls back on its underlying's exchange (``BSE_INDEX`` -> BFO).
_FO_SEGMENTS = {"NSE_FO": "NFO", "BSE_FO": "BFO", "MCX_FO": "MCX", "NCD_FO": "CDS", "BCD_FO": "BCD"}
_UNDERLYING_EXCHANGES = {"NSE": "NFO", "BSE": "BFO", "MCX": "MCX"}


def openalgo_exchange(contract_key: str, underlying_key: str) -> str:
    """OpenAlgo exchange of a contract: ``NFO`` (NSE F&O), ``BFO`` (BSE F&O), ...

    OpenAlgo and Historify name an instrument by symbol *and* exchange, so every export
    carries it. ``NSE_FO|54452|24-04-2025`` -> NFO; a key without an F&O segment is judged
    by its underlying (``BSE_INDEX|SENSEX`` -> BFO).
    """
    segment = contract_key.partition("|")[0].upper()
    if segment in _FO_SEGMENTS:
        return _FO_SEGMENTS[segment]
    venue = underlying_key.partition("|")[0].upper().partition("_")[0]
    return _UNDERLYING_EXCHANGES.get(venue, "NFO")


def openalgo_for_contract(contract: Contract) -> str:
    """OpenAlgo symbol of an API contract (BASE = its ``underlying_symbol``)."""
    return openalgo_symbol(
        contract.underlying_symbol.strip().upper(),
        contract.expiry,
        contract.instrument_type,
        contract.strike_price,
    )
