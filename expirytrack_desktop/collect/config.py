"""A job's run configuration, fixed when the job starts.

The collector keeps the defaults; each job gets its own frozen copy (with the concurrency the
caller chose for it), so starting another job or an estimate never changes a running one.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from expirytrack_desktop.store.database import HEARTBEAT_INTERVAL
from expirytrack_desktop.upstox.models import Contract


def openalgo_symbol(contract: Contract) -> str | None:
    """The OpenAlgo symbol of a contract, None when it has none (imported lazily: export/)."""
    try:
        from expirytrack_desktop.export.symbols import openalgo_for_contract

        return openalgo_for_contract(contract)
    except (ImportError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class RunConfig:
    """How one job runs.

    ``clock``: monotonic seconds for rate/ETA/throttling; ``progress_interval`` and
    ``persist_interval``: the least seconds between progress callbacks / job-row writes;
    ``network_failure_threshold``: consecutive transport failures that mean "network down"
    (None: ``max(6, 2 * concurrency)``); ``claim_poll``: seconds between looks at windows another
    live job is fetching; ``drain_timeout``: after a stop, the longest wait for requests already
    sent so their answers are committed; ``pid``: recorded on the job row.

    Long runs (README "Long runs"): ``network_wait``: seconds a run waits for the network
    after the API stopped answering, probing every ``probe_first`` .. ``probe_max`` seconds,
    before it stops as "network" (``None``: for ever; 0: stop at once, the old way);
    ``token_source``: where a new token comes from after the token was rejected (polled every
    ``token_poll`` s, at most ``login_wait`` s, ``None``: for ever); without one an expired
    token stops the run as "needs login". ``how_to_login``: the hint shown while waiting;
    ``wall``: local wall time for "since HH:MM".
    """

    concurrency: int = 8
    clock: Callable[[], float] = time.monotonic
    progress_interval: float = 0.1
    persist_interval: float = 2.0
    heartbeat_interval: float = HEARTBEAT_INTERVAL
    network_failure_threshold: int | None = None
    claim_poll: float = 2.0
    drain_timeout: float = 5.0
    pid: int = field(default_factory=os.getpid)
    openalgo: Callable[[Contract], str | None] = openalgo_symbol
    network_wait: float | None = 0.0
    probe_first: float = 1.0
    probe_max: float = 60.0
    token_source: Callable[[], str | None] | None = None
    login_wait: float | None = None
    token_poll: float = 2.0
    how_to_login: str = "log in again"
    wall: Callable[[], datetime] = datetime.now

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        for name in ("network_wait", "login_wait"):
            value = getattr(self, name)
            if value is not None and not value >= 0:
                raise ValueError(f"{name} must be >= 0 seconds or None (for ever)")

    @property
    def net_failure_limit(self) -> int:
        """Consecutive transport failures after which the run stops as "network"."""
        return self.network_failure_threshold or max(6, 2 * self.concurrency)

    def with_concurrency(self, concurrency: int | None) -> RunConfig:
        """This configuration, with ``concurrency`` when one is given."""
        return self if concurrency is None else replace(self, concurrency=concurrency)
