"""Window claims: which candle windows a live job is fetching, so two jobs never both ask the
API for the same window (requests are the scarce resource: 2000 per 30 minutes).

A job claims its planned windows in one transaction (those another live job holds are left
to it), and drops each claim with the done or failed mark of the claimed window's last part
(``claim=`` of the window writes), or all of them when it ends."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import date

from expirytrack_desktop.store.jobs import JobStore

# (contract id, interval in minutes, first day, last day) of a planned window
WindowKey = tuple[int, int, date, date]

_INSERT = (
    "INSERT OR REPLACE INTO window_claim(contract_id, interval, from_date, to_date, job_id) "
    "VALUES (?, ?, ?, ?, ?)"
)
_ACTIVE = "('pending', 'running', 'paused')"
# A paused job has no request in flight and may stay paused for hours: its claims are kept but
# not honoured, so other jobs go on; after a pause it checks each window again before fetching.
_HOLDING = "('pending', 'running')"


class ClaimStore(JobStore):
    """``window_claim`` rows (part of :class:`Database`)."""

    def claim_windows(self, job_id: int, windows: Sequence[WindowKey]) -> dict[int, int]:
        """Claim ``windows`` for ``job_id``, except those overlapping a window another live job
        has claimed: returns ``{index in windows: that job's id}`` for these (not claimed; the
        caller waits for that job and plans them again). Claims of jobs that ended or died
        are cleared on the way."""
        with self.transaction() as c:
            self._clear_ended(c)
            held, dead = self._held(c, job_id, windows)
            c.executemany(
                _INSERT,
                [
                    (cid, iv, f.isoformat(), t.isoformat(), job_id)
                    for i, (cid, iv, f, t) in enumerate(windows)
                    if i not in held
                ],
            )
            if dead:
                c.executemany(
                    "DELETE FROM window_claim WHERE job_id = ?", [(j,) for j in sorted(dead)]
                )
        return held

    def claimed_elsewhere(self, windows: Sequence[WindowKey]) -> dict[int, int]:
        """Read-only: ``{index in windows: id of a live job that has claimed it}`` (for an
        estimate before a job exists)."""
        with self._lock:
            try:
                held, _ = self._held(self._conn, None, windows)
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
        return held

    def _held(
        self, c: sqlite3.Connection, job_id: int | None, windows: Sequence[WindowKey]
    ) -> tuple[dict[int, int], set[int]]:
        """(windows overlapping a claim of another live job -> its id, dead jobs met)."""
        held: dict[int, int] = {}
        dead: set[int] | None = None
        others_claim = c.execute(
            "SELECT 1 FROM window_claim w JOIN job j ON j.id = w.job_id WHERE w.job_id != ? "
            f"AND j.status IN {_HOLDING} LIMIT 1",
            (-1 if job_id is None else job_id,),
        ).fetchone()
        if others_claim is None:  # nobody else holds anything: skip one query per window
            return held, set()
        for i, (cid, iv, f, t) in enumerate(windows):
            others = c.execute(
                "SELECT DISTINCT w.job_id FROM window_claim w JOIN job j ON j.id = w.job_id "
                "WHERE w.contract_id = ? AND w.interval = ? AND w.job_id != ? "
                f"AND w.from_date <= ? AND w.to_date >= ? AND j.status IN {_HOLDING}",
                (cid, iv, -1 if job_id is None else job_id, t.isoformat(), f.isoformat()),
            ).fetchall()
            if not others:
                continue
            if dead is None:
                dead = self._find_dead_jobs()
            live = [j for (j,) in others if j not in dead]
            if live:
                held[i] = min(live)
        return held, dead or set()

    def reclaim(self, job_id: int, old: Sequence[WindowKey], new: Sequence[WindowKey]) -> None:
        """Replace claims ``old`` of ``job_id`` by ``new`` (what is still missing of them, so
        within them: nobody else could take it in between) in one transaction."""
        if list(old) == list(new):
            return
        with self.transaction() as c:
            c.executemany(
                "DELETE FROM window_claim WHERE job_id = ? AND contract_id = ? AND interval = ? "
                "AND from_date = ? AND to_date = ?",
                [(job_id, cid, iv, f.isoformat(), t.isoformat()) for cid, iv, f, t in old],
            )
            c.executemany(
                _INSERT,
                [(cid, iv, f.isoformat(), t.isoformat(), job_id) for cid, iv, f, t in new],
            )

    def release_claims(self, job_id: int) -> None:
        """Drop every claim of ``job_id`` (it ends)."""
        with self.transaction() as c:
            c.execute("DELETE FROM window_claim WHERE job_id = ?", (job_id,))

    def claims_of(self, job_id: int) -> list[WindowKey]:
        return [
            (r[0], r[1], date.fromisoformat(r[2]), date.fromisoformat(r[3]))
            for r in self._query(
                "SELECT contract_id, interval, from_date, to_date FROM window_claim "
                "WHERE job_id = ? ORDER BY contract_id, interval, from_date",
                (job_id,),
            )
        ]

    @staticmethod
    def _clear_ended(c: sqlite3.Connection) -> None:
        c.execute(
            "DELETE FROM window_claim WHERE job_id NOT IN "
            f"(SELECT id FROM job WHERE status IN {_ACTIVE})"
        )
