"""The option chain at a past minute equals a direct computation from the documented views.

A NIFTY monthly (with a future) and a weekly (no future: forward by put-call parity) are
collected from the simulator through the real CLI; every strike is then checked at several
minutes — the first minute of a day, a minute in which a contract did not trade, the last
minute, a holiday, before the open — against values computed here from ``historical_data``.
"""

from __future__ import annotations

import csv
import io
import math
import sqlite3
from collections import defaultdict
from contextlib import closing
from datetime import date, datetime, time, timedelta

import pytest
from vollib.black.implied_volatility import implied_volatility as vollib_iv

from expirytrack_desktop.analysis.candles import DbCandleSource
from expirytrack_desktop.analysis.chain import build_chain
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.store import open_database
from expirytrack_desktop.timeutil import IST
from tests.analysis_helpers import MONTHLY, NIFTY, RATE, WEEKLY, collect_chain_db


@pytest.fixture(scope="module")
def chain_db(tmp_path_factory):
    return collect_chain_db(tmp_path_factory.mktemp("chain"), (MONTHLY, WEEKLY))


def at(d: date, hh: int, mm: int) -> datetime:
    return datetime.combine(d, time(hh, mm), tzinfo=IST)


def epoch(dt: datetime) -> int:
    return int(dt.timestamp())


class Truth:
    """The chain computed independently: documented views, plain Python."""

    def __init__(self, path, expiry: date) -> None:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            self.contracts = conn.execute(
                "SELECT expired_instrument_key, contract_type, strike_price FROM contracts "
                "WHERE instrument_key = ? AND expiry_date = ?",
                (NIFTY, expiry.isoformat()),
            ).fetchall()
            self.candles: dict[str, list[tuple[int, float, int, int]]] = defaultdict(list)
            for key, ts, close, volume, oi in conn.execute(
                "SELECT h.expired_instrument_key, h.timestamp, h.close, h.volume, h.oi "
                "FROM historical_data h JOIN contracts c "
                "ON c.expired_instrument_key = h.expired_instrument_key "
                "WHERE c.instrument_key = ? AND c.expiry_date = ? ORDER BY h.timestamp",
                (NIFTY, expiry.isoformat()),
            ):
                self.candles[key].append((epoch(datetime.fromisoformat(ts)), close, volume, oi))
        self.expiry = expiry

    def side(self, key: str, minute: datetime) -> dict[str, object] | None:
        t = epoch(minute)
        midnight = epoch(datetime.combine(minute.date(), time(0), tzinfo=IST))
        upto = [c for c in self.candles[key] if c[0] <= t]
        if not upto:
            return None
        today = [c for c in upto if c[0] >= midnight]
        return {
            "ltp": upto[-1][1],
            "oi": upto[-1][3],
            "volume": sum(c[2] for c in today),
            "oi_change": (upto[-1][3] - today[0][3]) if today else 0,
            "traded_today": bool(today),
        }

    def t_years(self, minute: datetime) -> float:
        expiry_close = datetime.combine(self.expiry, time(15, 30), tzinfo=IST)
        return (expiry_close - (minute + timedelta(minutes=1))).total_seconds() / (365 * 86400)

    def forward(self, minute: datetime) -> tuple[float | None, str]:
        fut = [k for k, kind, _ in self.contracts if kind == "FUT"]
        if fut:
            s = self.side(fut[0], minute)
            if s and s["traded_today"]:
                return float(s["ltp"]), "future"  # type: ignore[arg-type]
        best = None
        by_strike: dict[float, dict[str, dict]] = defaultdict(dict)
        for key, kind, strike in self.contracts:
            s = self.side(key, minute)
            if kind != "FUT" and s and s["traded_today"]:
                by_strike[strike][kind] = s
        for strike in sorted(by_strike):
            sides = by_strike[strike]
            if "CE" in sides and "PE" in sides:
                c, p = sides["CE"]["ltp"], sides["PE"]["ltp"]
                if best is None or abs(c - p) < best[0]:
                    g = math.exp(RATE * self.t_years(minute))
                    best = (abs(c - p), strike + g * (c - p))
        return (best[1], "parity") if best else (None, "")


