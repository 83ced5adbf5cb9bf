"""Reports: coverage per underlying x expiry x interval, row counts, a contract's candles."""

from __future__ import annotations

import contextlib
import os
from datetime import date

from expirytrack_desktop.store.coverage import subtract_ranges
from expirytrack_desktop.store.intervals import interval_minutes, interval_name
from expirytrack_desktop.store.rows import Counts, ExpiryCoverage
from expirytrack_desktop.store.windows import WindowStore


class ReportStore(WindowStore):
    """Read-only summaries for the status command and the dashboard (part of :class:`Database`)."""

    def coverage(
        self, instrument_key: str | None = None, interval: str | None = None
    ) -> list[ExpiryCoverage]:
        """Coverage per underlying × expiry × interval (targets recorded by the engine).

        Expiries known but never targeted are listed with interval ``interval or '1minute'``
        and state 'no_data'. Ordered by underlying, then expiry date descending.
        """
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
        out: list[ExpiryCoverage] = []
        for eid, key, symbol, exp_text, weekly, cfetched in exp_rows:
            exp = date.fromisoformat(exp_text)
            contract_ids = [
                r[0] for r in self._query("SELECT id FROM contract WHERE expiry_id = ?", (eid,))
            ]
            tlist = targets.get(eid) or [
                (iv_filter or 1, None, None)  # type: ignore[list-item]
            ]
            for iv, t_from, t_to in tlist:
                windows = self.windows_for(contract_ids, iv) if contract_ids else {}
                complete = no_trades = failed = candles = 0
                any_cov = False
                for cid in contract_ids:
                    ws = windows.get(cid, [])
                    done = [(w.from_date, w.to_date) for w in ws if w.state != "failed"]
                    candles += sum(w.candles for w in ws)
                    any_cov = any_cov or bool(done)
                    gaps = subtract_ranges((t_from, t_to), done) if t_from else [(exp, exp)]
                    if not gaps:
                        complete += 1
                        if all(w.candles == 0 for w in ws if w.state != "failed"):
                            no_trades += 1
                    for w in ws:
                        if w.state == "failed" and subtract_ranges((w.from_date, w.to_date), done):
                            failed += 1
                if failed:
                    state = "failed"
                elif cfetched and contract_ids and complete == len(contract_ids) and t_from:
                    state = "complete"
                elif any_cov:
                    state = "partial"
                elif cfetched and not contract_ids and t_from:
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
                        contracts=len(contract_ids),
                        contracts_complete=complete,
                        contracts_no_trades=no_trades,
                        failed_windows=failed,
                        candles=candles,
                        target=(t_from, t_to) if t_from else None,
                        state=state,
                    )
                )
        return out

    def counts(self) -> Counts:
        r = self._query(
            "SELECT (SELECT count(*) FROM underlying), (SELECT count(*) FROM expiry), "
            "(SELECT count(*) FROM contract), "
            "(SELECT COALESCE(sum(candles), 0) FROM fetch_window WHERE state = 'fetched')"
        )[0]
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.path.getsize(str(self.path) + suffix)
        return Counts(r[0], r[1], r[2], r[3], size)

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
