"""Candle windows: fetch each planned window and write every accepted sub-window as it arrives.

Writes go through the database's single writer thread (``db.run``), each sub-window in one
transaction with its own done mark; learned span caps are saved on the way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from expirytrack_desktop.collect.plan import WindowTask
from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.upstox.errors import (
    AuthError,
    BadInputError,
    PlanRequiredError,
    ServerError,
    UpstoxError,
)
from expirytrack_desktop.upstox.span import SpanPolicy, SubWindow, fetch_window


@dataclass(slots=True)
class _WindowTally:
    """What the committed sub-windows of one planned window added up to so far."""

    candles: int = 0
    overlapped: bool = False
    cursor: date | None = None  # first day not yet written


class WindowFetching:
    """Candle-window fetching and writing of a run; a part of :class:`CollectJob` (uses its
    state)."""

    async def _fetch_windows(self, tasks: list[WindowTask], policy: SpanPolicy) -> None:
        """Fetch ``tasks``, leaving the windows another live job is fetching to it: once it
        lets them go, what is still missing of them is planned again (its failures too)."""
        pending = tasks
        while pending and not self._halt:
            span = policy.cap_days(self.selection.interval)
            mine, held = await self.db.run(self._claim, pending, span)
            self._replanned(len(pending), len(mine) + len(held), held)
            held.update(await self._fetch_queue(mine, policy))
            if not held or self._halt:
                return
            others = ", ".join(str(j) for j in sorted(set(held.values())))
            self._current = f"waiting for job {others} ({len(held)} window(s) it is fetching)"
            self._emit(force=True)
            await asyncio.sleep(self.collector.claim_poll)
            pending = list(held)

    def _claim(
        self, tasks: list[WindowTask], span: int | None
    ) -> tuple[list[WindowTask], dict[WindowTask, int]]:
        """On the writer thread: claim ``tasks`` and plan again what is still missing of the
        claimed ones (a job may have finished them since they were planned: it drops its claim
        in the same transaction as its done mark, so claiming first leaves no gap). Returns
        (windows to fetch, {window another live job holds: that job's id})."""
        held_at = self.db.claim_windows(self.id, [t.claim_key for t in tasks])
        held = {tasks[i]: job for i, job in held_at.items()}
        free = [t for t in tasks if t not in held]
        mine = self.collector._plan_again(free, span)
        # claim exactly what will be fetched: each claim drops with its window's last part
        self.db.reclaim(self.id, [t.claim_key for t in free], [t.claim_key for t in mine])
        return mine, held

    def _replanned(self, before: int, now: int, held: dict[WindowTask, int]) -> None:
        """Windows another job stored meanwhile are no longer this job's work."""
        self._waited_for.update(held.values())
        if now == before:
            return
        self._total += now - before
        self._count(windows_planned=now - before)
        if now < before and not self._left_to_others:
            self._left_to_others = True
            others = ", ".join(map(str, sorted(self._waited_for))) or "another job"
            self._note(f"windows also selected by job {others} were fetched by it, not again")

    async def _fetch_queue(
        self, tasks: list[WindowTask], policy: SpanPolicy
    ) -> dict[WindowTask, int]:
        """Fetch ``tasks`` with bounded concurrency. After a pause (while it lasted, other
        jobs could take these windows) each is claimed and planned again before it is
        fetched; returns those another live job holds now."""
        queue: asyncio.Queue[WindowTask] = asyncio.Queue()
        for t in tasks:
            queue.put_nowait(t)
        deferred: dict[WindowTask, int] = {}

        async def worker() -> None:
            while not self._halt:
                try:
                    task = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if not self._paused_once:
                    await self._fetch_one(task, policy)
                    continue
                await self._gate.wait()
                span = policy.cap_days(self.selection.interval)
                mine, held = await self.db.run(self._claim, [task], span)
                self._replanned(1, len(mine) + len(held), held)
                deferred.update(held)
                for t in mine:
                    await self._fetch_one(t, policy)

        n = min(self.collector.concurrency, max(1, len(tasks)))
        await self._gather([worker() for _ in range(n)])
        return deferred

    async def _fetch_one(self, task: WindowTask, policy: SpanPolicy) -> None:
        """Fetch one planned window, committing each accepted sub-window as it arrives.

        Each sub-window is written with its own ``fetch_window`` done mark in one transaction,
        so a kill, a token expiry or a failure after some sub-requests keeps what they
        brought: the planner (coverage = union of done windows) then asks only for the rest.
        A failure marks only the part not yet written as failed.
        """
        self._current = f"{task.label} {task.from_date.isoformat()}..{task.to_date.isoformat()}"
        self._emit()
        iv = task.interval
        raw = self.collector.row_ingest
        got = _WindowTally()

        async def commit(sub: SubWindow) -> None:
            self._answered()
            self._count(candle_requests=sub.requests, spans_rejected=sub.rejected)
            last = sub.to_date >= task.to_date  # the window's last part: its claim goes too
            try:
                stored = await self.db.run(self._write_sub, task, sub, last)
            except ValueError as exc:
                # A candle SQLite cannot read (an impossible time of day): not transient,
                # nothing of this sub-window was written; fail the rest of the window.
                raise ServerError(f"unreadable candles: {exc}") from None
            got.candles += stored.candles
            got.overlapped = got.overlapped or stored.overlapped
            got.cursor = sub.to_date + timedelta(days=1)
            self._count(candles=stored.candles)
            self._emit()

        try:
            await self._call(
                fetch_window(
                    self.client,
                    task.expired_key,
                    iv,
                    task.from_date,
                    task.to_date,
                    policy,
                    raw=raw,
                    on_subwindow=commit,
                ),
                self._current,
                answered=False,
            )
        except (BadInputError, ServerError, UpstoxError) as exc:
            if isinstance(exc, AuthError | PlanRequiredError):
                raise
            text = getattr(exc, "message", str(exc))
            start = got.cursor or task.from_date
            await self.db.run(
                self.db.mark_window_failed,
                task.contract_id,
                iv,
                start,
                task.to_date,
                text,
                job_id=self.id,
                claim=(task.from_date, task.to_date),
            )
            self._failed += 1
            self._count(windows_failed=1)
            self._error(f"{self._current}: {text}")
            self._emit()
            return
        self._done += 1
        self._count(
            windows_fetched=1 if got.candles else 0,
            windows_empty=0 if got.candles else 1,
            windows_refetched=1 if got.overlapped else 0,
        )
        self._emit()
        await self._persist()

    def _write_sub(self, task: WindowTask, sub: SubWindow, last: bool) -> Any:
        """On the writer thread: one sub-window (candles + done mark, + the window's claim
        dropped if ``last``), then any learned cap. ValueError: a candle could not be stored;
        nothing was written."""
        args = (task.contract_id, task.interval, sub.from_date, sub.to_date)
        claim = (task.from_date, task.to_date) if last else None
        if sub.rows is not None:
            stored = self.db.store_window_rows(*args, sub.rows, job_id=self.id, claim=claim)
        else:
            stored = self.db.store_window(*args, sub.candles, job_id=self.id, claim=claim)
        self._save_learned(dict(self.collector._learned))
        return stored

    def _save_learned(self, learned: dict[str, int]) -> None:
        if learned == self._saved_learned:  # the usual case: nothing new, no query
            return
        self._saved_learned = dict(learned)
        caps = self.db.span_caps()
        for interval, days in learned.items():
            if caps.get(interval) != days:
                self.db.set_span_cap(interval, days)

    async def _mark_complete_expiries(self, span: int | None) -> None:
        """``expiry.data_fetched`` = planning again (all contract types) finds nothing to fetch.

        Cleared again when a wider history window is asked later and not yet covered.
        """
        sel = self.selection
        every_type = Selection(sel.underlyings, sel.expiries, sel.interval, sel.months)
        for key in sel.underlyings:
            known = await self.db.run(self.db.known_expiries, key)
            for d, fetched, _ in known:
                if sel.expiries is not None and d not in sel.expiries:
                    continue
                if not fetched:
                    continue
                tasks, _, eid = await self.db.run(
                    self.collector._plan_expiry, key, d, every_type, span, False
                )
                if eid is not None:
                    await self.db.run(self.db.set_data_fetched, eid, not tasks)