def check_snapshot(chain_db, expiry: date, minute: datetime) -> None:
    """Both readings (one query; the viewer's in-memory day) equal the direct computation."""
    for cache in (False, True):
        with open_database(chain_db, create=False, check_writable=False) as db:
            source = DbCandleSource(db, cache=cache)
            before = None
            if cache:  # the viewer arrives here from another day and minute (IVs as seeds)
                build_chain(source, NIFTY, expiry, minute - timedelta(days=1, minutes=7))
                before = build_chain(source, NIFTY, expiry, minute - timedelta(minutes=3))
            snap = build_chain(source, NIFTY, expiry, minute, rate=RATE, previous=before)
        _check(Truth(chain_db, expiry), snap, minute)


def _check(truth: Truth, snap, minute: datetime) -> None:
    assert snap.when.minute == minute and snap.when.note == ""
    forward, source = truth.forward(minute)
    assert forward is not None
    assert snap.forward == pytest.approx(forward, rel=1e-12) and snap.forward_source == source
    t = truth.t_years(minute)
    assert snap.t_years == pytest.approx(t, rel=1e-12)
    options = [(k, kind, s) for k, kind, s in truth.contracts if kind != "FUT"]
    assert sorted({s for _, _, s in options}) == [r.strike for r in snap.rows]
    checked_iv = 0
    for row in snap.rows:
        for kind, side in (("CE", row.ce), ("PE", row.pe)):
            key = next((k for k, kd, s in options if kd == kind and s == row.strike), None)
            if key is None:
                assert side is None
                continue
            expect = truth.side(key, minute)
            assert side is not None
            if expect is None:
                assert side.ltp is None and side.oi is None and side.iv is None
                continue
            assert side.ltp == expect["ltp"]
            assert side.oi == expect["oi"]
            assert side.volume == expect["volume"]
            assert side.oi_change == expect["oi_change"]
            flag = "c" if kind == "CE" else "p"
            if side.iv is None:
                intrinsic = max(
                    (forward - row.strike) if flag == "c" else (row.strike - forward), 0
                )
                assert side.ltp * math.exp(RATE * t) <= intrinsic + 1e-9
            else:
                checked_iv += 1
                theirs = vollib_iv(side.ltp, forward, row.strike, RATE, t, flag)
                assert side.iv == pytest.approx(theirs, abs=1e-6)
                assert side.delta is not None and (side.delta > 0) == (kind == "CE")
    assert checked_iv >= len(snap.rows)  # most sides have an IV
    ce_oi = sum(r.ce.oi or 0 for r in snap.rows if r.ce)
    pe_oi = sum(r.pe.oi or 0 for r in snap.rows if r.pe)
    assert snap.pcr == pytest.approx(pe_oi / ce_oi)
    assert snap.atm_strike == min((r.strike for r in snap.rows), key=lambda k: abs(k - forward))
    oi = [(r.strike, r.ce.oi or 0 if r.ce else 0, r.pe.oi or 0 if r.pe else 0) for r in snap.rows]
    pain = {s: sum(c * max(s - k, 0) + p * max(k - s, 0) for k, c, p in oi) for s, _, _ in oi}
    assert snap.max_pain == min(pain, key=lambda s: (pain[s], s))


def trading_days(chain_db, expiry: date) -> list[date]:
    truth = Truth(chain_db, expiry)
    days = {datetime.fromtimestamp(c[0], IST).date() for cs in truth.candles.values() for c in cs}
    return sorted(days)


def test_monthly_chain_equals_direct_computation(chain_db):
    days = trading_days(chain_db, MONTHLY)
    assert len(days) > 10
    day = days[-3]
    for minute in (at(day, 9, 15), at(day, 10, 30), at(day, 15, 29), at(days[0], 9, 16)):
        check_snapshot(chain_db, MONTHLY, minute)


def test_weekly_chain_uses_put_call_parity(chain_db):
    days = trading_days(chain_db, WEEKLY)
    check_snapshot(chain_db, WEEKLY, at(days[-2], 11, 0))
    with open_database(chain_db, create=False, check_writable=False) as db:
        snap = build_chain(DbCandleSource(db), NIFTY, WEEKLY, at(days[-2], 11, 0), rate=RATE)
    assert snap.forward_source == "parity"


def test_a_minute_in_which_a_contract_did_not_trade(chain_db):
    """The LTP is then the close of its last earlier candle, and the row is not empty."""
    truth = Truth(chain_db, MONTHLY)
    day = trading_days(chain_db, MONTHLY)[-4]
    for minute in (at(day, 10, m) for m in range(60)):
        gaps = [k for k, kind, _ in truth.contracts
                if kind != "FUT" and epoch(minute) not in {c[0] for c in truth.candles[k]}
                and truth.side(k, minute)]  # fmt: skip
        if gaps:
            break
    else:
        pytest.fail("the simulator traded every contract every minute: no gap to test")
    check_snapshot(chain_db, MONTHLY, minute)


