"""Selection queries: which contracts an export covers, how many candles, the wizard's lists.

Candles are read per contract through the clustered key ``(contract_id, interval, ts)``, so
every contract comes out already sorted by time and no query ever sorts millions of rows.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from expirytrack_desktop.export.db import DbSource, reading
from expirytrack_desktop.export.errors import EmptySelectionError, UnknownInstrumentError
from expirytrack_desktop.export.options import (
    DEFAULT_CSV_COLUMNS,
    EXCHANGE_COLUMN,
    META_CSV_COLUMNS,
    ExportOptions,
    default_csv_columns,
    instrument_label,
)
from expirytrack_desktop.export.progress import ExportPreview
from expirytrack_desktop.export.symbols import format_strike, openalgo_exchange, openalgo_symbol
from expirytrack_desktop.timeutil import IST, ist_iso, now_utc

Clock = Callable[[], datetime]
TS_MIN = -(2**62)
TS_MAX = 2**62

# The ONE query every export reads candles with (the row-by-row reader, the Arrow reader and
# the review page's sample): one contract (or several), one interval, ``[lo, hi)``, in time
# order, prices in rupees as floats. A change of how candles are stored changes this text
# and nothing else.
CANDLE_COLUMNS: tuple[str, ...] = ("ts", "open", "high", "low", "close", "volume", "oi")


def candle_sql(*, limit: bool = False, contracts: int | None = None) -> str:
    """``SELECT ts, open, high, low, close, volume, oi`` of one contract, parameters (all
    positional ``?``): contract id, interval minutes, lo, hi[, limit].

    ``contracts=N``: N contracts at once, ``contract_id`` as the first column, rows by
    contract id then time; parameters: the N ids, then interval, lo, hi.
    """
    cols = "ts, open, high, low, close, volume, oi"
    if contracts is None:
        who, order = "contract_id = ?", "ts"
    else:
        cols = "contract_id, " + cols
        who, order = f"contract_id IN ({', '.join('?' * contracts)})", "contract_id, ts"
    sql = (
        f"SELECT {cols} FROM candle_rupees"
        f" WHERE {who} AND interval = ? AND ts >= ? AND ts < ? ORDER BY {order}"
    )
    return sql + " LIMIT ?" if limit else sql


def _range(lo: int, hi: int) -> str:
    """``ts`` bounds as SQL, none for an open side (SQLite then checks no ``ts`` per row)."""
    return (f" AND ts >= {int(lo)}" if lo > TS_MIN else "") + (
        f" AND ts < {int(hi)}" if hi < TS_MAX else ""
    )


def _contracts_where(ids: Sequence[int], iv: int, lo: int, hi: int) -> str:
    """The contracts and range as integer literals (``int()`` each: nothing else can get
    into the text), for a statement run without bound parameters."""
    who = ", ".join(str(int(i)) for i in ids)
    return (
        f"contract_id IN ({who}) AND interval = {int(iv)}{_range(lo, hi)} ORDER BY contract_id, ts"
    )


def stored_candle_sql(
    ids: Sequence[int], iv: int, lo: int, hi: int, *, with_ids: bool = True
) -> str:
    """The fast readers' query (export/arrow_read.py): the STORED columns of the contracts
    ``ids``, rows by contract id then time -- ``contract_id, ts, close`` (paise), ``open,
    high, low`` (paise relative to close), ``volume, oi``; NULL prices: see
    :func:`exact_candle_sql`. Layout: store/prices.py. SQLite only decodes integers here
    (no division, no view), the cheapest read there is; the tests check the result against
    :func:`candle_sql`'s view. ``with_ids=False`` leaves ``contract_id`` out (a reader that
    knows each contract's count: ~10 % less to decode).
    """
    cols = "ts, close, open, high, low, volume, oi"
    cols = f"contract_id, {cols}" if with_ids else cols
    return f"SELECT {cols} FROM candle WHERE {_contracts_where(ids, iv, lo, hi)}"


def exact_candle_sql(ids: Sequence[int], iv: int, lo: int, hi: int) -> str:
    """``contract_id, ts, open, high, low, close`` (rupee floats) of the candles whose prices
    are not whole paise (candle_exact); arguments as :func:`stored_candle_sql`."""
    cols = "contract_id, ts, open, high, low, close"
    return f"SELECT {cols} FROM candle_exact WHERE {_contracts_where(ids, iv, lo, hi)}"


@dataclass(frozen=True, slots=True)
class UnderlyingInfo:
    instrument_key: str
    symbol: str
    name: str
    expiries: int
    contracts: int


@dataclass(frozen=True, slots=True)
class ExpiryInfo:
    instrument_key: str
    expiry: date
    is_weekly: bool | None
    contracts: int
    candles: int | None  # None unless asked for (it scans the candles)


@dataclass(frozen=True, slots=True)
class SelectedContract:
    """One contract of an export, with everything the writers print about it."""

    id: int
    symbol: str  # OpenAlgo symbol
    instrument_key: str
    underlying: str  # underlying symbol, e.g. NIFTY
    underlying_label: str  # e.g. Nifty_50 (JSON key)
    expiry: str  # YYYY-MM-DD
    contract_type: str
    strike: float | None
    trading_symbol: str
    lot_size: int | None
    exchange: str = "NFO"  # OpenAlgo exchange: NFO, BFO, ...
    rows: int = 0

    def meta_values(self) -> tuple[object, ...]:
        """The metadata columns' values (``META_CSV_COLUMNS``' order), strike as printed."""
        strike = None if self.strike is None else format_strike(self.strike)
        return (self.underlying, self.expiry, strike, self.contract_type,
                self.trading_symbol, self.lot_size)  # fmt: skip

    def column_value(self, name: str) -> object:
        """The value of a contract column (symbol, exchange or metadata) in the CSV."""
        if name == "openalgo_symbol":
            return self.symbol
        if name == EXCHANGE_COLUMN:
            return self.exchange
        return self.meta_values()[META_CSV_COLUMNS.index(name)]


def resolve_underlyings(db: DbSource, names: Sequence[str]) -> tuple[str, ...]:
    """Instrument keys for keys or symbols (``NSE_INDEX|Nifty 50`` or ``NIFTY``), in order."""
    with reading(db) as conn:
        rows = conn.execute("SELECT instrument_key, symbol, name FROM underlying").fetchall()
    out: list[str] = []
    for raw in names:
        want = raw.strip()
        hit = next((k for k, _, _ in rows if k == want), None)
        if hit is None:
            up = want.upper()
            hits = [k for k, s, n in rows if (s or "").upper() == up or (n or "").upper() == up]
            hit = hits[0] if len(hits) == 1 else None
        if hit is None:
            known = ", ".join(sorted(s or k for k, s, _ in rows)) or "none"
            raise UnknownInstrumentError(
                f"no collected data for instrument {raw!r} in this database "
                f"(instruments with data: {known}); collect it first"
            )
        if hit not in out:
            out.append(hit)
    return tuple(out)


def available_underlyings(db: DbSource) -> list[UnderlyingInfo]:
    """Step 1 of the wizard: underlyings that have at least one stored contract."""
    sql = """
        SELECT u.instrument_key, coalesce(u.symbol, ''), coalesce(u.name, ''),
               count(DISTINCT e.id), count(c.id)
        FROM underlying u JOIN expiry e ON e.underlying_id = u.id
        JOIN contract c ON c.expiry_id = e.id
        GROUP BY u.id ORDER BY u.symbol, u.instrument_key"""
    with reading(db) as conn:
        return [UnderlyingInfo(*r) for r in conn.execute(sql)]


def available_expiries(
    db: DbSource,
    instrument_keys: Sequence[str],
    *,
    interval: str = "1minute",
    with_candle_counts: bool = False,
) -> list[ExpiryInfo]:
    """Step 2: the expiries of these underlyings with contract (and optionally candle) counts."""
    from expirytrack_desktop.upstox.models import INTERVAL_MINUTES

    candles = (
        "(SELECT count(*) FROM candle k WHERE k.contract_id IN "
        " (SELECT id FROM contract WHERE expiry_id = e.id) AND k.interval = :iv)"
        if with_candle_counts
        else "NULL"
    )
    sql = f"""
        SELECT u.instrument_key, e.expiry_date, e.is_weekly,
               (SELECT count(*) FROM contract c WHERE c.expiry_id = e.id), {candles}
        FROM expiry e JOIN underlying u ON u.id = e.underlying_id
        WHERE u.instrument_key IN (SELECT value FROM json_each(:keys))
        ORDER BY u.instrument_key, e.expiry_date"""
    params = {"keys": json.dumps(list(instrument_keys)), "iv": INTERVAL_MINUTES[interval]}
    with reading(db) as conn:
        return [
            ExpiryInfo(k, date.fromisoformat(d), None if w is None else bool(w), n, m)
            for k, d, w, n, m in conn.execute(sql, params)
        ]


@dataclass(frozen=True, slots=True)
class SymbolMatch:
    openalgo_symbol: str
    instrument_key: str
    expiry: date
    contract_type: str
    strike: float | None
    trading_symbol: str


def find_contracts(db: DbSource, text: str, *, limit: int = 50) -> list[SymbolMatch]:
    """Stored contracts whose OpenAlgo symbol starts with ``text`` (case-insensitive);
    a full symbol such as ``NIFTY24APR2520400PE`` finds exactly its contract."""
    pattern = text.strip().upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    sql = r"""
        SELECT c.openalgo_symbol, u.instrument_key, e.expiry_date, c.contract_type,
               c.strike_price, coalesce(c.trading_symbol, '')
        FROM contract c JOIN expiry e ON e.id = c.expiry_id
        JOIN underlying u ON u.id = e.underlying_id
        WHERE c.openalgo_symbol LIKE ? ESCAPE '\'
        ORDER BY c.openalgo_symbol LIMIT ?"""
    with reading(db) as conn:
        return [
            SymbolMatch(s, k, date.fromisoformat(d), t, None if t == "FUT" else p, ts)
            for s, k, d, t, p, ts in conn.execute(sql, (pattern + "%", limit))
        ]


def ts_bounds(options: ExportOptions, clock: Clock = now_utc) -> tuple[int, int]:
    """``[from, to)`` in epoch seconds for the options' time range (IST calendar days)."""
    today = clock().astimezone(IST).date()
    d_from, d_to = options.date_range(today)
    lo = TS_MIN if d_from is None else int(datetime.combine(d_from, time(), IST).timestamp())
    hi = (
        TS_MAX
        if d_to is None
        else int(datetime.combine(d_to + timedelta(days=1), time(), IST).timestamp())
    )
    return lo, hi


