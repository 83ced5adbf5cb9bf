"""Storage failures, one class per thing the user must do differently.

Every message is one line a user can act on; the CLI maps all of them to exit code STORAGE.
"""

from __future__ import annotations


class StoreError(Exception):
    """Base class: the database cannot be used as asked."""


class StoreUnwritableError(StoreError):
    """The file or its folder cannot be created or written (permissions, read-only media)."""


class StoreCorruptError(StoreError):
    """The file is not an SQLite database, or SQLite reports it damaged."""


class StoreLockedError(StoreError):
    """Another process holds the write lock longer than the busy timeout."""


class StoreFullError(StoreError):
    """SQLITE_FULL: the disk (or the configured page limit) is full; the transaction was undone."""


class StoreVersionError(StoreError):
    """The file was written by a newer ExpiryTrack; it is refused and left untouched."""


class StoreMissingError(StoreError):
    """``create=False`` and no database file exists at the path."""
