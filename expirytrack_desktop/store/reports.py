"""Reports: coverage per underlying x expiry x interval, row counts, a contract's candles."""

from __future__ import annotations

import contextlib
import os
from datetime import date
from typing import NamedTuple

from expirytrack_desktop.store.coverage import DateRange, subtract_ranges
from expirytrack_desktop.store.errors import StoreLockedError, StoreUnwritableError
from expirytrack_desktop.store.intervals import interval_minutes, interval_name
from expirytrack_desktop.store.rows import Counts, ExpiryCoverage
from expirytrack_desktop.store.windows import WindowStore


class _Figures(NamedTuple):
    """One expiry x interval's coverage figures (a ``coverage_summary`` row's values)."""

    contracts: int
    complete: int
    no_trades: int
    failed: int
    candles: int
    covered: int


class ReportStore(WindowStore):
    """Read-only summaries for the status command and the dashboard (part of :class:`Database`)."""

    def coverage(
        self, instrument_key: str | None = None, interval: str | None = None
    ) -> list[ExpiryCoverage]:
        """Coverage per underlying × expiry × interval (targets recorded by the engine).

        Expiries known but never targeted are listed with interval ``interval or '1minute'``
        and state 'no_data'. Ordered by underlying, then expiry date descending. Figures come
        from ``coverage_summary`` (schema 4), recomputed here for the expiries whose windows,
        contracts or targets changed since (triggers mark them stale).
        """
        fresh = self._refresh_coverage()
        where, params = "", []
        if instrument_key:
            where = " WHERE u.instrument_key = ?"
            params.append(instrument_key)
        exp_rows = self._query(
            "SELECT e.id, u.instrument_key, u.symbol, e.expiry_date, e.is_weekly, "
            "e.contracts_fetched FROM expiry e JOIN underlying u ON u.id = e.underlying_id"
            + where
            + " ORDER BY u.instrument_key, e.expiry_date DESC",
            params,
        )
        iv_filter = interval_minutes(interval) if interval else None
        targets: dict[int, list[tuple[int, date, date]]] = {}
        for r in self._query("SELECT expiry_id, interval, from_date, to_date FROM coverage_target"):
            if iv_filter is None or r[1] == iv_filter:
                targets.setdefault(r[0], []).append(
                    (r[1], date.fromisoformat(r[2]), date.fromisoformat(r[3]))
                )
        summary: dict[tuple[int, int], _Figures] = {}
        for r in self._query("SELECT * FROM coverage_summary"):
            summary[(r[0], r[1])] = _Figures(*r[2:])
        for eid, (figures, _) in fresh.items():
            summary.update({(eid, iv): f for iv, f in figures.items()})
        out: list[ExpiryCoverage] = []
        for eid, key, symbol, exp_text, weekly, cfetched in exp_rows:
            exp = date.fromisoformat(exp_text)
            tlist: list[tuple[int, date | None, date | None]] = list(targets.get(eid, []))
            if not tlist:
                tlist = [(iv_filter or 1, None, None)]
            for iv, t_from, t_to in tlist:
                slot = iv if t_from else 0
                f = summary.get((eid, slot))
                if f is None or (not t_from and iv != 1):
                    rng = {iv: (t_from, t_to)} if t_from and t_to else {}
                    f = self._expiry_figures(eid, rng, iv)[0][slot]
                if f.failed:
                    state = "failed"
                elif cfetched and f.contracts and f.complete == f.contracts and t_from:
                    state = "complete"
                elif f.covered:
                    state = "partial"
                elif cfetched and not f.contracts and t_from:
                    state = "complete"  # the API listed no contracts for this expiry
                else:
                    state = "no_data"
                out.append(
                    ExpiryCoverage(
                        instrument_key=key,
                        symbol=symbol,
                        expiry_date=exp,
                        is_weekly=None if weekly is None else bool(weekly),
                        interval=interval_name(iv),
                        contracts_fetched=bool(cfetched),
                        contracts=f.contracts,
                        contracts_complete=f.complete,
                        contracts_no_trades=f.no_trades,
                        failed_windows=f.failed,
                        candles=f.candles,
                        target=(t_from, t_to) if t_from and t_to else None,
                        state=state,
                    )
                )
        return out

    def _expiry_figures(
        self, eid: int, targets: dict[int, tuple[date, date]], untargeted_iv: int = 1
    ) -> tuple[dict[int, _Figures], int]:
        """Figures of one expiry per target interval (key 0: no target, from the windows of
        ``untargeted_iv``), and the candles of all its fetched windows."""
        contract_ids = [
            r[0] for r in self._query("SELECT id FROM contract WHERE expiry_id = ?", (eid,))
        ]
        exp_rows = self._query("SELECT expiry_date FROM expiry WHERE id = ?", (eid,))
        exp = date.fromisoformat(exp_rows[0][0]) if exp_rows else date.min
        out: dict[int, _Figures] = {}
        plan: list[tuple[int, int, DateRange | None]] = [
            (iv, iv, rng) for iv, rng in targets.items()
        ] or [(0, untargeted_iv, None)]
        for key, iv, target in plan:
            windows = self.windows_for(contract_ids, iv) if contract_ids else {}
            complete = no_trades = failed = candles = 0
            any_cov = False
            for cid in contract_ids:
                ws = windows.get(cid, [])
                done = [(w.from_date, w.to_date) for w in ws if w.state != "failed"]
                candles += sum(w.candles for w in ws)
                any_cov = any_cov or bool(done)
                gaps = subtract_ranges(target, done) if target else [(exp, exp)]
                if not gaps:
                    complete += 1
                    if all(w.candles == 0 for w in ws if w.state != "failed"):
                        no_trades += 1
                for w in ws:
                    if w.state == "failed" and subtract_ranges((w.from_date, w.to_date), done):
                        failed += 1
            out[key] = _Figures(
                len(contract_ids), complete, no_trades, failed, candles, int(any_cov)
            )
        total = self._query(
            "SELECT COALESCE(sum(w.candles), 0) FROM fetch_window w JOIN contract c "
            "ON c.id = w.contract_id WHERE c.expiry_id = ? AND w.state = 'fetched'",
            (eid,),
        )[0][0]
        return out, int(total)

    def _refresh_coverage(self) -> dict[int, tuple[dict[int, _Figures], int]]:
        """Recompute the stale expiries' summaries; store those that did not change meanwhile
        (a write in between marks them stale again). Returns what was computed, so a caller
        that cannot write (read-only file, lock) still reports current figures."""
        stale = self._query("SELECT expiry_id, stamp FROM coverage_stale")
        if not stale:
            return {}
        targets: dict[int, dict[int, tuple[date, date]]] = {}
        for r in self._query("SELECT expiry_id, interval, from_date, to_date FROM coverage_target"):
            targets.setdefault(r[0], {})[r[1]] = (
                date.fromisoformat(r[2]),
                date.fromisoformat(r[3]),
            )
        fresh = {eid: self._expiry_figures(eid, targets.get(eid, {})) for eid, _ in stale}
        with (
            contextlib.suppress(StoreLockedError, StoreUnwritableError),
            self.transaction() as c,
        ):
            for eid, stamp in stale:
                gone = c.execute(
                    "DELETE FROM coverage_stale WHERE expiry_id = ? AND stamp = ?",
                    (eid, stamp),
                ).rowcount
                if not gone:
                    continue  # changed while it was computed: stays stale
                figures, total = fresh[eid]
                c.execute("DELETE FROM coverage_summary WHERE expiry_id = ?", (eid,))
                c.executemany(
                    "INSERT INTO coverage_summary VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(eid, iv, *f) for iv, f in figures.items()],
                )
                c.execute(
                    "INSERT OR REPLACE INTO expiry_candles(expiry_id, candles) VALUES (?, ?)",
                    (eid, total),
                )
        return fresh

    def counts(self) -> Counts:
        fresh = self._refresh_coverage()
        r = self._query(
            "SELECT (SELECT count(*) FROM underlying), (SELECT count(*) FROM expiry), "
            "(SELECT count(*) FROM contract)"
        )[0]
        stored = {
            int(r[0]): int(r[1])
            for r in self._query("SELECT expiry_id, candles FROM expiry_candles")
        }
        stored.update({eid: total for eid, (_, total) in fresh.items()})
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.path.getsize(str(self.path) + suffix)
        return Counts(r[0], r[1], r[2], sum(stored.values()), size)

    def candle_rows(
        self, expired_key: str, interval: str = "1minute"
    ) -> list[tuple[int, float, float, float, float, int, int]]:
        """Stored candles of one contract, oldest first (tests, verification)."""
        rows = self._query(
            "SELECT k.ts, k.open, k.high, k.low, k.close, k.volume, k.oi FROM candle_rupees k "
            "JOIN contract c ON c.id = k.contract_id WHERE c.expired_key = ? AND k.interval = ? "
            "ORDER BY k.ts",
            (expired_key, interval_minutes(interval)),
        )
        return [tuple(r) for r in rows]
