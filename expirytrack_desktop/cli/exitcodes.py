"""Documented exit codes of the ``expirytrack`` command (also listed in the README)."""

OK = 0  # everything asked for is complete
ERROR = 1  # unexpected internal error (a bug: please report it)
BAD_INPUT = 2  # bad arguments or input: unknown key, bad date, invalid rate-limit spec, ...
NEEDS_LOGIN = 3  # no token, or the token expired / was rejected: run `expirytrack login`
FAILED_ITEMS = 4  # finished, but some items failed (retry with the same command)
STORAGE = 5  # database or output file unusable: locked, corrupt, unwritable, disk full
NETWORK = 6  # the API could not be reached at all
CANCELLED = 130  # interrupted by the user (Ctrl+C); progress is kept

# Exit code for each way a collection run can end (collect.events.StopReason values), shared by
# `expirytrack collect` and scheduled runs.
FOR_STOP_REASON: dict[str, int] = {
    "ok": OK,
    "failed_items": FAILED_ITEMS,
    "needs_login": NEEDS_LOGIN,
    "plan_required": NEEDS_LOGIN,  # no Upstox Plus: the user must act on the account
    "bad_input": BAD_INPUT,
    "storage": STORAGE,
    "network": NETWORK,
    "cancelled": CANCELLED,
}
