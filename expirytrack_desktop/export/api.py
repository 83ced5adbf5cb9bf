"""The export engine's public surface, in one import for the window and the CLI.

    from expirytrack_desktop.export.api import ExportOptions, run_export, ...

Everything here is Qt-free and blocking; the window calls ``run_export`` in a worker thread
(``loop.run_in_executor``) and adapts ``progress`` callbacks to signals.
"""

from expirytrack_desktop.export.errors import (
    DatabaseError,
    DatabaseMissingError,
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
    SymbolMatch,
    UnderlyingInfo,
    available_expiries,
    available_underlyings,
    count_rows,
    find_contracts,
    preview,
    resolve_underlyings,
)
from expirytrack_desktop.export.runner import run_export
from expirytrack_desktop.export.symbols import (
    OpenAlgoSymbol,
    openalgo_for_contract,
    openalgo_symbol,
    parse_openalgo_symbol,
)

__all__ = [
    "FORMATS",
    "DatabaseError",
    "DatabaseMissingError",
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
    "OpenAlgoSymbol",
    "OutputExistsError",
    "SymbolMatch",
    "UnderlyingInfo",
    "UnknownInstrumentError",
    "UnwritableOutputError",
    "available_expiries",
    "available_underlyings",
    "count_rows",
    "default_filename",
    "find_contracts",
    "list_export_history",
    "openalgo_for_contract",
    "openalgo_symbol",
    "parse_openalgo_symbol",
    "preview",
    "resolve_underlyings",
    "run_export",
]