def select_contracts(conn: sqlite3.Connection, options: ExportOptions) -> list[SelectedContract]:
    """The contracts of the selection, sorted by OpenAlgo symbol (the export's order)."""
    options.validate()
    where = [
        "u.instrument_key IN (SELECT value FROM json_each(:keys))",
        "c.contract_type IN (SELECT value FROM json_each(:types))",
    ]
    params: dict[str, object] = {
        "keys": json.dumps(list(options.underlyings)),
        "types": json.dumps(list(options.contract_types)),
    }
    if options.expiries is not None:
        where.append("e.expiry_date IN (SELECT value FROM json_each(:exps))")
        params["exps"] = json.dumps([d.isoformat() for d in options.expiries])
    if options.strike_min is not None:
        where.append("(c.contract_type = 'FUT' OR c.strike_price >= :smin)")
        params["smin"] = options.strike_min
    if options.strike_max is not None:
        where.append("(c.contract_type = 'FUT' OR c.strike_price <= :smax)")
        params["smax"] = options.strike_max
    sql = f"""
        SELECT c.id, c.openalgo_symbol, u.instrument_key,
               coalesce(c.underlying_symbol, u.symbol), u.symbol, e.expiry_date,
               c.contract_type, c.strike_price, coalesce(c.trading_symbol, ''), c.lot_size,
               c.expired_key
        FROM contract c JOIN expiry e ON e.id = c.expiry_id
        JOIN underlying u ON u.id = e.underlying_id
        WHERE {" AND ".join(where)}"""
    out = []
    rows = conn.execute(sql, params).fetchall()
    for cid, sym, key, base, usym, exp, kind, strike, tsym, lot, ckey in rows:
        base = (base or usym or instrument_label(key)).strip().upper()
        if not sym:
            strike_arg = None if kind == "FUT" else strike
            try:
                sym = openalgo_symbol(base, date.fromisoformat(exp), kind, strike_arg)
            except ValueError:  # damaged row (an option without strike): still export it
                sym = f"{base}_{kind}_{cid}"
        out.append(
            SelectedContract(
                id=cid,
                symbol=sym,
                instrument_key=key,
                underlying=(usym or base),
                underlying_label=instrument_label(key, usym or base),
                expiry=exp,
                contract_type=kind,
                strike=None if kind == "FUT" else strike,
                trading_symbol=tsym,
                lot_size=lot,
                exchange=openalgo_exchange(ckey or "", key),
            )
        )
    if not out:
        raise EmptySelectionError("the selection matches no stored contract")
    out.sort(key=lambda c: (c.symbol, c.id))
    return out


