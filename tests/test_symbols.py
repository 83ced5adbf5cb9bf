"""OpenAlgo symbols: the documented examples, hard bases, strictness, and a round trip."""

from __future__ import annotations

import calendar
import locale
import time
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expirytrack_desktop.export.symbols import (
    OpenAlgoSymbol,
    openalgo_for_contract,
    openalgo_symbol,
    parse_openalgo_symbol,
)
from expirytrack_desktop.upstox.models import Contract


@pytest.mark.parametrize(
    ("base", "expiry", "kind", "strike", "expected"),
    [
        ("NIFTY", date(2025, 4, 24), "FUT", None, "NIFTY24APR25FUT"),
        ("NIFTY", date(2025, 4, 17), "PE", 20400.0, "NIFTY17APR2520400PE"),
        ("VEDL", date(2024, 4, 25), "CE", 292.5, "VEDL25APR24292.5CE"),
        ("BANKNIFTY", date(2025, 9, 16), "PE", 47500, "BANKNIFTY16SEP2547500PE"),
        ("NIFTYNXT50", date(2025, 1, 30), "CE", 65000, "NIFTYNXT5030JAN2565000CE"),
        ("SENSEX50", date(2025, 12, 5), "FUT", None, "SENSEX5005DEC25FUT"),
        ("M&M", date(2024, 3, 28), "CE", 1622.5, "M&M28MAR241622.5CE"),
        ("BAJAJ-AUTO", date(2024, 5, 30), "PE", 9000, "BAJAJ-AUTO30MAY249000PE"),
        ("NIFTY", date(2025, 4, 24), "fut", 0.0, "NIFTY24APR25FUT"),  # strike ignored for FUT
    ],
)
def test_examples(base, expiry, kind, strike, expected):
    assert openalgo_symbol(base, expiry, kind, strike) == expected
    parsed = parse_openalgo_symbol(expected)
    assert parsed == OpenAlgoSymbol(
        base, expiry, None if kind.upper() == "FUT" else float(strike), kind.upper()
    )


def test_sensex50_is_not_sensex():
    assert parse_openalgo_symbol("SENSEX5024APR25FUT").base == "SENSEX50"
    assert parse_openalgo_symbol("SENSEX24APR25FUT").base == "SENSEX"
    assert parse_openalgo_symbol("SENSEX5024APR2580000CE") == OpenAlgoSymbol(
        "SENSEX50", date(2025, 4, 24), 80000.0, "CE"
    )


_FRENCH_ABBR = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
                "nov.", "déc.")  # fmt: skip
_FRENCH_NAMES = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
                 "septembre", "octobre", "novembre", "décembre")  # fmt: skip


@pytest.fixture
def french_months(monkeypatch):
    """The platform speaks French wherever Python asks it for a month's name: ``%b``/``%B`` in
    ``time.strftime`` (which ``date.strftime`` calls), ``locale.nl_langinfo`` and ``calendar``.
    Patched rather than ``setlocale('fr_FR')``, which most machines (CI's too) cannot do."""
    real_strftime = time.strftime

    def strftime(fmt, t=None):
        t = time.localtime() if t is None else t
        month = t[1] - 1
        fmt = fmt.replace("%b", _FRENCH_ABBR[month]).replace("%h", _FRENCH_ABBR[month])
        return real_strftime(fmt.replace("%B", _FRENCH_NAMES[month]), t)

    real_langinfo = locale.nl_langinfo
    langinfo = {getattr(locale, f"ABMON_{i}"): a for i, a in enumerate(_FRENCH_ABBR, start=1)}
    langinfo |= {getattr(locale, f"MON_{i}"): n for i, n in enumerate(_FRENCH_NAMES, start=1)}
    monkeypatch.setattr(time, "strftime", strftime)
    monkeypatch.setattr(
        locale, "nl_langinfo", lambda item: langinfo.get(item) or real_langinfo(item)
    )
    monkeypatch.setattr(calendar, "month_abbr", ["", *_FRENCH_ABBR])
    monkeypatch.setattr(calendar, "month_name", ["", *_FRENCH_NAMES])


