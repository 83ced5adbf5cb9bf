"""Documented exit codes of the ``expirytrack`` command (also listed in the README)."""

OK = 0  # everything asked for is complete
ERROR = 1  # unexpected internal error (a bug: please report it)
BAD_INPUT = 2  # bad arguments or input: unknown key, bad date, invalid rate-limit spec, ...
NEEDS_LOGIN = 3  # no token, or the token expired / was rejected: run `expirytrack login`
FAILED_ITEMS = 4  # finished, but some items failed (retry with the same command)
STORAGE = 5  # database or output file unusable: locked, corrupt, unwritable, disk full
NETWORK = 6  # the API could not be reached at all
CANCELLED = 130  # interrupted by the user (Ctrl+C); progress is kept
