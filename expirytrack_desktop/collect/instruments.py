"""Known underlyings by their trading symbol, and validation of instrument keys.

One table for the CLI (``--instrument NIFTY``) and the UI's instrument picker.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# symbol -> (instrument_key, display name)
KNOWN_UNDERLYINGS: dict[str, tuple[str, str]] = {
    "NIFTY": ("NSE_INDEX|Nifty 50", "Nifty 50"),
    "BANKNIFTY": ("NSE_INDEX|Nifty Bank", "Nifty Bank"),
    "FINNIFTY": ("NSE_INDEX|Nifty Fin Service", "Nifty Financial Services"),
    "MIDCPNIFTY": ("NSE_INDEX|NIFTY MID SELECT", "Nifty Midcap Select"),
    "NIFTYNXT50": ("NSE_INDEX|Nifty Next 50", "Nifty Next 50"),
    "SENSEX": ("BSE_INDEX|SENSEX", "BSE Sensex"),
    "BANKEX": ("BSE_INDEX|BANKEX", "BSE Bankex"),
}
_SYMBOL_BY_KEY = {key: sym for sym, (key, _) in KNOWN_UNDERLYINGS.items()}

# Segments an underlying key may name (the API's documented pattern, minus the F&O segments,
# which hold contracts, not underlyings).
UNDERLYING_SEGMENTS = ("NSE_INDEX", "BSE_INDEX", "NSE_EQ", "BSE_EQ", "MCX_INDEX", "NSE_COM")
_KEY_RE = re.compile(r"^(?P<segment>[A-Z_]+)\|(?P<name>[^|]+)$")


class InstrumentError(ValueError):
    """The text is neither a well-formed underlying key nor a known symbol."""


def resolve_instrument(text: str) -> str:
    """``"NIFTY"`` or ``"NSE_INDEX|Nifty 50"`` -> the instrument key; InstrumentError otherwise.

    Only the form is checked here; whether the API knows the key is learned from its answer.
    """
    value = (text or "").strip()
    if not value:
        raise InstrumentError("instrument is empty: give a key like 'NSE_INDEX|Nifty 50' or NIFTY")
    known = KNOWN_UNDERLYINGS.get(value.upper())
    if known and "|" not in value:
        return known[0]
    m = _KEY_RE.match(value)
    if not m:
        names = ", ".join(KNOWN_UNDERLYINGS)
        raise InstrumentError(
            f"malformed instrument {value!r}: expected SEGMENT|name such as "
            f"'NSE_INDEX|Nifty 50', or one of {names}"
        )
    if m.group("segment") not in UNDERLYING_SEGMENTS:
        raise InstrumentError(
            f"malformed instrument key {value!r}: segment {m.group('segment')!r} is not one of "
            f"{', '.join(UNDERLYING_SEGMENTS)}"
        )
    return value


def symbol_for_key(instrument_key: str) -> str | None:
    """The known trading symbol of a key (``'NSE_INDEX|Nifty 50' -> 'NIFTY'``), else None."""
    return _SYMBOL_BY_KEY.get(instrument_key)


def display_name(instrument_key: str, names: Mapping[str, str] | None = None) -> str:
    """Short label for lists and logs: the trading symbol (``names``: the store's, from
    ``db.underlying_names``, so stocks read 'RELIANCE'; else the index table), else the key."""
    return (names or {}).get(instrument_key) or symbol_for_key(instrument_key) or instrument_key
