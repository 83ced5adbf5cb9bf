"""Documented exit codes of the ``expirytrack`` command (also listed in the README).

They live with the stop reasons in the engine (:mod:`expirytrack_desktop.collect.exit_codes`),
which scheduled runs use too; this module re-exports them for the command modules.
"""

from expirytrack_desktop.collect.exit_codes import (
    BAD_INPUT,
    CANCELLED,
    ERROR,
    FAILED_ITEMS,
    FOR_STOP_REASON,
    NEEDS_LOGIN,
    NETWORK,
    OK,
    STORAGE,
    exit_code,
)

__all__ = [
    "BAD_INPUT",
    "CANCELLED",
    "ERROR",
    "FAILED_ITEMS",
    "FOR_STOP_REASON",
    "NEEDS_LOGIN",
    "NETWORK",
    "OK",
    "STORAGE",
    "exit_code",
]
