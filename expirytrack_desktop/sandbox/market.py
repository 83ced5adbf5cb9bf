"""A synthetic, deterministic market of expired Indian F&O contracts.

Everything derives from ``(seed, today)``: underlyings follow a seeded minute-level random walk
over trading days, option prices come from Black-Scholes on that walk, futures from cost of
carry. 1-minute candles are generated lazily per contract (numpy, a small LRU cache) and every
higher interval is aggregated from them, so the ground truth a test compares with is exactly
what the simulated API serves.

Units as the API sends them: ``tick_size`` is in paise (5 = ₹0.05), prices in rupees on that
grid, volume and open interest in units (multiples of the lot size).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from expirytrack_desktop.sandbox import tradingcal
from expirytrack_desktop.timeutil import IST

MINUTES_PER_DAY = 375  # 09:15 .. 15:29 IST
IST_OFFSET = 19800
SESSION_START = 9 * 3600 + 15 * 60  # seconds after IST midnight
INTERVAL_MINUTES = {"1minute": 1, "3minute": 3, "5minute": 5, "15minute": 15, "30minute": 30}
INTERVALS = (*INTERVAL_MINUTES, "day")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_RATE = 0.065  # cost of carry for futures
_STOCK_TOKENS = 200_000  # = sandbox.stocks.STOCK_TOKEN_BASE: tokens from here are stock ones
_STOCK_STRIDE = 200
_PATH_CACHE = 32  # underlying price paths kept (each ~0.5 MB)


@dataclass(frozen=True, slots=True)
class Underlying:
    """Static facts of one underlying (lot sizes etc. roughly as traded in 2025)."""

    key: str
    symbol: str
    name: str
    segment: str  # F&O segment of its contracts
    exchange: str
    underlying_type: str
    base_price: float
    strike_step: float
    lot_size: int
    freeze_quantity: float
    weekly: bool  # has weekly expiries besides the monthly ones
    vol: float  # annualised volatility of the walk
    token_base: int
    option_tick: int = 5  # paise
    future_tick: int = 10  # paise
    liquidity: float = 1.0  # scales the per-minute trade probability (stocks: thin, < 0.1)


UNDERLYINGS: tuple[Underlying, ...] = (
    Underlying("NSE_INDEX|Nifty 50", "NIFTY", "NIFTY", "NSE_FO", "NSE", "INDEX",
               24000.0, 50.0, 75, 1800.0, True, 0.13, 35000),
    Underlying("NSE_INDEX|Nifty Bank", "BANKNIFTY", "BANKNIFTY", "NSE_FO", "NSE", "INDEX",
               52000.0, 100.0, 35, 900.0, False, 0.16, 40000),
    Underlying("NSE_INDEX|Nifty Fin Service", "FINNIFTY", "FINNIFTY", "NSE_FO", "NSE", "INDEX",
               24500.0, 50.0, 65, 1800.0, False, 0.15, 45000),
    Underlying("NSE_INDEX|NIFTY MID SELECT", "MIDCPNIFTY", "MIDCPNIFTY", "NSE_FO", "NSE",
               "INDEX", 12500.0, 25.0, 140, 2800.0, False, 0.18, 50000),
    Underlying("NSE_INDEX|Nifty Next 50", "NIFTYNXT50", "NIFTYNXT50", "NSE_FO", "NSE",
               "INDEX", 67000.0, 100.0, 25, 600.0, False, 0.17, 60000),
    Underlying("BSE_INDEX|SENSEX", "SENSEX", "SENSEX", "BSE_FO", "BSE", "INDEX",
               80000.0, 100.0, 20, 1000.0, True, 0.13, 820000),
    Underlying("BSE_INDEX|BANKEX", "BANKEX", "BANKEX", "BSE_FO", "BSE", "INDEX",
               62000.0, 100.0, 30, 900.0, False, 0.16, 840000),
    Underlying("NSE_EQ|INE205A01025", "VEDL", "VEDL", "NSE_FO", "NSE", "EQUITY",
               300.0, 2.5, 1150, 34500.0, False, 0.32, 55000),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Contract:
    key: str
    u_index: int
    expiry: date
    itype: str  # CE | PE | FUT
    strike: float | None
    listing: date
    no_trades: bool
    item: dict[str, Any]


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz-Stegun 7.1.26 (|error| < 1.5e-7): numpy has no erf and scipy is not a dep."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))  # fmt: skip  # noqa: E501
    return s * (1.0 - poly * np.exp(-a * a))


def _ncdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + _erf(x / math.sqrt(2.0)))


def _strike_text(strike: float) -> str:
    return str(int(strike)) if float(strike).is_integer() else repr(float(strike))


def _sym_date(d: date) -> str:
    return f"{d.day:02d} {_MONTHS[d.month - 1]} {d.year % 100:02d}"


def _ist_midnight_epoch(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) - IST_OFFSET


class Market:
    """Deterministic synthetic market: same ``seed`` and ``today`` give identical data."""

    def __init__(
        self,
        seed: int = 7,
        today: date | None = None,
        underlyings: tuple[str, ...] | None = None,
        strikes_per_side: int = 10,
        history_days: int = 182,
        cache_contracts: int = 64,
        stocks: bool = False,
    ) -> None:
        self.seed = int(seed)
        self.today = today or datetime.now(IST).date()
        self.strikes_per_side = int(strikes_per_side)
        self.history_days = int(history_days)
        # ``stocks``: add the ~220 simulated stock underlyings (sandbox.stocks) after the
        # indices; their contracts are built lazily, per expiry, when first asked for.
        pool = UNDERLYINGS
        if stocks:
            from expirytrack_desktop.sandbox.stocks import stock_specs

            pool = UNDERLYINGS + tuple(Underlying(**spec) for spec in stock_specs())
        self._pool = pool
        if underlyings is None:
            chosen = pool
        else:
            wanted = set(underlyings)
            chosen = tuple(u for u in pool if u.key in wanted or u.symbol in wanted)
            if len(chosen) != len(wanted):
                raise ValueError(f"unknown underlyings in {sorted(wanted)}")
        self._underlyings = {u.key: u for u in chosen}
        self._u_index = {u.key: pool.index(u) for u in chosen}
        self._by_token_base = {u.token_base: u for u in chosen if u.token_base >= _STOCK_TOKENS}
        self._expiries: dict[str, list[tuple[date, bool]]] = {}
        for u in chosen:
            self._expiries[u.key] = self._make_expiries(u)
        first = min((e for lst in self._expiries.values() for e, _ in lst), default=self.today)
        # Listing starts ~3 months before the first expiry; pad a little more for holidays.
        self._days = tradingcal.trading_days(first - timedelta(days=120), self.today)
        self._day_pos = {d: i for i, d in enumerate(self._days)}
        self._day_open = np.array(
            [_ist_midnight_epoch(d) + SESSION_START for d in self._days], dtype=np.int64
        )
        self._paths: OrderedDict[str, np.ndarray] = OrderedDict()  # LRU: 220 stocks add up
        self._contracts: dict[tuple[str, date], list[_Contract]] = {}
        self._by_key: dict[str, _Contract] | None = None
        self._cache: OrderedDict[str, dict[str, np.ndarray]] = OrderedDict()
        self._cache_size = max(1, int(cache_contracts))

    # ----------------------------------------------------------------- reference data
    def underlying_keys(self) -> list[str]:
        return list(self._underlyings)

    def underlying(self, key: str) -> Underlying:
        return self._underlyings[key]

    def expiries(self, instrument_key: str) -> list[date]:
        """Expiry dates of ``instrument_key`` (all before ``today``), ascending."""
        return [e for e, _ in self._expiries[instrument_key]]

    def is_weekly(self, instrument_key: str, expiry: date) -> bool:
        return dict(self._expiries[instrument_key])[expiry]

    def option_contracts(self, instrument_key: str, expiry: date) -> list[dict[str, Any]]:
        """API items of the option contracts (``[]`` when ``expiry`` is not an expiry)."""
        return [dict(c.item) for c in self._contracts_of(instrument_key, expiry) if c.strike]

    def future_contracts(self, instrument_key: str, expiry: date) -> list[dict[str, Any]]:
        """API items of the future contracts; weekly-only expiries have none."""
        return [
            dict(c.item) for c in self._contracts_of(instrument_key, expiry) if c.itype == "FUT"
        ]

    def has_contract(self, expired_key: str) -> bool:
        try:
            self._lookup(expired_key)
        except KeyError:
            return False
        return True

    def contract_item(self, expired_key: str) -> dict[str, Any]:
        return dict(self._lookup(expired_key).item)

    def underlyings(self) -> list[Underlying]:
        """The market's underlyings, indices first (as the master lists them)."""
        return list(self._underlyings.values())

    # ----------------------------------------------------------------- candles
    def candles(self, expired_key: str, interval: str = "1minute") -> list[list[Any]]:
        """All candles of a contract, ascending, exactly as the API serializes them."""
        c = self._lookup(expired_key)
        return self.candle_rows(expired_key, interval, c.listing, c.expiry, newest_first=False)

    def candle_rows(
        self,
        expired_key: str,
        interval: str,
        from_date: date,
        to_date: date,
        *,
        newest_first: bool = True,
    ) -> list[list[Any]]:
        """Candles whose start falls in the inclusive IST date range."""
        if interval not in INTERVALS:
            raise ValueError(f"unknown interval {interval!r}")
        data = self._minute_data(expired_key)
        ep = data["ts"]
        lo = np.searchsorted(ep, _ist_midnight_epoch(from_date), "left")
        hi = np.searchsorted(ep, _ist_midnight_epoch(to_date) + 86400, "left")
        if hi <= lo:
            return []
        ts, o, h, lw, cl, v, oi = (data[k][lo:hi] for k in ("ts", "o", "h", "l", "c", "v", "oi"))
        if interval != "1minute":
            midnight = ts - ((ts + IST_OFFSET) % 86400)
            if interval == "day":
                bucket = midnight
            else:
                n = INTERVAL_MINUTES[interval] * 60
                bucket = ts - ((ts - midnight - SESSION_START) % n)
            starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
            ends = np.r_[starts[1:] - 1, len(ts) - 1]
            ts = bucket[starts]
            o, cl, oi = o[starts], cl[ends], oi[ends]
            h = np.maximum.reduceat(h, starts)
            lw = np.minimum.reduceat(lw, starts)
            v = np.add.reduceat(v, starts)
        stamps = np.char.add((ts + IST_OFFSET).astype("datetime64[s]").astype(str), "+05:30")
        rows = [
            list(r)
            for r in zip(
                stamps.tolist(),
                o.tolist(),
                h.tolist(),
                lw.tolist(),
                cl.tolist(),
                v.tolist(),
                oi.tolist(),
                strict=True,
            )
        ]
        if newest_first:
            rows.reverse()
        return rows

    # ----------------------------------------------------------------- internals
    def _make_expiries(self, u: Underlying) -> list[tuple[date, bool]]:
        end = self.today - timedelta(days=1)
        start = self.today - timedelta(days=self.history_days)
        monthly: set[date] = set()
        y, m = start.year, start.month
        while date(y, m, 1) <= end:
            monthly.add(tradingcal.monthly_expiry(u.exchange, y, m))
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        out = {d: False for d in monthly if start <= d <= end}
        if u.weekly:
            for d in tradingcal.weekly_expiries(u.exchange, start, end):
                out.setdefault(d, True)
        return sorted(out.items())

    def _path(self, key: str) -> np.ndarray:
        """Underlying price per (trading day, minute): a seeded geometric random walk."""
        path = self._paths.get(key)
        if path is not None:
            self._paths.move_to_end(key)
        else:
            u = self._underlyings[key]
            rng = np.random.default_rng([self.seed, 1000 + self._u_index[key]])
            n = len(self._days)
            sig_m = u.vol / math.sqrt(252 * MINUTES_PER_DAY)
            steps = rng.normal(0.0, sig_m, (n, MINUTES_PER_DAY))
            steps[:, 0] += rng.normal(0.0, u.vol / math.sqrt(252) * 0.35, n)  # overnight gaps
            start = u.base_price * math.exp(rng.normal(0.0, 0.05))
            path = start * np.exp(np.cumsum(steps.ravel())).reshape(n, MINUTES_PER_DAY)
            self._paths[key] = path
            if len(self._paths) > _PATH_CACHE:
                self._paths.popitem(last=False)
        return path

    def _listing(self, expiry: date, weekly: bool) -> date:
        back = 28 if weekly else 91
        d = expiry - timedelta(days=back)
        while not tradingcal.is_trading_day(d):
            d += timedelta(days=1)
        return max(d, self._days[0])

    def _contracts_of(self, key: str, expiry: date) -> list[_Contract]:
        if key not in self._underlyings:
            raise KeyError(key)
        found = self._contracts.get((key, expiry))
        if found is not None:
            return found
        weekly = dict(self._expiries[key]).get(expiry)
        if weekly is None:
            self._contracts[(key, expiry)] = []
            return []
        u = self._underlyings[key]
        ui = self._u_index[key]
        listing = self._listing(expiry, weekly)
        path = self._path(key)
        ref = 0.5 * (path[self._day_pos[listing], 0] + path[self._day_pos[expiry], -1])
        atm = round(ref / u.strike_step) * u.strike_step
        n = self.strikes_per_side
        stock = u.token_base >= _STOCK_TOKENS
        if stock:  # tokens base .. base + 199 (the key's date tells expiries apart)
            n = min(n, 49)
            atm = max(atm, (n + 1) * u.strike_step)  # every strike above zero
        strikes = [round(atm + i * u.strike_step, 2) for i in range(-n, n + 1)]
        rng = np.random.default_rng([self.seed, 2000 + ui, expiry.toordinal()])
        dead_pe = bool(rng.random() < 0.5)
        token = u.token_base if stock else u.token_base + (expiry.toordinal() % 89) * 53
        ddmmyyyy = expiry.strftime("%d-%m-%Y")

        def record(
            token: int, symbol: str, tick: float, kind: str, **extra: Any
        ) -> tuple[str, dict[str, Any]]:
            """A contract's key and its item as the expired-contracts endpoint lists it (in
            Upstox's field order; options and futures differ only in the ``extra`` fields)."""
            ikey = f"{u.segment}|{token}|{ddmmyyyy}"
            return ikey, {
                "name": u.name,
                "segment": u.segment,
                "exchange": u.exchange,
                "expiry": expiry.isoformat(),
                "instrument_key": ikey,
                "exchange_token": str(token),
                "trading_symbol": symbol,
                "tick_size": tick,
                "lot_size": u.lot_size,
                "instrument_type": kind,
                "freeze_quantity": u.freeze_quantity,
                "underlying_key": u.key,
                "underlying_type": u.underlying_type,
                "underlying_symbol": u.symbol,
                **extra,
            }

        out: list[_Contract] = []
        for i, strike in enumerate(strikes):
            label = f"{u.symbol} {_strike_text(strike)}"
            for side in ("CE", "PE"):
                token += 1
                ikey, item = record(
                    token,
                    f"{label} {side} {_sym_date(expiry)}",
                    float(u.option_tick),
                    side,
                    strike_price=float(strike),
                    minimum_lot=u.lot_size,
                    weekly=weekly,
                )
                # The outermost OTM call never trades; the outermost put sometimes not either.
                dead = (side == "CE" and i == len(strikes) - 1) or (
                    side == "PE" and i == 0 and dead_pe
                )
                out.append(_Contract(ikey, ui, expiry, side, float(strike), listing, dead, item))
        if not weekly:
            token += 1
            ikey, item = record(
                token,
                f"{u.symbol} FUT {_sym_date(expiry)}",
                float(u.future_tick),
                "FUT",
                minimum_lot=u.lot_size,
            )
            out.append(_Contract(ikey, ui, expiry, "FUT", None, listing, False, item))
        self._contracts[(key, expiry)] = out
        return out

    def _lookup(self, expired_key: str) -> _Contract:
        """The contract of a key (KeyError if none): stock keys decode to their underlying and
        expiry, so only that expiry's contracts are built; index keys use a full index."""
        parts = expired_key.split("|")
        if len(parts) == 3 and parts[1].isdigit() and int(parts[1]) >= _STOCK_TOKENS:
            token = int(parts[1])
            u = self._by_token_base.get(token - (token - _STOCK_TOKENS) % _STOCK_STRIDE)
            try:
                expiry = datetime.strptime(parts[2], "%d-%m-%Y").date()
            except ValueError:
                raise KeyError(expired_key) from None
            if u is not None:
                for c in self._contracts_of(u.key, expiry):
                    if c.key == expired_key:
                        return c
            raise KeyError(expired_key)
        return self._index()[expired_key]

    def _index(self) -> dict[str, _Contract]:
        if self._by_key is None:
            idx: dict[str, _Contract] = {}
            for key, exps in self._expiries.items():
                if self._underlyings[key].token_base >= _STOCK_TOKENS:
                    continue  # stocks: see _lookup
                for e, _ in exps:
                    for c in self._contracts_of(key, e):
                        idx[c.key] = c
            self._by_key = idx
        return self._by_key

    def _minute_data(self, expired_key: str) -> dict[str, np.ndarray]:
        hit = self._cache.get(expired_key)
        if hit is not None:
            self._cache.move_to_end(expired_key)
            return hit
        data = self._generate(self._lookup(expired_key))
        self._cache[expired_key] = data
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return data

    def _generate(self, c: _Contract) -> dict[str, np.ndarray]:
        u = self._pool[c.u_index]
        li, ei = self._day_pos[c.listing], self._day_pos[c.expiry]
        spot = self._path(u.key)[li : ei + 1].ravel()
        ts = (self._day_open[li : ei + 1, None] + np.arange(MINUTES_PER_DAY) * 60).ravel()
        n = len(ts)
        code = {"CE": 1, "PE": 2, "FUT": 3}[c.itype]
        rng = np.random.default_rng(
            [self.seed, 3000 + c.u_index, c.expiry.toordinal(), code, round((c.strike or 0) * 100)]
        )
        expiry_close = _ist_midnight_epoch(c.expiry) + 15 * 3600 + 30 * 60
        t_years = np.maximum((expiry_close - ts) / (365.0 * 86400), 1e-6)
        elapsed = np.linspace(0.0, 1.0, n)
        if c.itype == "FUT":
            tick = u.future_tick / 100.0
            mid = spot * np.exp(_RATE * t_years)
            p = np.ones(n)  # futures are liquid: a candle every minute
            if u.liquidity < 1.0:  # a thin stock's future still trades most minutes
                p = p * min(1.0, 8.0 * u.liquidity)
            noise_scale, lots_mean, oi_step = 0.0002, 40.0, 30
        else:
            tick = u.option_tick / 100.0
            k = float(c.strike or 0.0)
            sq = u.vol * np.sqrt(t_years)
            d1 = (np.log(spot / k) + 0.5 * sq * sq) / sq
            d2 = d1 - sq
            call = spot * _ncdf(d1) - k * _ncdf(d2)
            mid = call if c.itype == "CE" else call - spot + k
            mid = np.maximum(mid, np.maximum(spot - k if c.itype == "CE" else k - spot, 0.0))
            z = np.abs(np.log(k / spot)) / sq
            p = np.clip(0.95 * np.exp(-0.6 * z), 0.01, 0.95) * (0.35 + 0.65 * elapsed)
            if u.liquidity < 1.0:
                p = p * u.liquidity
            noise_scale, lots_mean, oi_step = 0.004, 25.0, 8
        trade = rng.random(n) < p
        if c.no_trades:
            trade[:] = False
        close_t = np.maximum(1, np.rint(mid * (1 + rng.normal(0, noise_scale, n)) / tick))
        prev = np.r_[mid[0], mid[:-1]]
        open_t = np.maximum(1, np.rint(prev * (1 + rng.normal(0, noise_scale, n)) / tick))
        wiggle = np.maximum(1.0, mid * noise_scale / tick)
        high_t = np.maximum(open_t, close_t) + np.rint(np.abs(rng.normal(0, 1, n)) * wiggle)
        low_t = np.maximum(1, np.minimum(open_t, close_t) - np.rint(np.abs(rng.normal(0, 1, n)) * wiggle))  # fmt: skip  # noqa: E501
        lots = 1 + rng.poisson(lots_mean * p)
        oi_lots = np.abs(np.cumsum(np.where(trade, rng.integers(-oi_step, 2 * oi_step, n), 0)))
        sel = np.flatnonzero(trade)

        def px(a: np.ndarray) -> np.ndarray:
            return np.round(a[sel] * tick, 2)

        return {
            "ts": ts[sel].astype(np.int64),
            "o": px(open_t),
            "h": px(high_t),
            "l": px(low_t),
            "c": px(close_t),
            "v": (lots[sel] * u.lot_size).astype(np.int64),
            "oi": (oi_lots[sel] * u.lot_size).astype(np.int64),
        }
