"""The collection engine (no Qt): selection → plan → run → write, as persisted jobs.

Public API: :class:`Collector` (``estimate``, ``start``, ``run``, ``resume``, ``retry_failed``),
:class:`CollectJob` (``pause``/``resume``/``cancel``/``wait``), :class:`RunConfig`,
:class:`Selection`, the event dataclasses, the planners, the exit code of each stop reason and
the instrument symbol table.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Imported on first use (PEP 562): importing one submodule (the CLI's exit codes, the events)
# runs this file, and the collector's imports (the store, the HTTP client) would slow every
# command's start-up.
_LAZY = {
    "Collector": "expirytrack_desktop.collect.collector",
    "RunConfig": "expirytrack_desktop.collect.config",
    "TERMINAL_STATES": "expirytrack_desktop.collect.events",
    "Counters": "expirytrack_desktop.collect.events",
    "Estimate": "expirytrack_desktop.collect.events",
    "JobResult": "expirytrack_desktop.collect.events",
    "JobState": "expirytrack_desktop.collect.events",
    "Phase": "expirytrack_desktop.collect.events",
    "Progress": "expirytrack_desktop.collect.events",
    "StopReason": "expirytrack_desktop.collect.events",
    "exit_code": "expirytrack_desktop.collect.exit_codes",
    "KNOWN_UNDERLYINGS": "expirytrack_desktop.collect.instruments",
    "InstrumentError": "expirytrack_desktop.collect.instruments",
    "display_name": "expirytrack_desktop.collect.instruments",
    "resolve_instrument": "expirytrack_desktop.collect.instruments",
    "symbol_for_key": "expirytrack_desktop.collect.instruments",
    "CollectJob": "expirytrack_desktop.collect.job",
    "ContractTarget": "expirytrack_desktop.collect.plan",
    "WindowTask": "expirytrack_desktop.collect.plan",
    "deadline_first": "expirytrack_desktop.collect.plan",
    "plan_windows": "expirytrack_desktop.collect.plan",
    "target_range": "expirytrack_desktop.collect.plan",
    "ProgressCallback": "expirytrack_desktop.collect.progress",
    "Selection": "expirytrack_desktop.collect.selection",
    "SelectionError": "expirytrack_desktop.collect.selection",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
