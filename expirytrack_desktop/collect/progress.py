"""Progress of a run: counters, errors kept, rate/ETA snapshots for observers, persisted totals."""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from expirytrack_desktop.collect.events import Counters, JobState, Phase, Progress
from expirytrack_desktop.store import Database

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]
MAX_KEPT_ERRORS = 50
MAX_NOTES = 50


class JobProgress:
    """What one run has done and tells: counters, items, errors, notes, state and phase.

    ``requests_sent``: the client's request counter; ``others_running``: whether another job
    shares that client now (then only this job's own logical requests are attributable).
    ``requests_before``: the counter's value this job's requests count from.
    """

    def __init__(
        self,
        job_id: int,
        db: Database,
        *,
        clock: Callable[[], float],
        progress_interval: float,
        persist_interval: float,
        requests_sent: Callable[[], int],
        others_running: Callable[[], bool],
        requests_before: int,
        on_progress: ProgressCallback | None,
        limiter: Any = None,
    ) -> None:
        self.job_id = job_id
        self._db = db
        self._clock = clock
        self._progress_interval = progress_interval
        self._persist_interval = persist_interval
        self._requests_sent = requests_sent
        self._others_running = others_running
        self._requests0 = requests_before
        self._on_progress = on_progress
        self._limiter = limiter  # for the budget wait and the ETA the rate limits allow
        self.state = JobState.PENDING
        self.phase = Phase.DISCOVERY
        self.current = ""  # what the run is doing now (progress text)
        self.waiting_for: str | None = None  # "network" / "login" while the run waits
        self.waiting: str | None = None
        self.total = self.done = self.failed = 0
        self.counters = Counters()
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.error_count = 0
        self.last_error: str | None = None
        self.last_progress: Progress | None = None
        self._shared_client = False
        self._t0 = clock()
        self._last_emit = float("-inf")
        self._last_persist = float("-inf")
        self._rate_samples: collections.deque[tuple[float, int, int]] = collections.deque(maxlen=64)
        # what earlier runs of this job did: a resumed job keeps its history and totals
        self._before_requests = self._before_candles = self._before_done = 0

    def carry(self, requests: int, candles: int, done: int) -> None:
        """Count on from an earlier run's totals (the job's row, read when a run starts)."""
        self._before_requests, self._before_candles, self._before_done = requests, candles, done

    def requests(self) -> int:
        """HTTP requests of this job. Exact (retries included, from the client's counter) while
        it is the only job on its client; with concurrent jobs, the job's own logical requests
        (retries not attributable)."""
        if not self._shared_client:
            self._shared_client = self._others_running()
        if self._shared_client:
            c = self.counters
            return c.expiry_requests + c.contract_requests + c.candle_requests
        return self._requests_sent() - self._requests0

    def snapshot(self) -> Progress:
        now = self._clock()
        req = self.requests()
        self._rate_samples.append((now, req, self.done + self.failed))
        t_old, r_old, i_old = self._rate_samples[0]
        span = now - t_old
        rate = (
            (req - r_old) / span
            if span > 0.5
            else (req / (now - self._t0) if now > self._t0 else 0.0)
        )
        items_rate = (self.done + self.failed - i_old) / span if span > 0.5 else 0.0
        remaining = max(0, self.total - self.done - self.failed)
        eta = None
        if remaining == 0 and self.phase == Phase.CANDLES:
            eta = 0.0
        elif items_rate > 0 and self.phase == Phase.CANDLES:
            eta = remaining / items_rate
        until, paced = self._limits(remaining)
        if paced is not None and self.phase == Phase.CANDLES and remaining:
            eta = max(eta or 0.0, paced)
        return Progress(
            job_id=self.job_id,
            state=self.state,
            phase=self.phase,
            items_total=self._before_done + self.total,
            items_done=self._before_done + self.done,
            items_failed=self.failed,
            requests=self._before_requests + req,
            candles=self._before_candles + self.counters.candles,
            rate=rate,
            eta_seconds=eta,
            current=self.current,
            errors=self.error_count,
            last_error=self.last_error,
            elapsed=now - self._t0,
            waiting_for=self.waiting_for,
            waiting=self.waiting,
            budget_until=until,
        )

    def _limits(self, remaining: int) -> tuple[float | None, float | None]:
        """``(budget_until, paced)``: when the limiter expects to send again if it is holding
        the run back now, and the least time the rate limits allow for ``remaining`` items
        (about a request each) — the recent rate alone says minutes while a 30-minute budget
        is spent and the next one hours away."""
        lim = self._limiter
        windows = getattr(getattr(lim, "spec", None), "windows", None)
        if lim is None or not windows:
            return None, None
        until = getattr(lim, "waiting_until", None)
        wait = 0.0
        if until is not None:
            wait = max(0.0, float(until) - float(lim.clock()))
            if wait <= 0:
                until = None
        paced = max(((remaining - 1) // limit * seconds for limit, seconds in windows), default=0.0)
        return until, wait + paced if remaining > 0 else wait

    def emit(self, force: bool = False) -> None:
        """Tell the observer, at most every ``progress_interval`` unless ``force``."""
        now = self._clock()
        if not force and now - self._last_emit < self._progress_interval:
            return
        self._last_emit = now
        self.last_progress = self.snapshot()
        if self._on_progress is not None:
            try:
                self._on_progress(self.last_progress)
            except Exception:  # a broken observer must not break the collection
                log.exception("progress callback failed")

    def doing(self, what: str) -> None:
        """The run is now doing ``what`` (shown as the progress's current item)."""
        self.current = what
        self.emit()

    def error(self, text: str) -> None:
        self.error_count += 1
        self.last_error = text
        if len(self.errors) < MAX_KEPT_ERRORS:
            self.errors.append(text)

    def fail_item(self, text: str) -> None:
        """One item failed with ``text`` (the run goes on)."""
        self.failed += 1
        self.error(text)
        self.emit()

    def note(self, text: str) -> bool:
        """Keep a note worth knowing (not an error); False if it was known or too many."""
        if text in self.notes or len(self.notes) >= MAX_NOTES:
            return False
        self.notes.append(text)
        return True

    def count(self, **delta: int) -> None:
        c = self.counters
        self.counters = replace(c, **{k: getattr(c, k) + v for k, v in delta.items()})

    def totals(self) -> Counters:
        return replace(self.counters, requests=self.requests())

    async def persist(self, force: bool = False, **extra: Any) -> None:
        """Write the totals to the job row, at most every ``persist_interval`` unless ``force``."""
        now = self._clock()
        if not force and now - self._last_persist < self._persist_interval:
            return
        self._last_persist = now
        await self._db.run(
            self._db.update_job,
            self.job_id,
            total_items=self._before_done + self.total,
            done_items=self._before_done + self.done,
            failed_items=self.failed,
            requests=self._before_requests + self.requests(),
            candles=self._before_candles + self.counters.candles,
            heartbeat_at=self._db.now_text(),
            **extra,
        )
