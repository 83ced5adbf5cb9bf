"""What the engine tells its callers: plain frozen dataclasses, no Qt.

The UI adapts :class:`Progress` to a Qt signal; the CLI prints it. Progress callbacks are called
on the event loop's thread, at most every ``progress_interval`` (default 0.1 s) plus once per
state change, so a consumer never needs its own throttle.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum


class JobState(StrEnum):
    """Persisted in ``job.status``; values equal the strings the ``job_status`` view shows."""

    PENDING = "pending"
    RUNNING = "running"
    PAUSED = "paused"
    NEEDS_LOGIN = "needs_login"  # token rejected: progress kept, rerun after logging in
    COMPLETED = "completed"  # everything asked for is stored
    FAILED = "failed"  # finished with failed items, or stopped by storage/network/plan trouble
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"  # its process died; resumable


TERMINAL_STATES = frozenset(
    {
        JobState.NEEDS_LOGIN,
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.INTERRUPTED,
    }
)


class Phase(StrEnum):
    DISCOVERY = "discovery"  # expiry lists
    CONTRACTS = "contracts"  # option + future contract lists per expiry
    CANDLES = "candles"  # candle windows
    DONE = "done"


class StopReason(StrEnum):
    """Why a run ended; the CLI maps it to an exit code."""

    OK = "ok"
    FAILED_ITEMS = "failed_items"
    NEEDS_LOGIN = "needs_login"
    BAD_INPUT = "bad_input"  # unknown instrument, expiry not offered
    PLAN_REQUIRED = "plan_required"  # Upstox Plus needed
    STORAGE = "storage"  # disk full, database locked, ...
    NETWORK = "network"  # API unreachable
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of one job. ``items`` = contract lists + candle windows to fetch."""

    job_id: int
    state: JobState
    phase: Phase
    items_total: int
    items_done: int
    items_failed: int
    requests: int  # HTTP requests made by this run (retries included)
    candles: int  # candles stored by this run
    rate: float  # requests per second, recent
    eta_seconds: float | None  # None while unknown
    current: str  # e.g. "NIFTY 2025-04-24 NIFTY24APR2522000CE 2025-01-24..2025-04-24"
    errors: int
    last_error: str | None
    elapsed: float = 0.0
    # While the run waits instead of stopping (README "Long runs"): "network" or "login",
    # and the line to show, e.g. "waiting for the network since 14:02, next try in 8 s".
    waiting_for: str | None = None
    waiting: str | None = None
    # While the rate limiter holds the run back for budget: when it expects to send again
    # (epoch seconds on the limiter's clock), else None.
    budget_until: float | None = None

    @property
    def fraction(self) -> float:
        return (self.items_done + self.items_failed) / self.items_total if self.items_total else 0.0


@dataclass(frozen=True, slots=True)
class LateExpiry:
    """An expiry the plan would finish only after it vanishes from Upstox."""

    instrument_key: str
    name: str
    expiry: date
    vanishes: date  # the first day it can no longer be fetched
    reaches: date  # the day the plan would fetch its last window (IST)

    def describe(self) -> str:
        return (
            f"{self.name} {self.expiry.isoformat()}: vanishes {self.vanishes.isoformat()}, "
            f"this plan reaches it about {self.reaches.isoformat()} — collect it on its own "
            "first / narrow the selection"
        )


@dataclass(frozen=True, slots=True)
class Estimate:
    """Cost of a selection before running it, at the configured rate limits.

    ``is_estimate`` is True when some expiries' contracts are not known yet (their counts are
    typical values) or the span cap of the candle endpoint is still a guess.
    """

    underlyings: int
    expiries: int
    contracts: int
    windows: int  # candle windows still missing
    requests: int  # discovery + contract lists + candle requests
    seconds: float
    is_estimate: bool
    notes: tuple[str, ...] = ()
    late: tuple[LateExpiry, ...] = ()  # expiries this plan would reach after they vanish

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per expiry the plan would lose: shown before a run starts."""
        return tuple(x.describe() for x in self.late)


@dataclass(frozen=True, slots=True)
class Counters:
    """Deterministic per-run counters (benchmarks and tests assert on them)."""

    requests: int = 0
    expiry_requests: int = 0
    contract_requests: int = 0
    candle_requests: int = 0  # as counted by fetch_window (rejected spans included)
    windows_planned: int = 0
    windows_fetched: int = 0
    windows_empty: int = 0
    windows_failed: int = 0
    windows_refetched: int = 0  # written windows that overlapped an already covered range
    spans_rejected: int = 0
    candles: int = 0


@dataclass(frozen=True, slots=True)
class JobResult:
    job_id: int
    state: JobState
    reason: StopReason
    counters: Counters
    message: str | None = None  # one line for the user when reason is not OK
    errors: tuple[str, ...] = field(default=())  # item errors (bounded)
    notes: tuple[str, ...] = field(default=())  # worth knowing, not errors (also in the job log)
