"""Export failures, each with a one-line message fit for a dialog or a terminal.

Every failure leaves nothing behind under the final name (see :mod:`.atomic`).
"""

from __future__ import annotations


class ExportError(Exception):
    """Base class: ``str(exc)`` is a one-line message for the user."""


class EmptySelectionError(ExportError):
    """The options select nothing (no instrument, no expiry, no contract type, no contract)."""


class UnknownInstrumentError(ExportError):
    """An instrument key or symbol that the database does not hold."""


class NoDataError(ExportError):
    """The selected contracts have no candles in the chosen interval and time range."""


class InvalidOptionsError(ExportError):
    """Contradictory or malformed options (bad format, from after to, negative days, ...)."""


class OutputExistsError(ExportError):
    """The target exists: ``replaceable`` when overwriting would replace it (``overwrite`` was
    not given), else it is something an export never replaces (a FIFO, a device, a folder
    where a file goes). ``what`` is the message without the generic advice, for a caller
    that names its own way to overwrite (the CLI's ``--overwrite``)."""

    def __init__(self, what: str, *, replaceable: bool = False) -> None:
        super().__init__(f"{what} (choose another name or overwrite)" if replaceable else what)
        self.what, self.replaceable = what, replaceable


class UnwritableOutputError(ExportError):
    """The target folder cannot be created or written (permissions, read-only medium)."""


class DiskFullError(ExportError):
    """The disk filled up while writing; the partial file was removed."""


class ExportCancelled(ExportError):
    """The user cancelled; the partial file was removed."""


class DatabaseError(ExportError):
    """The database cannot be opened or read (missing, locked, corrupt)."""


class DatabaseMissingError(DatabaseError):
    """There is no database file at the path given (nothing collected yet, or a wrong
    ``--db``): bad input for the CLI, like every other command that reads one."""
