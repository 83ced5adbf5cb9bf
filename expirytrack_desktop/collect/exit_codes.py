"""Exit codes of a collection run, next to the stop reasons they stand for.

The command line (``cli/``) and scheduled runs (``schedule/``) both answer with these; the
README's "Exit codes" lists them.
"""

from __future__ import annotations

from expirytrack_desktop.collect.events import StopReason

OK = 0  # everything asked for is complete
ERROR = 1  # unexpected internal error (a bug: please report it)
BAD_INPUT = 2  # bad arguments or input: unknown key, bad date, invalid rate-limit spec, ...
NEEDS_LOGIN = 3  # no token, or the token expired / was rejected: run `expirytrack login`
FAILED_ITEMS = 4  # finished, but some items failed (retry with the same command)
STORAGE = 5  # database or output file unusable: locked, corrupt, unwritable, disk full
NETWORK = 6  # the API could not be reached at all
CANCELLED = 130  # interrupted by the user (Ctrl+C); progress is kept

# Exit code for each way a collection run can end.
FOR_STOP_REASON: dict[StopReason, int] = {
    StopReason.OK: OK,
    StopReason.FAILED_ITEMS: FAILED_ITEMS,
    StopReason.NEEDS_LOGIN: NEEDS_LOGIN,
    StopReason.PLAN_REQUIRED: NEEDS_LOGIN,  # no Upstox Plus: the user must act on the account
    StopReason.BAD_INPUT: BAD_INPUT,
    StopReason.STORAGE: STORAGE,
    StopReason.NETWORK: NETWORK,
    StopReason.CANCELLED: CANCELLED,
}


def exit_code(reason: StopReason | str) -> int:
    """The exit code for a run that ended with ``reason`` (a StopReason or its value)."""
    return FOR_STOP_REASON[StopReason(reason)]
