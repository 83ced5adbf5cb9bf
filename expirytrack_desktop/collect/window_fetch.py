"""Candle windows: fetch each planned window and write every accepted sub-window as it arrives.

Writes go through the database's single writer thread (``db.run``), each sub-window in one
transaction with its own done mark; learned span caps are saved on the way. Windows another
live job has claimed are left to it (``store/claims.py``) and planned again once it lets go.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from expirytrack_desktop.collect.api_gate import ApiGate
from expirytrack_desktop.collect.plan import WindowTask
from expirytrack_desktop.collect.planning import plan_again, plan_expiry
from expirytrack_desktop.collect.progress import JobProgress
from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.collect.span_caps import CapSaver
from expirytrack_desktop.store import Database
from expirytrack_desktop.store.rows import StoredWindow
from expirytrack_desktop.upstox.errors import (
    AuthError,
    BadInputError,
    PlanRequiredError,
    ServerError,
    UpstoxError,
)
from expirytrack_desktop.upstox.limiter import SendWithheld
from expirytrack_desktop.upstox.span import SpanPolicy, SubWindow, fetch_window


@dataclass(slots=True)
class _WindowTally:
    """What the committed sub-windows of one planned window added up to so far."""

    candles: int = 0
    overlapped: bool = False
    cursor: date | None = None  # first day not yet written


class _Halted(Exception):
    """The run stopped after a sub-window was committed: ask for no more of this window."""


def window_text(task: WindowTask) -> str:
    """A window as progress and failure messages name it."""
    return f"{task.label} {task.from_date.isoformat()}..{task.to_date.isoformat()}"


class WindowFetcher:
    """Fetches and writes the candle windows of one run.

    ``concurrency``: windows in flight at once; ``claim_poll``: seconds between looks at
    windows another live job holds; ``row_ingest``: ask the client for decoded rows
    (``get_candle_rows``) and store them as decoded; ``note``: tell the user something that
    is not an error.
    """

    def __init__(
        self,
        db: Database,
        client: Any,
        job_id: int,
        selection: Selection,
        gate: ApiGate,
        progress: JobProgress,
        policy: SpanPolicy,
        saver: CapSaver,
        *,
        concurrency: int,
        claim_poll: float,
        note: Callable[[str], None],
    ) -> None:
        self._db = db
        self._client = client
        self._job_id = job_id
        self._selection = selection
        self._gate = gate
        self._progress = progress
        self._policy = policy
        self._saver = saver
        self._concurrency = concurrency
        self._claim_poll = claim_poll
        self._note = note
        self._row_ingest = callable(getattr(client, "get_candle_rows", None))
        self._left_to_others = False  # some planned windows were fetched by another job
        self._waited_for: set[int] = set()  # jobs that held windows this one planned

    def _span(self) -> int:
        return self._policy.cap_days(self._selection.interval)

    async def fetch(self, tasks: list[WindowTask]) -> None:
        """Fetch ``tasks``, leaving the windows another live job is fetching to it: once it
        lets them go, what is still missing of them is planned again (its failures too)."""
        pending = tasks
        while pending and not self._gate.halted:
            mine, held = await self._db.run(self._claim, pending, self._span())
            self._replanned(len(pending), len(mine) + len(held), held)
            held.update(await self._fetch_queue(mine))
            if not held or self._gate.halted:
                return
            others = ", ".join(str(j) for j in sorted(set(held.values())))
            self._progress.current = (
                f"waiting for job {others} ({len(held)} window(s) it is fetching)"
            )
            self._progress.emit(force=True)
            await asyncio.sleep(self._claim_poll)
            pending = list(held)

    def _claim(
        self, tasks: list[WindowTask], span: int | None
    ) -> tuple[list[WindowTask], dict[WindowTask, int]]:
        """On the writer thread: claim ``tasks`` and plan again what is still missing of the
        claimed ones (a job may have finished them since they were planned: it drops its claim
        in the same transaction as its done mark, so claiming first leaves no gap). Returns
        (windows to fetch, {window another live job holds: that job's id})."""
        held_at = self._db.claim_windows(self._job_id, [t.claim_key for t in tasks])
        held = {tasks[i]: job for i, job in held_at.items()}
        free = [t for t in tasks if t not in held]
        mine = plan_again(self._db, free, span)
        # claim exactly what will be fetched: each claim drops with its window's last part
        self._db.reclaim(self._job_id, [t.claim_key for t in free], [t.claim_key for t in mine])
        return mine, held

    def _replanned(self, before: int, now: int, held: dict[WindowTask, int]) -> None:
        """Windows another job stored meanwhile are no longer this job's work."""
        self._waited_for.update(held.values())
        if now == before:
            return
        self._progress.total += now - before
        self._progress.count(windows_planned=now - before)
        if now < before and not self._left_to_others:
            self._left_to_others = True
            others = ", ".join(map(str, sorted(self._waited_for))) or "another job"
            self._note(f"windows also selected by job {others} were fetched by it, not again")

    async def _fetch_queue(self, tasks: list[WindowTask]) -> dict[WindowTask, int]:
        """Fetch ``tasks`` (in order) with bounded concurrency. After a pause (while it lasted,
        other jobs could take these windows) each is claimed and planned again before it is
        fetched; returns those another live job holds now."""
        queue: asyncio.Queue[WindowTask] = asyncio.Queue()
        for t in tasks:
            queue.put_nowait(t)
        deferred: dict[WindowTask, int] = {}

        async def worker() -> None:
            while not self._gate.halted:
                try:
                    task = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    if not self._gate.was_paused:
                        await self._fetch_one(task)
                        continue
                    await self._gate.wait_open()
                    mine, held = await self._db.run(self._claim, [task], self._span())
                    self._replanned(1, len(mine) + len(held), held)
                    deferred.update(held)
                    for t in mine:
                        await self._fetch_one(t)
                except (_Halted, SendWithheld):
                    return

        n = min(self._concurrency, max(1, len(tasks)))
        await self._gate.gather([worker() for _ in range(n)])
        return deferred

    async def _fetch_one(self, task: WindowTask) -> None:
        """Fetch one planned window, committing each accepted sub-window as it arrives.

        Each sub-window is written with its own ``fetch_window`` done mark in one transaction,
        so a kill, a stop or a failure after some sub-requests keeps what they brought: the
        planner (coverage = union of done windows) then asks only for the rest. A failure
        marks only the part not yet written as failed. Its messages name this window.
        """
        what = window_text(task)
        self._progress.doing(what)
        self._gate.enter_scope(task.deadline.toordinal())
        got = _WindowTally()

        async def commit(sub: SubWindow) -> None:
            # No await before committing(): a stop waits for this answer to be written.
            async with self._gate.committing():
                self._gate.answered()
                self._progress.count(candle_requests=sub.requests, spans_rejected=sub.rejected)
                last = sub.to_date >= task.to_date  # the window's last part: its claim goes too
                try:
                    stored = await self._db.run(self._write_sub, task, sub, last)
                except ValueError as exc:
                    # A candle SQLite cannot read (an impossible time of day): not transient,
                    # nothing of this sub-window was written; fail the rest of the window.
                    raise ServerError(f"unreadable candles: {exc}") from None
            got.candles += stored.candles
            got.overlapped = got.overlapped or stored.overlapped
            got.cursor = sub.to_date + timedelta(days=1)
            self._progress.count(candles=stored.candles)
            self._progress.emit()
            if self._gate.halted and not last:
                raise _Halted

        try:
            # Sent again after a network outage or a new login: from the first day not yet
            # written, so what was committed is not asked again.
            await self._gate.request(
                lambda: fetch_window(
                    self._client,
                    task.expired_key,
                    task.interval,
                    got.cursor or task.from_date,
                    task.to_date,
                    self._policy,
                    raw=self._row_ingest,
                    on_subwindow=commit,
                ),
                answered=False,
            )
        except (BadInputError, ServerError, UpstoxError) as exc:
            if isinstance(exc, AuthError | PlanRequiredError):
                raise
            text = getattr(exc, "message", str(exc))
            await self._db.run(
                self._db.mark_window_failed,
                task.contract_id,
                task.interval,
                got.cursor or task.from_date,
                task.to_date,
                text,
                job_id=self._job_id,
                claim=(task.from_date, task.to_date),
            )
            self._progress.count(windows_failed=1)
            self._progress.fail_item(f"{what}: {text}")
            return
        self._progress.done += 1
        self._progress.count(
            windows_fetched=1 if got.candles else 0,
            windows_empty=0 if got.candles else 1,
            windows_refetched=1 if got.overlapped else 0,
        )
        self._progress.emit()
        await self._progress.persist()

    def _write_sub(self, task: WindowTask, sub: SubWindow, last: bool) -> StoredWindow:
        """On the writer thread: one sub-window (candles + done mark, + the window's claim
        dropped if ``last``), then any learned cap. ValueError: a candle could not be stored;
        nothing was written."""
        args = (task.contract_id, task.interval, sub.from_date, sub.to_date)
        claim = (task.from_date, task.to_date) if last else None
        if sub.rows is not None:
            stored = self._db.store_window_rows(*args, sub.rows, job_id=self._job_id, claim=claim)
        else:
            stored = self._db.store_window(*args, sub.candles, job_id=self._job_id, claim=claim)
        self._saver.save_learned()
        return stored

    async def mark_complete_expiries(self) -> None:
        """``expiry.data_fetched`` = planning again (all contract types) finds nothing to fetch.

        Cleared again when a wider history window is asked later and not yet covered.
        """
        sel = self._selection
        every_type = Selection(sel.underlyings, sel.expiries, sel.interval, sel.months)
        span = self._span()
        for key in sel.underlyings:
            known = await self._db.run(self._db.known_expiries, key)
            for d, fetched, _ in known:
                if sel.expiries is not None and d not in sel.expiries:
                    continue
                if not fetched:
                    continue
                plan = await self._db.run(plan_expiry, self._db, key, d, every_type, span)
                if plan.expiry_id is not None:
                    await self._db.run(self._db.set_data_fetched, plan.expiry_id, not plan.tasks)
