"""SQLite storage: compact tables underneath, the product document's names as views on top.

Public API: :func:`open_database` -> :class:`Database` (repository methods, ``await db.run``),
the row dataclasses, and the :class:`StoreError` family.
"""

from expirytrack_desktop.store.database import (
    JOB_STATUSES,
    ContractRow,
    Counts,
    Database,
    ExpiryCoverage,
    JobRecord,
    StoredWindow,
    WindowRow,
    interval_minutes,
    interval_name,
    latest_version,
    open_database,
)
from expirytrack_desktop.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreMissingError,
    StoreUnwritableError,
    StoreVersionError,
)

__all__ = [
    "JOB_STATUSES",
    "ContractRow",
    "Counts",
    "Database",
    "ExpiryCoverage",
    "JobRecord",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreLockedError",
    "StoreMissingError",
    "StoreUnwritableError",
    "StoreVersionError",
    "StoredWindow",
    "WindowRow",
    "interval_minutes",
    "interval_name",
    "latest_version",
    "open_database",
]
