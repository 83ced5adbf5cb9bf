"""Rows returned to callers (plain frozen dataclasses: safe to hand to another thread / the UI)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from expirytrack_desktop.store.coverage import DateRange


@dataclass(frozen=True, slots=True)
class ContractRow:
    id: int
    expired_key: str
    underlying_key: str
    expiry_date: date
    contract_type: str
    strike_price: float | None
    trading_symbol: str | None
    openalgo_symbol: str | None


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One ``fetch_window`` row: what was asked of the API for a contract and how it went."""

    contract_id: int
    interval: int
    from_date: date
    to_date: date
    state: str  # 'fetched' | 'empty' | 'failed'
    candles: int
    attempts: int
    error: str | None
    job_id: int | None

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> WindowRow:
        """From ``contract_id, interval, from_date, to_date, state, candles, attempts, error,
        job_id`` as selected from ``fetch_window``."""
        return cls(r[0], r[1], date.fromisoformat(r[2]), date.fromisoformat(r[3]), *r[4:9])


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """Result of :meth:`Database.store_window`."""

    candles: int
    overlapped: bool  # True if part of this range was already covered (a re-fetch)


@dataclass(frozen=True, slots=True)
class ExpiryCoverage:
    """Coverage of one underlying × expiry for one interval (status command, UI dashboard).

    ``state``: 'complete' (every contract's target window fetched, no failures), 'partial'
    (some covered, some not yet), 'failed' (some windows failed and are not covered since),
    'no_data' (nothing fetched yet; also when contracts are not known yet).
    ``contracts_no_trades`` counts contracts whose covered windows were all empty.
    """

    instrument_key: str
    symbol: str | None
    expiry_date: date
    is_weekly: bool | None
    interval: str
    contracts_fetched: bool
    contracts: int
    contracts_complete: int
    contracts_no_trades: int
    failed_windows: int
    candles: int
    target: DateRange | None
    state: str


@dataclass(frozen=True, slots=True)
class Counts:
    underlyings: int
    expiries: int
    contracts: int
    candles: int  # sum of stored window counts (exact for planner-made windows; no table scan)
    db_bytes: int


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    job_type: str
    status: str
    params: dict[str, Any]
    underlyings: str | None
    expiries: str | None
    total_items: int
    done_items: int
    failed_items: int
    requests: int
    candles: int
    error_message: str | None
    retry_count: int
    pid: int | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    heartbeat_at: str | None

    @property
    def resumable(self) -> bool:
        return self.status in ("paused", "needs_login", "interrupted", "failed", "cancelled")
