"""The candle endpoint's span cap, learned by runs and kept in the database's ``kv`` table."""

from __future__ import annotations

from expirytrack_desktop.store import Database
from expirytrack_desktop.upstox.span import SpanPolicy, planning_cap


class SpanCaps:
    """One span policy for all jobs of a collector; caps it learns are saved by the job that
    writes next (on the writer thread, :meth:`save_learned`)."""

    def __init__(self, db: Database, policy: SpanPolicy | None = None) -> None:
        self._db = db
        self._policy = policy
        self._learned: dict[str, int] = {}
        self._proven: dict[str, int] = {}

    async def policy(self) -> SpanPolicy:
        """The policy; created on first use from the caps stored (span_cap_days:<iv>)."""
        if self._policy is None:
            caps = await self._db.run(self._db.span_caps)
            self._policy = SpanPolicy(
                initial_caps=caps, on_learn=self._on_learn, on_confirm=self._on_confirm
            )
        return self._policy

    async def known(self, interval: str) -> bool:
        """Whether the cap for ``interval`` was learned (else it is an assumption)."""
        return interval in (await self._db.run(self._db.span_caps))

    async def planning_span(self, interval: str) -> int:
        """Days per request an estimate plans with: the learned cap; before one is learned,
        the usual one-month cap (:func:`planning_cap`) or the widest span the API has
        already accepted, whichever is wider (never above what the run asks for)."""
        cap = (await self.policy()).cap_days(interval)
        if await self.known(interval):
            return cap
        stored = await self._db.run(self._db.span_proven)
        proven = max(stored.get(interval, 0), self._proven.get(interval, 0))
        return min(cap, max(planning_cap(interval), proven))

    def _on_learn(self, interval: str, days: int) -> None:
        self._learned[interval] = days  # persisted by the next worker write (off the loop)

    def _on_confirm(self, interval: str, days: int) -> None:
        self._proven[interval] = max(days, self._proven.get(interval, 0))  # saved like learned

    def learned(self) -> dict[str, int]:
        return dict(self._learned)

    def proven(self) -> dict[str, int]:
        return dict(self._proven)


class CapSaver:
    """Per job, on the writer thread: save caps learned since this job last saved."""

    def __init__(self, db: Database, caps: SpanCaps) -> None:
        self._db = db
        self._caps = caps
        self._saved: dict[str, int] = {}
        self._saved_proven: dict[str, int] = {}

    def save_learned(self) -> None:
        learned, proven = self._caps.learned(), self._caps.proven()
        if learned != self._saved:  # the usual case: nothing new, no query
            self._saved = dict(learned)
            stored = self._db.span_caps()
            for interval, days in learned.items():
                if stored.get(interval) != days:
                    self._db.set_span_cap(interval, days)
        if proven != self._saved_proven:
            self._saved_proven = dict(proven)
            was = self._db.span_proven()
            for interval, days in proven.items():
                if days > was.get(interval, 0):
                    self._db.set_span_proven(interval, days)
