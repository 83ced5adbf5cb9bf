"""Data integrity checks of an ExpiryTrack database (``expirytrack verify``).

Three kinds of findings:

- **error**: the stored data contradicts itself or SQLite's own checks (a damaged file, a
  candle whose low is above its high, a 'fetched' window whose candles are not there);
- **incomplete**: something asked for is not stored yet (gaps, failed windows, contracts or
  contract lists never fetched) -- a rerun of the collection fills it;
- **note**: unusual but possibly genuine (candles outside 09:15-15:29 IST or on a weekend:
  special sessions such as Muhurat trading exist), reported and never changed.

Nothing here deletes a candle. :func:`fix` only removes the "done" mark of windows whose
candles do not match it, so the next ``collect`` of the same selection fetches them again
(``INSERT OR REPLACE`` on the candle key: nothing is duplicated).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from expirytrack_desktop.store.coverage import merge_ranges, subtract_ranges
from expirytrack_desktop.store.database import Database, interval_name
from expirytrack_desktop.store.errors import StoreCorruptError, StoreError
from expirytrack_desktop.store.health import FULL_CHECK_BYTES, check_pages
from expirytrack_desktop.timeutil import IST, IST_OFFSET_SECONDS, day_start_epoch

SESSION_START = 9 * 3600 + 15 * 60  # 09:15 IST, seconds after midnight
SESSION_LAST = 15 * 3600 + 29 * 60  # 15:29 IST: the last 1-minute candle of the day
DAY = 1440  # interval minutes of daily candles
EXAMPLES = 5

ERROR, INCOMPLETE, NOTE = "error", "incomplete", "note"

_TOD = f"((k.ts + {IST_OFFSET_SECONDS}) % 86400)"
_WEEKDAY = f"(((k.ts + {IST_OFFSET_SECONDS}) / 86400 + 3) % 7)"  # 1970-01-01: Thursday
# The candle checks as SQL conditions over ``candle_rupees k LEFT JOIN contract c`` (the
# window's scoped checks, store/findings.py, use the same ones).
CANDLE_CHECKS = {
    "ohlc": "(k.low > k.high OR k.open > k.high OR k.open < k.low "
    "OR k.close > k.high OR k.close < k.low)",
    "negative": "(k.volume < 0 OR k.oi < 0)",
    "orphan": "(c.id IS NULL)",
    "hours": f"(k.interval != {DAY} AND {_TOD} NOT BETWEEN {SESSION_START} AND {SESSION_LAST})",
    "weekend": f"({_WEEKDAY} >= 5)",
}
CANDLE_TITLES = {
    "ohlc": ("candles: low <= open, close <= high", ERROR),
    "negative": ("candles: volume and open interest >= 0", ERROR),
    "orphan": ("candles without a stored contract", ERROR),
    "hours": ("candles outside 09:15-15:29 IST", NOTE),
    "weekend": ("candles on a Saturday or Sunday", NOTE),
}

# Windows as they were when a verify last found no error (schema 4's verify_mark): a window
# whose row still matches is not checked again by an incremental verify.
_NOT_MARKED = (
    "NOT EXISTS (SELECT 1 FROM verify_mark v WHERE v.contract_id = w.contract_id "
    "AND v.interval = w.interval AND v.from_date = w.from_date AND v.to_date = w.to_date "
    "AND v.state = w.state AND v.candles = w.candles AND v.updated_at = w.updated_at)"
)
_CHANGED = f"FROM fetch_window w WHERE w.state != 'failed' AND {_NOT_MARKED}"


@dataclass(slots=True)
class Finding:
    key: str
    title: str
    severity: str
    count: int = 0
    examples: list[str] = field(default_factory=list)
    skipped: str | None = None  # why the check could not run
    hint: str | None = None

    @property
    def ok(self) -> bool:
        return self.count == 0 and self.skipped is None


@dataclass(frozen=True, slots=True)
class WindowKey:
    contract_id: int
    interval: int
    from_date: str
    state: str
    candles: int  # as recorded (the fix only touches the row if it is still so)


@dataclass(slots=True)
class VerifyReport:
    db_path: str
    scope: str
    findings: list[Finding] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)
    fixable: list[WindowKey] = field(default_factory=list)

    def finding(self, key: str) -> Finding:
        return next(f for f in self.findings if f.key == key)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.severity != NOTE and not f.ok]

    @property
    def clean(self) -> bool:
        return not self.problems


@dataclass(frozen=True, slots=True)
class FixResult:
    windows: int
    contracts: int
    expiries: int


# ---- helpers --------------------------------------------------------------------------------


def window_problem(state: str, recorded: int, have: int) -> str:
    """The check a window whose stored candles disagree with its mark fails (a key of the
    window checks' titles): ``state`` and ``recorded`` as marked, ``have`` as stored."""
    if state == "fetched" and have == 0:
        return "fetched_empty"
    if state == "fetched" and have < recorded:
        return "missing_candles"
    if state == "fetched":
        return "extra_candles"
    return "empty_with_candles"


def _file_bytes(path: object) -> int:
    try:
        return os.path.getsize(str(path))
    except OSError:
        return 0


def _ist(ts: int) -> str:
    return datetime.fromtimestamp(ts, IST).strftime("%Y-%m-%d %a %H:%M")


def _scope_sql(instrument: str | None, expiries: Sequence[date] | None) -> tuple[str, list[Any]]:
    """``AND ...`` over aliases e (expiry) and u (underlying), with its parameters."""
    sql, params = "", []
    if instrument:
        sql += " AND u.instrument_key = ?"
        params.append(instrument)
    if expiries:
        sql += f" AND e.expiry_date IN ({','.join('?' * len(expiries))})"
        params += [d.isoformat() for d in expiries]
    return sql, params


class _Verifier:
    def __init__(
        self,
        db: Database,
        instrument: str | None,
        expiries: Sequence[date] | None,
        quick: bool,
        examples: int,
        types: Sequence[str] | None = None,
        incremental: bool = False,
    ) -> None:
        self.db = db
        self.incremental = incremental
        self.types = tuple(types) if types else None
        self.quick = quick
        self.n = examples
        self.scoped = bool(instrument or expiries)
        self.where, self.params = _scope_sql(instrument, expiries)
        self.scope_contracts = (
            "SELECT c.id FROM contract c JOIN expiry e ON e.id = c.expiry_id "
            f"JOIN underlying u ON u.id = e.underlying_id WHERE 1{self.where}"
        )
        self._labels: dict[int, str] = {}

    def q(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        return self.db.execute(sql, params)

    def label(self, contract_id: int) -> str:
        if contract_id not in self._labels:
            rows = self.q(
                "SELECT COALESCE(openalgo_symbol, trading_symbol, expired_key) FROM contract "
                "WHERE id = ?",
                (contract_id,),
            )
            self._labels[contract_id] = rows[0][0] if rows else f"contract #{contract_id} (gone)"
        return self._labels[contract_id]

    def _contracts_of(self, expiry_id: int) -> list[int]:
        """The contracts of an expiry whose coverage is checked (``types`` only, if given)."""
        sql = "SELECT id FROM contract WHERE expiry_id = ?"
        params: list[object] = [expiry_id]
        if self.types:
            sql += f" AND contract_type IN ({','.join('?' * len(self.types))})"
            params += self.types
        return [r[0] for r in self.q(sql, params)]

    # ---- the checks -------------------------------------------------------------------------

    def sqlite_checks(self, report: VerifyReport) -> None:
        if self.incremental and not self.quick and _file_bytes(self.db.path) > FULL_CHECK_BYTES:
            report.findings.append(self._page_check())
        else:
            pragma = "quick_check" if self.quick else "integrity_check"
            f = Finding("integrity", f"SQLite {pragma}", ERROR)
            report.findings.append(f)
            try:
                rows = [r[0] for r in self.q(f"PRAGMA {pragma}(100)")]
            except StoreError as exc:
                f.count, f.examples = 1, [str(exc)]
            else:
                if rows != ["ok"]:
                    f.count, f.examples = len(rows), rows[: self.n]
        fk = Finding("foreign_keys", "SQLite foreign_key_check", ERROR)
        report.findings.append(fk)
        try:
            rows = self.q("PRAGMA foreign_key_check")
        except StoreError as exc:
            fk.skipped = str(exc)
            return
        fk.count = len(rows)
        fk.examples = [f"{r[0]} row {r[1]} refers to a missing {r[2]}" for r in rows[: self.n]]

    def candle_checks(self, report: VerifyReport) -> None:
        scope = f" WHERE k.contract_id IN ({self.scope_contracts})" if self.scoped else ""
        conds = dict(CANDLE_CHECKS)
        titles = CANDLE_TITLES
        sums = ", ".join(f"COALESCE(sum({c}), 0)" for c in conds.values())
        base = "FROM candle_rupees k LEFT JOIN contract c ON c.id = k.contract_id"
        if self.incremental:
            # only the candles of windows changed since the last clean verify (merged ranges)
            del conds["orphan"]
            report.findings.append(self._orphans())
            base = (
                "FROM temp.verify_range r JOIN candle_rupees k ON k.contract_id = r.contract_id "
                "AND k.interval = r.interval AND k.ts >= r.lo AND k.ts < r.hi "
                "LEFT JOIN contract c ON c.id = k.contract_id"
            )
            sums = ", ".join(f"COALESCE(sum({c}), 0)" for c in conds.values())
        try:
            row = self.q(f"SELECT count(*), {sums} {base}{scope}", self.params)[0]
        except StoreError as exc:
            for key, (title, sev) in titles.items():
                report.findings.append(Finding(key, title, sev, skipped=str(exc)))
            return
        report.stats["candles"] = row[0]
        for i, key in enumerate(conds):
            title, sev = titles[key]
            f = Finding(key, title, sev, int(row[i + 1]))
            report.findings.append(f)
            if not f.count:
                continue
            cond = conds[key] + (scope.replace(" WHERE ", " AND ") if scope else "")
            for r in self.q(
                "SELECT k.contract_id, k.interval, k.ts, k.open, k.high, k.low, k.close, "
                f"k.volume, k.oi {base} WHERE {cond} ORDER BY k.contract_id, k.interval, k.ts "
                f"LIMIT {self.n}",
                self.params,
            ):
                f.examples.append(
                    f"{self.label(r[0])} {interval_name(r[1])} {_ist(r[2])} IST: "
                    f"O {r[3]:g} H {r[4]:g} L {r[5]:g} C {r[6]:g} V {r[7]} OI {r[8]}"
                )

    def _page_check(self) -> Finding:
        """An incremental run's file check on a big file (a small one gets integrity_check):
        store/health.py's check_pages -- every table but the candles, the free list, both
        ends of each contract's candles and a rotating slice, so successive runs read it
        all."""
        f = Finding("integrity", "SQLite pages (sampled on big files; --full: all)", ERROR)

        def remember(key: str, value: str) -> None:
            with contextlib.suppress(StoreError):  # read-only: the slice starts over
                self.db.kv_set(key, value)

        with self.db.temp() as conn:
            try:
                how = check_pages(
                    conn,
                    self.db.path,
                    full_check_bytes=FULL_CHECK_BYTES,
                    kv_get=self.db.kv_get,
                    kv_set=remember,
                )
            except StoreCorruptError as exc:
                f.count, f.examples = 1, [str(exc)]
            else:
                f.title = f"SQLite pages ({how} check; --full: integrity_check)"
        return f

    def _orphans(self) -> Finding:
        """Candles whose contract is gone: one index seek per stored contract id."""
        f = Finding("orphan", "candles without a stored contract", ERROR)
        known = {r[0] for r in self.q("SELECT id FROM contract")}
        last = -(2**63)
        while True:
            row = self.q("SELECT min(contract_id) FROM candle WHERE contract_id > ?", (last,))
            if row[0][0] is None:
                return f
            last = int(row[0][0])
            if last not in known:
                n = self.q("SELECT count(*) FROM candle WHERE contract_id = ?", (last,))[0][0]
                f.count += n
                if len(f.examples) < self.n:
                    f.examples.append(f"contract #{last} (gone): {n} candle(s)")

    def changed_windows(self, report: VerifyReport) -> None:
        """Windows not verified clean as they are now -> ``temp.verify_range`` (their time
        ranges merged per contract and interval)."""
        rows = self.q(f"SELECT w.contract_id, w.interval, w.from_date, w.to_date {_CHANGED}")
        report.stats["windows_checked"] = len(rows)
        spans: dict[tuple[int, int], list[tuple[date, date]]] = {}
        for cid, iv, f0, t0 in rows:
            spans.setdefault((cid, iv), []).append((date.fromisoformat(f0), date.fromisoformat(t0)))
        ranges = [
            (cid, iv, day_start_epoch(a), day_start_epoch(b + timedelta(days=1)))
            for (cid, iv), got in spans.items()
            for a, b in merge_ranges(got)
        ]
        with self.db.temp() as c:
            c.execute(
                "CREATE TEMP TABLE IF NOT EXISTS verify_range (contract_id INTEGER, "
                "interval INTEGER, lo INTEGER, hi INTEGER)"
            )
            c.execute("DELETE FROM temp.verify_range")
            c.executemany("INSERT INTO temp.verify_range VALUES (?, ?, ?, ?)", ranges)

    def window_checks(self, report: VerifyReport) -> None:
        scope = f" AND w.contract_id IN ({self.scope_contracts})" if self.scoped else ""
        if self.incremental:
            scope += f" AND {_NOT_MARKED}"
        off = IST_OFFSET_SECONDS
        actual = (
            "(SELECT count(*) FROM candle k WHERE k.contract_id = w.contract_id "
            f"AND k.interval = w.interval AND k.ts >= unixepoch(w.from_date) - {off} "
            f"AND k.ts < unixepoch(w.to_date, '+1 day') - {off})"
        )
        keys = {
            "fetched_empty": (
                "windows 'fetched' but holding no candles",
                ERROR,
            ),
            "missing_candles": ("windows holding fewer candles than recorded", ERROR),
            "extra_candles": ("windows holding more candles than recorded", NOTE),
            "empty_with_candles": ("windows 'empty' but holding candles", NOTE),
        }
        found = {k: Finding(k, t, s) for k, (t, s) in keys.items()}
        report.findings.extend(found.values())
        try:
            report.stats["windows"] = self.q(
                f"SELECT count(*) FROM fetch_window w WHERE 1{scope}", self.params
            )[0][0]
            rows = self.q(
                "SELECT * FROM (SELECT w.contract_id, w.interval, w.from_date, w.to_date, "
                f"w.state, w.candles, {actual} AS actual FROM fetch_window w "
                f"WHERE w.state != 'failed'{scope}) "
                "WHERE actual != candles OR (state = 'fetched' AND candles = 0) "
                "ORDER BY contract_id, interval, from_date",
                self.params,
            )
        except StoreError as exc:
            for f in found.values():
                f.skipped = str(exc)
            return
        for cid, iv, f0, t0, state, recorded, have in rows:
            key = window_problem(state, recorded, have)
            f = found[key]
            f.count += 1
            if found[key].severity == ERROR:
                report.fixable.append(WindowKey(cid, iv, f0, state, recorded))
            if len(f.examples) < self.n:
                f.examples.append(
                    f"{self.label(cid)} {interval_name(iv)} {f0}..{t0}: {state}, "
                    f"{recorded} recorded, {have} stored"
                )

    def coverage_checks(self, report: VerifyReport) -> None:
        """Targets (what collections asked for) against windows: what is still missing."""
        targets = self.q(
            "SELECT e.id, u.symbol, u.instrument_key, e.expiry_date, e.contracts_fetched, "
            "t.interval, t.from_date, t.to_date FROM coverage_target t "
            "JOIN expiry e ON e.id = t.expiry_id JOIN underlying u ON u.id = e.underlying_id "
            f"WHERE 1{self.where} ORDER BY u.instrument_key, e.expiry_date, t.interval",
            self.params,
        )
        no_list = Finding(
            "no_contract_list", "collected expiries without their contract list", INCOMPLETE
        )
        no_window = Finding("no_windows", "contracts never fetched (no window)", INCOMPLETE)
        gaps = Finding("gaps", "contracts with gaps in their history", INCOMPLETE)
        failed = Finding("failed", "failed windows not fetched since", INCOMPLETE)
        report.findings += [no_list, no_window, gaps, failed]
        seen_expiry: set[int] = set()
        nothing_missing = self._complete_expiries() if self.incremental else set()
        for eid, symbol, key, exp, cfetched, iv, t_from, t_to in targets:
            if (eid, iv) in nothing_missing:
                seen_expiry.add(eid)
                continue
            name = f"{symbol or key} {exp}"
            if not cfetched:
                if eid not in seen_expiry:
                    no_list.count += 1
                    if len(no_list.examples) < self.n:
                        no_list.examples.append(f"{name}: contract list not stored")
                seen_expiry.add(eid)
                continue
            seen_expiry.add(eid)
            target = (date.fromisoformat(t_from), date.fromisoformat(t_to))
            cids = self._contracts_of(eid)
            windows = self.db.windows_for(cids, iv)
            for cid in cids:
                ws = windows.get(cid, [])
                if not ws:
                    no_window.count += 1
                    if len(no_window.examples) < self.n:
                        no_window.examples.append(
                            f"{self.label(cid)} ({name}, {interval_name(iv)}): never fetched"
                        )
                    continue
                done = [(w.from_date, w.to_date) for w in ws if w.state != "failed"]
                for w in ws:
                    if w.state == "failed" and subtract_ranges((w.from_date, w.to_date), done):
                        failed.count += 1
                        if len(failed.examples) < self.n:
                            failed.examples.append(
                                f"{self.label(cid)} {interval_name(iv)} {w.from_date}.."
                                f"{w.to_date}: {w.attempts} attempt(s), {w.error or 'error'}"
                            )
                missing = subtract_ranges(target, done)
                if missing:
                    gaps.count += 1
                    if len(gaps.examples) < self.n:
                        spans = ", ".join(f"{a}..{b}" for a, b in missing[:3])
                        more = f" (+{len(missing) - 3})" if len(missing) > 3 else ""
                        gaps.examples.append(
                            f"{self.label(cid)} {interval_name(iv)}: missing {spans}{more}"
                        )
        report.stats["expiries_collected"] = len(seen_expiry)
        never = self.q(
            "SELECT u.symbol, u.instrument_key, e.expiry_date FROM expiry e "
            "JOIN underlying u ON u.id = e.underlying_id WHERE NOT EXISTS "
            f"(SELECT 1 FROM coverage_target t WHERE t.expiry_id = e.id){self.where} "
            "ORDER BY e.expiry_date",
            self.params,
        )
        f = Finding("never_collected", "expiries offered by the API, never collected", NOTE)
        f.count = len(never)
        f.examples = [f"{r[0] or r[1]} {r[2]}" for r in never[: self.n]]
        if never:
            oldest = date.fromisoformat(never[0][2])
            if oldest < date.today() - timedelta(days=150):
                f.hint = f"the oldest ({oldest}) may soon leave Upstox's ~6-month archive"
        report.findings.append(f)

    def _complete_expiries(self) -> set[tuple[int, int]]:
        """(expiry, interval) pairs whose coverage summary (kept current by triggers, see
        reports.py) has every contract complete and no failed window: nothing to report."""
        self.db.coverage()  # brings stale summaries up to date
        return {
            (r[0], r[1])
            for r in self.q(
                "SELECT s.expiry_id, s.interval FROM coverage_summary s JOIN expiry e "
                "ON e.id = s.expiry_id WHERE e.contracts_fetched = 1 AND s.interval > 0 "
                "AND s.complete = s.contracts AND s.failed = 0"
            )
        }

    def mark_clean(self) -> int:
        """Remember every window as verified clean as it is now (after a run without
        errors), so the next incremental verify checks only what changed."""
        try:
            with self.db.transaction() as c:
                return c.execute(
                    "INSERT OR REPLACE INTO verify_mark(contract_id, interval, from_date, "
                    "to_date, state, candles, updated_at) SELECT w.contract_id, w.interval, "
                    f"w.from_date, w.to_date, w.state, w.candles, w.updated_at {_CHANGED}"
                ).rowcount
        except StoreError:
            return 0  # read-only or locked: the next run checks these windows again

    def stats(self, report: VerifyReport) -> None:
        def one(sql: str) -> int:
            return int(self.q(sql, self.params)[0][0])

        join = "FROM expiry e JOIN underlying u ON u.id = e.underlying_id"
        if self.scoped:
            report.stats["underlyings"] = one(
                f"SELECT count(DISTINCT u.id) {join} WHERE 1{self.where}"
            )
        else:
            report.stats["underlyings"] = int(self.q("SELECT count(*) FROM underlying")[0][0])
        report.stats["expiries"] = one(f"SELECT count(*) {join} WHERE 1{self.where}")
        report.stats["contracts"] = one(f"SELECT count(*) FROM ({self.scope_contracts})")


def verify(
    db: Database,
    *,
    instrument: str | None = None,
    expiries: Iterable[date] | None = None,
    types: Sequence[str] | None = None,
    quick: bool = False,
    examples: int = EXAMPLES,
    full: bool = False,
) -> VerifyReport:
    """Run every check (scoped to one underlying / some expiries when given; the SQLite file
    checks always cover the whole file). ``types``: judge the coverage of these contract types
    only (a collection of futures alone is complete without the options' candles).

    Unscoped and not ``full``: incremental — candles and windows are checked only for the
    windows written or changed since the last verify that found no error (``verify_mark``),
    coverage only for expiries not complete; a run without errors then remembers every
    window as verified. Scoped or ``full``: everything in scope, as stored now."""
    exp = sorted(set(expiries)) if expiries else None
    scope = "all data"
    if instrument or exp:
        parts = [instrument or "every underlying"]
        if exp:
            parts.append(", ".join(d.isoformat() for d in exp))
        scope = " ".join(parts)
    if types:
        scope += f" (coverage of {', '.join(types)} only)"
    report = VerifyReport(str(db.path), scope)
    incremental = not full and not (instrument or exp)
    if incremental:
        report.scope += " (windows changed since the last clean verify; --full: everything)"
    v = _Verifier(db, instrument, exp, quick, examples, types, incremental)
    v.sqlite_checks(report)
    v.stats(report)
    if incremental:
        v.changed_windows(report)
    v.candle_checks(report)
    v.window_checks(report)
    v.coverage_checks(report)
    if incremental and not any(f.severity == ERROR and not f.ok for f in report.findings):
        report.stats["windows_marked"] = v.mark_clean()
    return report


def fix(db: Database, report: VerifyReport) -> FixResult:
    """Remove the done mark of the windows the report found inconsistent (candles are kept),
    and clear ``data_fetched`` of their expiries, so the next collect fetches them again."""
    if not report.fixable:
        return FixResult(0, 0, 0)
    removed = 0
    with db.transaction() as c:
        for w in report.fixable:
            cur = c.execute(
                "DELETE FROM fetch_window WHERE contract_id = ? AND interval = ? "
                "AND from_date = ? AND state = ? AND candles = ?",
                (w.contract_id, w.interval, w.from_date, w.state, w.candles),
            )
            removed += cur.rowcount
        ids = sorted({w.contract_id for w in report.fixable})
        expiries = 0
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            cur = c.execute(
                "UPDATE expiry SET data_fetched = 0 WHERE data_fetched = 1 AND id IN "
                f"(SELECT expiry_id FROM contract WHERE id IN ({','.join('?' * len(part))}))",
                part,
            )
            expiries += cur.rowcount
    return FixResult(removed, len(ids), expiries)
