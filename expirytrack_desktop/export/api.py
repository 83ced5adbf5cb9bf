"""The export engine's public surface, in one import for the window and the CLI.

    from expirytrack_desktop.export.api import ExportOptions, run_export, ...

Everything here is Qt-free and blocking; the window calls ``run_export`` in a worker thread
(``loop.run_in_executor``) and adapts ``progress`` callbacks to signals.
"""

from expirytrack_desktop.export.errors import (
    DatabaseError,
    DiskFullError,
    EmptySelectionError,
    ExportCancelled,
    ExportError,
    InvalidOptionsError,
    NoDataError,
    OutputExistsError,
    UnknownInstrumentError,
    UnwritableOutputError,
)
from expirytrack_desktop.export.history import ExportHistoryEntry, list_export_history
from expirytrack_desktop.export.options import FORMATS, ExportOptions, default_filename
from expirytrack_desktop.export.progress import ExportPreview, ExportProgress, ExportResult
from expirytrack_desktop.export.query import (
    ExpiryInfo,
    UnderlyingInfo,
    available_expiries,
    available_underlyings,
    count_rows,
    preview,
    resolve_underlyings,
)
from expirytrack_desktop.export.runner import run_export

__all__ = [
    "FORMATS",
    "DatabaseError",
    "DiskFullError",
    "EmptySelectionError",
    "ExpiryInfo",
    "ExportCancelled",
    "ExportError",
    "ExportHistoryEntry",
    "ExportOptions",
    "ExportPreview",
    "ExportProgress",
    "ExportResult",
    "InvalidOptionsError",
    "NoDataError",
    "OutputExistsError",
    "UnderlyingInfo",
    "UnknownInstrumentError",
    "UnwritableOutputError",
    "available_expiries",
    "available_underlyings",
    "count_rows",
    "default_filename",
    "list_export_history",
    "preview",
    "resolve_underlyings",
    "run_export",
]