def test_month_names_ignore_locale(french_months):
    # Any way of asking the platform for a month name now answers in French ...
    assert date(2025, 4, 24).strftime("%d%b%y").upper() == "24AVR.25"
    assert locale.nl_langinfo(locale.ABMON_4) == calendar.month_abbr[4] == "avr."
    # ... and the symbols still use the fixed English names, both ways.
    assert openalgo_symbol("NIFTY", date(2025, 4, 24), "FUT", None) == "NIFTY24APR25FUT"
    assert openalgo_symbol("NIFTY", date(2025, 2, 27), "CE", 22700) == "NIFTY27FEB2522700CE"
    assert parse_openalgo_symbol("NIFTY24DEC25FUT").expiry == date(2025, 12, 24)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "NIFTY",
        "NIFTY24APR25",
        "NIFTY16SEP25C22700",  # the export document's example: not the stated format
        "NIFTY24APR2520400.0PE",  # non-canonical strike
        "NIFTY24APR25020400PE",
        "nifty24APR25FUT",
        "NIFTY31FEB25FUT",
        "NIFTY24Apr25FUT",
        "24APR25FUT",
        "NIFTY24APR250CE",
    ],
)
def test_rejects_what_it_would_not_write(bad):
    with pytest.raises(ValueError):
        parse_openalgo_symbol(bad)


@pytest.mark.parametrize(
    ("base", "expiry", "kind", "strike"),
    [
        ("NIFTY", date(2025, 4, 24), "CE", None),
        ("NIFTY", date(2025, 4, 24), "CE", -5.0),
        ("NIFTY", date(2025, 4, 24), "CE", float("nan")),
        ("NIFTY", date(2025, 4, 24), "XX", 100.0),
        ("", date(2025, 4, 24), "FUT", None),
        ("NIFTY 50", date(2025, 4, 24), "FUT", None),
        ("NIFTY", date(1999, 4, 24), "FUT", None),
    ],
)
def test_format_rejects_bad_input(base, expiry, kind, strike):
    with pytest.raises(ValueError):
        openalgo_symbol(base, expiry, kind, strike)


def test_for_contract():
    c = Contract(
        instrument_key="NSE_FO|54452|24-04-2025",
        underlying_key="NSE_EQ|INE205A01025",
        underlying_symbol="VEDL",
        expiry=date(2024, 4, 25),
        instrument_type="CE",
        strike_price=292.5,
        trading_symbol="VEDL 292.5 CE 25 APR 24",
        exchange_token="54452",
        lot_size=1550,
        tick_size=0.05,
    )
    assert openalgo_for_contract(c) == "VEDL25APR24292.5CE"


bases = st.one_of(
    st.sampled_from(
        [
            "NIFTY",
            "BANKNIFTY",
            "FINNIFTY",
            "MIDCPNIFTY",
            "NIFTYNXT50",
            "SENSEX",
            "BANKEX",
            "SENSEX50",
            "M&M",
            "BAJAJ-AUTO",
            "MARUTI",
            "DECCANCE",
        ]
    ),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789&-", min_size=1, max_size=14),
)
expiries = st.dates(min_value=date(2000, 1, 1), max_value=date(2099, 12, 31))
strikes = st.one_of(
    st.integers(min_value=1, max_value=200_000).map(float),
    st.integers(min_value=1, max_value=4_000_000).map(lambda n: n * 5 / 100),
    st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False),
)


@given(bases, expiries, st.sampled_from(["CE", "PE"]), strikes)
def test_round_trip_options(base, expiry, kind, strike):
    sym = openalgo_symbol(base, expiry, kind, strike)
    assert parse_openalgo_symbol(sym) == OpenAlgoSymbol(base, expiry, strike, kind)


@given(bases, expiries)
def test_round_trip_futures(base, expiry):
    sym = openalgo_symbol(base, expiry, "FUT", None)
    assert parse_openalgo_symbol(sym) == OpenAlgoSymbol(base, expiry, None, "FUT")
    assert parse_openalgo_symbol(sym).symbol == sym
