"""The collection engine (no Qt): selection → plan → run → write, as persisted jobs.

Public API: :class:`Collector` (``estimate``, ``start``, ``run``, ``resume``, ``retry_failed``),
:class:`CollectJob` (``pause``/``resume``/``cancel``/``wait``), :class:`RunConfig`,
:class:`Selection`, the event dataclasses, the planners, the exit code of each stop reason and
the instrument symbol table.
"""

from expirytrack_desktop.collect.collector import Collector
from expirytrack_desktop.collect.config import RunConfig
from expirytrack_desktop.collect.events import (
    TERMINAL_STATES,
    Counters,
    Estimate,
    JobResult,
    JobState,
    Phase,
    Progress,
    StopReason,
)
from expirytrack_desktop.collect.exit_codes import exit_code
from expirytrack_desktop.collect.instruments import (
    KNOWN_UNDERLYINGS,
    InstrumentError,
    display_name,
    resolve_instrument,
    symbol_for_key,
)
from expirytrack_desktop.collect.job import CollectJob
from expirytrack_desktop.collect.plan import (
    ContractTarget,
    WindowTask,
    deadline_first,
    plan_windows,
    target_range,
)
from expirytrack_desktop.collect.progress import ProgressCallback
from expirytrack_desktop.collect.selection import Selection, SelectionError

__all__ = [
    "KNOWN_UNDERLYINGS",
    "TERMINAL_STATES",
    "CollectJob",
    "Collector",
    "ContractTarget",
    "Counters",
    "Estimate",
    "InstrumentError",
    "JobResult",
    "JobState",
    "Phase",
    "Progress",
    "ProgressCallback",
    "RunConfig",
    "Selection",
    "SelectionError",
    "StopReason",
    "WindowTask",
    "deadline_first",
    "display_name",
    "exit_code",
    "plan_windows",
    "resolve_instrument",
    "symbol_for_key",
    "target_range",
]