def count_per_contract(
    conn: sqlite3.Connection, contracts: Sequence[SelectedContract], iv: int, lo: int, hi: int
) -> dict[int, tuple[int, int, int]]:
    """contract id -> (rows, first ts, last ts) for contracts with candles in ``[lo, hi)``.

    Each figure by a subquery of its own per contract: the first and last candle are one
    seek each, and only the count walks the contract's candles (with no ``ts`` check per
    candle when the range is open: :func:`_range`)."""
    where = f"k.contract_id = j.value AND k.interval = ?2{_range(lo, hi)}"
    sql = f"""
        SELECT j.value, (SELECT count(*) FROM candle k WHERE {where}),
            (SELECT min(k.ts) FROM candle k WHERE {where}),
            (SELECT max(k.ts) FROM candle k WHERE {where})
        FROM json_each(?1) j"""
    ids = json.dumps([c.id for c in contracts])
    rows = conn.execute(sql, (ids, iv))
    return {cid: (n, a, b) for cid, n, a, b in rows if n}


def rows_per_contract(
    conn: sqlite3.Connection,
    contracts: Sequence[SelectedContract],
    iv: int,
    lo: int,
    hi: int,
    helper: Callable[[], sqlite3.Connection] | None = None,
) -> dict[int, int]:
    """contract id -> candles in ``[lo, hi)`` (contracts with none are left out).

    The planning count of every export, a count per contract by a subquery of its own: SQLite
    then only steps through each contract's key range (~40 % less CPU than ``GROUP BY
    contract_id`` over ``contract_id IN (...)``, which decodes the id of every candle:
    bench/RESULTS.md). With ``helper`` (opens a second connection to the
    same file) a thread counts the upper half of the ids meanwhile: two cores halve the wait.
    """
    sql = f"""
        SELECT json_group_array(json_array(j.value, (SELECT count(*) FROM candle k
            WHERE k.contract_id = j.value AND k.interval = ?2{_range(lo, hi)})))
        FROM json_each(?1) j"""
    ids = sorted(c.id for c in contracts)

    def count(db: sqlite3.Connection, some: list[int]) -> dict[int, int]:
        # one row: a thread fetching a row per contract waits for the GIL at each while
        # the imports (export.arrow_read.warm_up) hold it
        (pairs,) = db.execute(sql, (json.dumps(some), iv)).fetchone()
        return {cid: n for cid, n in json.loads(pairs) if n}

    if helper is None or len(ids) < 2:
        return count(conn, ids)
    half = len(ids) // 2
    upper: dict[int, int] = {}
    failed: list[BaseException] = []

    def count_upper() -> None:
        try:
            other = helper()
            try:
                upper.update(count(other, ids[half:]))
            finally:
                other.close()
        except BaseException as exc:  # raised in the caller's thread
            failed.append(exc)

    worker = threading.Thread(target=count_upper, name="export-count")
    worker.start()
    try:
        counts = count(conn, ids[:half])
    finally:
        worker.join()
    if failed:
        raise failed[0]
    counts.update(upper)
    return counts


