"""``verify``'s logical checks for one underlying (and some of its expiries), finding by finding.

``expirytrack verify`` counts findings over the whole database and prints a few examples; the
window needs each finding of what the user picked, attributed to its expiry and contract, with
the date ranges its fix would fetch. Same checks (store/verify.py's conditions and words),
bounded by the scope: the candles, windows and coverage targets of the scope's contracts. The
SQLite file checks (whole-file PRAGMAs, the sampled page check) and candles without a contract
(they belong to no underlying) stay the command's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from expirytrack_desktop.store.coverage import merge_ranges, months_before, subtract_ranges
from expirytrack_desktop.store.database import Database, interval_name
from expirytrack_desktop.store.verify import (
    CANDLE_CHECKS,
    CANDLE_TITLES,
    ERROR,
    INCOMPLETE,
    NOTE,
    WindowKey,
    window_problem,
)
from expirytrack_desktop.timeutil import IST, IST_OFFSET_SECONDS

CANDLE_FIXES = {
    "ohlc": "stored as Upstox sent it; collect the window again to replace it",
    "negative": "stored as Upstox sent it; collect the window again to replace it",
    "hours": "none: special sessions (Muhurat trading) exist",
    "weekend": "none: special sessions exist",
}
WINDOW_TITLES = {
    "fetched_empty": ("window 'fetched' but holding no candles", ERROR),
    "missing_candles": ("window holding fewer candles than recorded", ERROR),
    "extra_candles": ("window holding more candles than recorded", NOTE),
    "empty_with_candles": ("window 'empty' but holding candles", NOTE),
}
COLLECT = "Collect missing"


@dataclass(frozen=True, slots=True)
class ScopedFinding:
    """One finding about one expiry (``contract_id`` None) or one of its contracts.

    ``missing``: the date ranges "Collect missing" fetches (empty: no collection fixes it);
    ``unmark``: windows whose done mark goes first (their candles do not match it)."""

    instrument_key: str
    symbol: str
    expiry: date
    contract_id: int | None
    contract: str
    key: str  # verify's finding key: gaps, failed, no_windows, missing_candles, ohlc, ...
    severity: str
    title: str
    detail: str
    fix: str
    interval: int = 1  # minutes
    missing: tuple[tuple[date, date], ...] = ()
    unmark: tuple[WindowKey, ...] = ()
    expired_key: str = ""
    whole_months: int = 0  # >0: the fix collects the whole expiry with this history

    @property
    def collectable(self) -> bool:
        return bool(self.missing) or self.whole_months > 0


@dataclass(frozen=True, slots=True)
class Repair:
    """One collection that fixes findings of one expiry and interval: exactly ``windows``
    (``(expired key, first day, last day)``), or the whole expiry with ``months`` of history
    when ``windows`` is None; ``unmark`` first."""

    instrument_key: str
    expiry: date
    interval: int
    windows: tuple[tuple[str, date, date], ...] | None
    months: int = 1
    unmark: tuple[WindowKey, ...] = ()


@dataclass(slots=True)
class ScopedReport:
    instrument_key: str
    expiries: tuple[date, ...]  # empty: every expiry of the underlying
    findings: list[ScopedFinding] = field(default_factory=list)
    contracts: int = 0
    candles: int = 0
    windows: int = 0

    @property
    def problems(self) -> list[ScopedFinding]:
        return [f for f in self.findings if f.severity != NOTE]


def _ist(ts: int) -> str:
    return datetime.fromtimestamp(ts, IST).strftime("%Y-%m-%d %a %H:%M")


def _spans(ranges: Sequence[tuple[date, date]]) -> str:
    text = ", ".join(f"{a}..{b}" for a, b in ranges[:3])
    return text + (f" (+{len(ranges) - 3} more)" if len(ranges) > 3 else "")


class _Scope:
    def __init__(self, db: Database, key: str, expiries: Sequence[date]) -> None:
        self.db = db
        self.key = key
        where = "u.instrument_key = ?"
        self.params: list[object] = [key]
        if expiries:
            where += f" AND e.expiry_date IN ({','.join('?' * len(expiries))})"
            self.params += [d.isoformat() for d in expiries]
        self.where = where
        rows = db.execute(
            "SELECT c.id, COALESCE(c.openalgo_symbol, c.trading_symbol, c.expired_key), "
            "e.expiry_date, COALESCE(u.symbol, u.instrument_key), c.expired_key "
            "FROM contract c JOIN expiry e ON e.id = c.expiry_id "
            f"JOIN underlying u ON u.id = e.underlying_id WHERE {where}",
            self.params,
        )
        self.label = {int(r[0]): str(r[1]) for r in rows}
        self.expiry_of = {int(r[0]): date.fromisoformat(r[2]) for r in rows}
        self.expired_key = {int(r[0]): str(r[4]) for r in rows}
        sym = db.execute(
            "SELECT COALESCE(symbol, instrument_key) FROM underlying WHERE instrument_key = ?",
            (key,),
        )
        self.symbol = str(sym[0][0]) if sym else key
        self.contracts_sql = (
            "SELECT c.id FROM contract c JOIN expiry e ON e.id = c.expiry_id "
            f"JOIN underlying u ON u.id = e.underlying_id WHERE {where}"
        )

    def finding(self, cid: int | None, expiry: date, key: str, **kw: object) -> ScopedFinding:
        return ScopedFinding(
            self.key,
            self.symbol,
            expiry,
            cid,
            self.label.get(cid, "") if cid is not None else "",
            key,
            **kw,  # type: ignore[arg-type]
            expired_key=self.expired_key.get(cid, "") if cid is not None else "",
        )


def _candle_checks(s: _Scope, report: ScopedReport) -> None:
    keys = [k for k in CANDLE_CHECKS if k != "orphan"]
    cols = ", ".join(
        f"sum({CANDLE_CHECKS[k]}), min(CASE WHEN {CANDLE_CHECKS[k]} THEN k.ts END)" for k in keys
    )
    rows = s.db.execute(
        f"SELECT k.contract_id, k.interval, count(*), {cols} FROM candle_rupees k "
        "LEFT JOIN contract c ON c.id = k.contract_id "
        f"WHERE k.contract_id IN ({s.contracts_sql}) GROUP BY k.contract_id, k.interval",
        s.params,
    )
    for r in rows:
        cid, iv = int(r[0]), int(r[1])
        report.candles += int(r[2])
        for i, key in enumerate(keys):
            n, first = int(r[3 + 2 * i] or 0), r[4 + 2 * i]
            if not n:
                continue
            title, severity = CANDLE_TITLES[key]
            report.findings.append(
                s.finding(
                    cid, s.expiry_of[cid], key, severity=severity, title=title,
                    detail=f"{n:,} {interval_name(iv)} candle(s), the first {_ist(first)} IST",
                    fix=CANDLE_FIXES[key], interval=iv,
                )
            )  # fmt: skip


def _window_checks(s: _Scope, report: ScopedReport) -> None:
    off = IST_OFFSET_SECONDS
    actual = (
        "(SELECT count(*) FROM candle k WHERE k.contract_id = w.contract_id "
        f"AND k.interval = w.interval AND k.ts >= unixepoch(w.from_date) - {off} "
        f"AND k.ts < unixepoch(w.to_date, '+1 day') - {off})"
    )
    scope = f"w.contract_id IN ({s.contracts_sql})"
    report.windows = int(
        s.db.execute(f"SELECT count(*) FROM fetch_window w WHERE {scope}", s.params)[0][0]
    )
    rows = s.db.execute(
        "SELECT * FROM (SELECT w.contract_id, w.interval, w.from_date, w.to_date, w.state, "
        f"w.candles, {actual} AS actual FROM fetch_window w "
        f"WHERE w.state != 'failed' AND {scope}) "
        "WHERE actual != candles OR (state = 'fetched' AND candles = 0) "
        "ORDER BY contract_id, interval, from_date",
        s.params,
    )
    for cid, iv, f0, t0, state, recorded, have in rows:
        key = window_problem(state, recorded, have)
        title, severity = WINDOW_TITLES[key]
        span = (date.fromisoformat(f0), date.fromisoformat(t0))
        repair = severity == ERROR
        report.findings.append(
            s.finding(
                cid, s.expiry_of[cid], key, severity=severity, title=title,
                detail=f"{interval_name(iv)} {f0}..{t0}: {state}, {recorded} recorded, "
                f"{have} stored",
                fix=f"{COLLECT}: {f0}..{t0} again" if repair else "none: the candles are kept",
                interval=iv,
                missing=(span,) if repair else (),
                unmark=(WindowKey(cid, iv, f0, state, recorded),) if repair else (),
            )
        )  # fmt: skip


def _coverage_checks(s: _Scope, report: ScopedReport) -> None:
    targets = s.db.execute(
        "SELECT e.id, e.expiry_date, e.contracts_fetched, t.interval, t.from_date, t.to_date "
        "FROM coverage_target t JOIN expiry e ON e.id = t.expiry_id "
        f"JOIN underlying u ON u.id = e.underlying_id WHERE {s.where} "
        "ORDER BY e.expiry_date, t.interval",
        s.params,
    )
    for eid, exp, cfetched, iv, t_from, t_to in targets:
        expiry = date.fromisoformat(exp)
        target = (date.fromisoformat(t_from), date.fromisoformat(t_to))
        if not cfetched:
            report.findings.append(
                s.finding(
                    None, expiry, "no_contract_list", severity=INCOMPLETE,
                    title="collected expiry without its contract list",
                    detail=f"{interval_name(iv)}: contract list not stored",
                    fix=f"{COLLECT}: the expiry (its contracts, then their candles)", interval=iv,
                    whole_months=_months(expiry, target[0]),
                )
            )  # fmt: skip
            continue
        cids = [
            int(r[0]) for r in s.db.execute("SELECT id FROM contract WHERE expiry_id = ?", (eid,))
        ]
        windows = s.db.windows_for(cids, iv)
        for cid in cids:
            ws = windows.get(cid, [])
            if not ws:
                report.findings.append(
                    s.finding(
                        cid, expiry, "no_windows", severity=INCOMPLETE,
                        title="contract never fetched (no window)",
                        detail=f"{interval_name(iv)} {target[0]}..{target[1]}: never fetched",
                        fix=f"{COLLECT}: {target[0]}..{target[1]}", interval=iv,
                        missing=(target,),
                    )
                )  # fmt: skip
                continue
            done = [(w.from_date, w.to_date) for w in ws if w.state != "failed"]
            for w in ws:
                left = (
                    subtract_ranges((w.from_date, w.to_date), done) if w.state == "failed" else []
                )
                if left:
                    report.findings.append(
                        s.finding(
                            cid, expiry, "failed", severity=INCOMPLETE,
                            title="failed window not fetched since",
                            detail=f"{interval_name(iv)} {w.from_date}..{w.to_date}: "
                            f"{w.attempts} attempt(s), {w.error or 'error'}",
                            fix=f"{COLLECT}: {_spans(left)}", interval=iv, missing=tuple(left),
                        )
                    )  # fmt: skip
            missing = subtract_ranges(target, done)
            if missing:
                report.findings.append(
                    s.finding(
                        cid, expiry, "gaps", severity=INCOMPLETE,
                        title="contract with gaps in its history",
                        detail=f"{interval_name(iv)}: missing {_spans(missing)}",
                        fix=f"{COLLECT}: {_spans(missing)}", interval=iv, missing=tuple(missing),
                    )
                )  # fmt: skip


def scoped_verify(db: Database, instrument_key: str, expiries: Sequence[date] = ()) -> ScopedReport:
    """verify's candle, window and coverage checks of ``instrument_key``'s ``expiries`` (all of
    its expiries when empty), each finding attributed to its expiry and contract, ordered
    expiry, contract, check. Read-only; run it off the Qt thread (``db.run``)."""
    exp = tuple(sorted(set(expiries)))
    s = _Scope(db, instrument_key, exp)
    report = ScopedReport(instrument_key, exp, contracts=len(s.label))
    _candle_checks(s, report)
    _window_checks(s, report)
    _coverage_checks(s, report)
    order = {k: i for i, k in enumerate(("no_contract_list", "no_windows", "gaps", "failed"))}
    report.findings.sort(
        key=lambda f: (f.expiry, f.contract_id or 0, order.get(f.key, 9), f.key, f.detail)
    )
    return report


def _months(expiry: date, first: date) -> int:
    """The history (whole months) whose target window starts on or before ``first``."""
    return next((m for m in range(1, 13) if months_before(expiry, m) <= first), 12)


def repairs(findings: Sequence[ScopedFinding]) -> list[Repair]:
    """The collections that fix ``findings`` (those :attr:`~ScopedFinding.collectable`): one
    per expiry and interval, fetching exactly the ranges they name."""
    groups: dict[tuple[str, date, int], list[ScopedFinding]] = {}
    for f in findings:
        if f.collectable:
            groups.setdefault((f.instrument_key, f.expiry, f.interval), []).append(f)
    out = []
    for (key, expiry, iv), group in sorted(groups.items()):
        unmark = tuple(dict.fromkeys(w for f in group for w in f.unmark))
        whole = max((f.whole_months for f in group), default=0)
        if whole:
            out.append(Repair(key, expiry, iv, None, whole, unmark))
            continue
        ranges: dict[str, list[tuple[date, date]]] = {}
        for f in group:
            ranges.setdefault(f.expired_key, []).extend(f.missing)
        windows = tuple(
            (k, a, b) for k in sorted(ranges) for a, b in merge_ranges(ranges[k])
        )  # a failed window lies inside its contract's gaps: fetched once
        out.append(Repair(key, expiry, iv, windows, 1, unmark))
    return out
