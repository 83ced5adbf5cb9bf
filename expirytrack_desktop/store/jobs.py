"""Job persistence: job rows, their log, and detecting jobs whose process died."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from expirytrack_desktop.store.base import DatabaseBase
from expirytrack_desktop.store.errors import StoreLockedError, StoreUnwritableError
from expirytrack_desktop.store.rows import JobRecord
from expirytrack_desktop.store.underlyings import read_underlying_names

JOB_STATUSES = (
    "pending",
    "running",
    "paused",
    "needs_login",
    "completed",
    "failed",
    "cancelled",
    "interrupted",
)
# A running job whose heartbeat is older than this is treated as dead even if its pid lives
# (pid reuse after a crash). The engine beats every HEARTBEAT_INTERVAL seconds, even while it
# waits on the rate limiter or is paused.
STALE_HEARTBEAT = timedelta(minutes=3)
HEARTBEAT_INTERVAL = 30.0


class JobStore(DatabaseBase):
    """Jobs and job logs (part of :class:`Database`)."""

    _JOB_COLUMNS = (
        "status",
        "params_json",
        "underlyings",
        "expiries",
        "total_items",
        "done_items",
        "failed_items",
        "requests",
        "candles",
        "error_message",
        "retry_count",
        "pid",
        "started_at",
        "completed_at",
        "heartbeat_at",
    )

    def create_job(
        self,
        job_type: str,
        params: dict[str, Any],
        *,
        underlyings: str = "",
        expiries: str = "",
        status: str = "pending",
    ) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO job(job_type, status, params_json, underlyings, expiries, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job_type, status, json.dumps(params), underlyings, expiries, self.now_text()),
            )
            return int(cur.lastrowid or 0)

    def update_job(self, job_id: int, **fields: Any) -> None:
        """Set job columns (status, counters, error_message, pid, started_at, ...)."""
        bad = set(fields) - set(self._JOB_COLUMNS)
        if bad:
            raise ValueError(f"unknown job fields: {sorted(bad)}")
        if "status" in fields and fields["status"] not in JOB_STATUSES:
            raise ValueError(f"unknown job status {fields['status']!r}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as c:
            c.execute(f"UPDATE job SET {sets} WHERE id = ?", (*fields.values(), job_id))

    def add_job_log(self, job_id: int, level: str, message: str) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO job_log(job_id, at, level, message) VALUES (?, ?, ?, ?)",
                (job_id, self.now_text(), level, message[:2000]),
            )

    def job_logs(self, job_id: int, limit: int = 200) -> list[tuple[str, str, str]]:
        """``(at, level, message)``, oldest first, the last ``limit`` entries."""
        rows = self._query(
            "SELECT at, level, message FROM (SELECT rowid AS r, at, level, message FROM job_log "
            "WHERE job_id = ? ORDER BY rowid DESC LIMIT ?) ORDER BY r",
            (job_id, limit),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def get_job(self, job_id: int) -> JobRecord | None:
        dead = self._dead_jobs()
        rows = self._query("SELECT * FROM job WHERE id = ?", (job_id,))
        return self._named([self._job(rows[0], dead)])[0] if rows else None

    def list_jobs(self, limit: int = 100, job_type: str | None = None) -> list[JobRecord]:
        """Newest first; dead 'running' jobs are reported (and stored) as 'interrupted'."""
        dead = self._dead_jobs()
        if job_type:
            rows = self._query(
                "SELECT * FROM job WHERE job_type = ? ORDER BY id DESC LIMIT ?", (job_type, limit)
            )
        else:
            rows = self._query("SELECT * FROM job ORDER BY id DESC LIMIT ?", (limit,))
        return self._named([self._job(r, dead) for r in rows])

    def _named(self, jobs: list[JobRecord]) -> list[JobRecord]:
        """Summaries stored with instrument keys (stocks collected before their trading symbol
        was known) read by symbol: 'NSE_EQ|INE002A01018' -> 'RELIANCE' wherever jobs are shown."""
        keyed = [
            j
            for j in jobs
            if j.job_type == "collect"
            and "|" in (j.underlyings or "")
            and j.params.get("underlyings")
        ]
        if not keyed:
            return jobs
        names = read_underlying_names(
            self._query, {str(k) for j in keyed for k in j.params["underlyings"]}
        )
        if not names:
            return jobs
        fixed = {
            j.id: replace(
                j, underlyings=", ".join(names.get(str(k), str(k)) for k in j.params["underlyings"])
            )
            for j in keyed
        }
        return [fixed.get(j.id, j) for j in jobs]

    def _dead_jobs(self) -> set[int]:
        """Mark dead jobs interrupted; report them even if the file cannot be written now
        (read-only, locked): the status command must still tell the truth."""
        dead = self._find_dead_jobs()
        if dead:
            with contextlib.suppress(StoreLockedError, StoreUnwritableError):
                self._store_interrupted(dead)
        return dead

    def mark_interrupted_jobs(self) -> int:
        """Jobs whose process is gone -> interrupted (resumable). Returns how many.

        Running/paused: the recorded pid is not alive, or the heartbeat is stale. Pending (just
        created, its process has not started it yet, so no pid): only when a recorded pid is
        dead, or when it has stayed pending longer than ``STALE_HEARTBEAT``; otherwise listing
        jobs right after ``create_job`` would flip a job that is about to start.
        """
        dead = self._find_dead_jobs()
        if dead:
            self._store_interrupted(dead)
        return len(dead)

    def _find_dead_jobs(self) -> set[int]:
        rows = self._query(
            "SELECT id, status, pid, heartbeat_at, created_at FROM job "
            "WHERE status IN ('running', 'pending', 'paused')"
        )
        now = self.clock()

        def older(text: str | None) -> bool:
            if not text:
                return False
            at = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            return now - at > STALE_HEARTBEAT

        dead: set[int] = set()
        for jid, status, pid, beat, created in rows:
            if status == "pending" and pid is None:
                if older(beat or created):
                    dead.add(jid)
            elif not self._pid_alive(pid) or older(beat):
                dead.add(jid)
        return dead

    def _store_interrupted(self, dead: set[int]) -> None:
        with self.transaction() as c:
            c.executemany(
                "UPDATE job SET status = 'interrupted' WHERE id = ? "
                "AND status IN ('running', 'pending', 'paused')",
                [(j,) for j in sorted(dead)],
            )

    @staticmethod
    def _job(r: sqlite3.Row, dead: set[int] | frozenset[int] = frozenset()) -> JobRecord:
        try:
            params = json.loads(r["params_json"] or "{}")
        except ValueError:
            params = {}
        return JobRecord(
            id=r["id"],
            job_type=r["job_type"],
            status="interrupted"
            if r["id"] in dead and r["status"] in ("running", "pending", "paused")
            else r["status"],
            params=params,
            underlyings=r["underlyings"],
            expiries=r["expiries"],
            total_items=r["total_items"],
            done_items=r["done_items"],
            failed_items=r["failed_items"],
            requests=r["requests"],
            candles=r["candles"],
            error_message=r["error_message"],
            retry_count=r["retry_count"],
            pid=r["pid"],
            created_at=r["created_at"],
            started_at=r["started_at"],
            completed_at=r["completed_at"],
            heartbeat_at=r["heartbeat_at"],
        )
