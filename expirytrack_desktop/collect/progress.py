"""Progress of a run: counters, errors kept, rate/ETA snapshots for observers, persisted totals."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from expirytrack_desktop.collect.events import Phase, Progress

log = logging.getLogger(__name__)

ProgressCallback = Callable[[Progress], None]
MAX_KEPT_ERRORS = 50


class ProgressReporting:
    """Counters, errors and progress of a run; a part of :class:`CollectJob` (uses its state)."""

    def _requests(self) -> int:
        """HTTP requests of this job. Exact (retries included, from the client's counter) while
        it is the only job on its client; with concurrent jobs, the job's own logical requests
        (retries not attributable)."""
        if not self._shared_client:
            others = self.collector.jobs.values()
            self._shared_client = any(j is not self and not j.done() for j in others)
        if self._shared_client:
            c = self._counters
            return c.expiry_requests + c.contract_requests + c.candle_requests
        return int(getattr(self.client, "requests_sent", 0)) - self._requests0

    def snapshot(self) -> Progress:
        now = self._clock()
        req = self._requests()
        self._rate_samples.append((now, req, self._done + self._failed))
        t_old, r_old, i_old = self._rate_samples[0]
        span = now - t_old
        rate = (
            (req - r_old) / span
            if span > 0.5
            else (req / (now - self._t0) if now > self._t0 else 0.0)
        )
        items_rate = (self._done + self._failed - i_old) / span if span > 0.5 else 0.0
        remaining = max(0, self._total - self._done - self._failed)
        eta = None
        if remaining == 0 and self._phase == Phase.CANDLES:
            eta = 0.0
        elif items_rate > 0 and self._phase == Phase.CANDLES:
            eta = remaining / items_rate
        return Progress(
            job_id=self.id,
            state=self._state,
            phase=self._phase,
            items_total=self._total,
            items_done=self._done,
            items_failed=self._failed,
            requests=req,
            candles=self._counters.candles,
            rate=rate,
            eta_seconds=eta,
            current=self._current,
            errors=self._error_count,
            last_error=self._last_error,
            elapsed=now - self._t0,
        )

    def _emit(self, force: bool = False) -> None:
        now = self._clock()
        if not force and now - self._last_emit < self.collector.progress_interval:
            return
        self._last_emit = now
        self.last_progress = self.snapshot()
        if self._on_progress is not None:
            try:
                self._on_progress(self.last_progress)
            except Exception:  # a broken observer must not break the collection
                log.exception("progress callback failed")

    def _error(self, text: str) -> None:
        self._error_count += 1
        self._last_error = text
        if len(self._errors) < MAX_KEPT_ERRORS:
            self._errors.append(text)

    def _count(self, **delta: int) -> None:
        c = self._counters
        self._counters = replace(c, **{k: getattr(c, k) + v for k, v in delta.items()})

    async def _persist(self, force: bool = False, **extra: Any) -> None:
        now = self._clock()
        if not force and now - self._last_persist < self.collector.persist_interval:
            return
        self._last_persist = now
        await self.db.run(
            self.db.update_job,
            self.id,
            total_items=self._total,
            done_items=self._done,
            failed_items=self._failed,
            requests=self._requests(),
            candles=self._counters.candles,
            heartbeat_at=self.db.now_text(),
            **extra,
        )