def count_rows(db: DbSource, options: ExportOptions, *, clock: Clock = now_utc) -> int:
    """Number of candles the export would write (0 if nothing; raises on an empty selection)."""
    return preview(db, options, clock=clock, sample_rows=0).rows


def preview(
    db: DbSource, options: ExportOptions, *, clock: Clock = now_utc, sample_rows: int = 20
) -> ExportPreview:
    """Step 4 (review): counts, first/last candle, and the first rows in the columns the
    export writes (a CSV's own columns and order; the default CSV columns for the others)."""
    lo, hi = ts_bounds(options, clock)
    columns = (
        options.columns_in_force
        if options.format in ("csv", "zip")
        else default_csv_columns(options.include_metadata)
    )
    with reading(db) as conn:
        contracts = select_contracts(conn, options)
        counts = count_per_contract(conn, contracts, options.interval_minutes, lo, hi)
        sample: list[tuple[object, ...]] = []
        for c in contracts:
            if len(sample) >= sample_rows:
                break
            if c.id not in counts:
                continue
            for ts, *values in conn.execute(
                candle_sql(limit=True),
                (c.id, options.interval_minutes, lo, hi, sample_rows - len(sample)),
            ):
                iso = ist_iso(ts)
                row = dict(zip(DEFAULT_CSV_COLUMNS, (c.symbol, iso[:10], iso[11:19], iso,
                                                     *values), strict=True))  # fmt: skip
                sample.append(tuple(row[n] if n in row else c.column_value(n) for n in columns))
    firsts = [a for _, a, _ in counts.values()]
    lasts = [b for _, _, b in counts.values()]
    return ExportPreview(
        contracts=len(contracts),
        empty_contracts=len(contracts) - len(counts),
        rows=sum(n for n, _, _ in counts.values()),
        first_ts=min(firsts) if firsts else None,
        last_ts=max(lasts) if lasts else None,
        sample=tuple(sample),
        sample_columns=tuple(columns),
    )
