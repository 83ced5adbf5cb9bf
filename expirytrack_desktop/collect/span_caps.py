"""The candle endpoint's span cap, learned by runs and kept in the database's ``kv`` table."""

from __future__ import annotations

from expirytrack_desktop.store import Database
from expirytrack_desktop.upstox.span import SpanPolicy


class SpanCaps:
    """One span policy for all jobs of a collector; caps it learns are saved by the job that
    writes next (on the writer thread, :meth:`save_learned`)."""

    def __init__(self, db: Database, policy: SpanPolicy | None = None) -> None:
        self._db = db
        self._policy = policy
        self._learned: dict[str, int] = {}

    async def policy(self) -> SpanPolicy:
        """The policy; created on first use from the caps stored (span_cap_days:<iv>)."""
        if self._policy is None:
            caps = await self._db.run(self._db.span_caps)
            self._policy = SpanPolicy(initial_caps=caps, on_learn=self._on_learn)
        return self._policy

    async def known(self, interval: str) -> bool:
        """Whether the cap for ``interval`` was learned (else it is an assumption)."""
        return interval in (await self._db.run(self._db.span_caps))

    def _on_learn(self, interval: str, days: int) -> None:
        self._learned[interval] = days  # persisted by the next worker write (off the loop)

    def learned(self) -> dict[str, int]:
        return dict(self._learned)


class CapSaver:
    """Per job, on the writer thread: save caps learned since this job last saved."""

    def __init__(self, db: Database, caps: SpanCaps) -> None:
        self._db = db
        self._caps = caps
        self._saved: dict[str, int] = {}

    def save_learned(self) -> None:
        learned = self._caps.learned()
        if learned == self._saved:  # the usual case: nothing new, no query
            return
        self._saved = dict(learned)
        stored = self._db.span_caps()
        for interval, days in learned.items():
            if stored.get(interval) != days:
                self._db.set_span_cap(interval, days)