@pytest.mark.parametrize(
    ("asked", "shown", "why"),
    [
        ((date(2025, 9, 27), 10, 30), (date(2025, 9, 26), 15, 29), "not a trading day"),
        ((date(2025, 9, 23), 8, 0), (date(2025, 9, 22), 15, 29), "before the open"),
        ((date(2025, 9, 23), 16, 5), (date(2025, 9, 23), 15, 29), "after the close"),
    ],
)
def test_minutes_outside_the_session_show_the_nearest_earlier_trading_minute(
    chain_db, asked, shown, why
):
    with open_database(chain_db, create=False, check_writable=False) as db:
        snap = build_chain(DbCandleSource(db), NIFTY, MONTHLY, at(*asked), rate=RATE)
    assert snap.when.minute == at(*shown)
    assert why in snap.when.note and "2025-09-" in snap.when.note
    assert snap.rows and snap.forward is not None


def test_before_any_stored_data_is_an_empty_state(chain_db):
    with open_database(chain_db, create=False, check_writable=False) as db:
        snap = build_chain(DbCandleSource(db), NIFTY, MONTHLY, at(date(2025, 1, 2), 10, 0))
    assert snap.empty and snap.rows == [] and "no stored data" in snap.when.note


def test_cli_chain_csv_equals_the_snapshot(chain_db, capsys):
    minute = at(trading_days(chain_db, MONTHLY)[-3], 10, 30)
    code = main(["chain", "-i", "NIFTY", "-e", MONTHLY.isoformat(),
                 "--at", minute.strftime("%Y-%m-%d %H:%M"), "--db", str(chain_db),
                 "--format", "csv", "--rate", str(RATE)])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == exitcodes.OK
    assert "forward" in err and "ATM" in err
    rows = list(csv.DictReader(io.StringIO(out)))
    with open_database(chain_db, create=False, check_writable=False) as db:
        snap = build_chain(DbCandleSource(db), NIFTY, MONTHLY, minute, rate=RATE)
    assert len(rows) == len(snap.rows)
    for got, row in zip(rows, snap.rows, strict=True):
        assert float(got["strike"]) == row.strike
        for prefix, side in (("ce", row.ce), ("pe", row.pe)):
            if side is None or side.ltp is None:
                assert got[f"{prefix}_ltp"] == ""
                continue
            assert float(got[f"{prefix}_ltp"]) == side.ltp
            assert int(got[f"{prefix}_oi"]) == side.oi
            assert int(got[f"{prefix}_volume"]) == side.volume
            assert (float(got[f"{prefix}_iv"]) if got[f"{prefix}_iv"] else None) == side.iv
        assert float(got["forward"]) == snap.forward and float(got["rate"]) == RATE


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "2025-09-23"], "YYYY-MM-DD HH:MM"),
        (["--at", "2025-09-23 25:00"], "YYYY-MM-DD HH:MM"),
        (["--at", "2025-09-23 10:30", "-e", "2025-09-31"], "day is out of range"),
        (
            ["--at", "2025-09-23 10:30", "-e", "2024-01-25"],
            "no expiry 2024-01-25 of NSE_INDEX|Nifty 50 in the database; collect it first: "
            "expirytrack collect -i 'NIFTY' -e 2024-01-25",
        ),
        (["--at", "2025-09-23 10:30", "--rate", "6.5"], "decimal"),
        (["--at", "2025-09-23 10:30", "-i", "NSE_FO|1"], "segment"),
    ],
)
def test_cli_chain_bad_input(chain_db, capsys, args, message):
    base = ["chain", "-i", "NIFTY", "-e", MONTHLY.isoformat(), "--db", str(chain_db)]
    code = main(base + args)
    err = capsys.readouterr().err
    assert code == exitcodes.BAD_INPUT
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err


def test_cli_chain_missing_database(tmp_path, capsys):
    code = main(["chain", "-i", "NIFTY", "-e", "2025-09-30", "--at", "2025-09-23 10:30",
                 "--db", str(tmp_path / "none.sqlite3")])  # fmt: skip
    assert code == exitcodes.BAD_INPUT and "no database" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists()
