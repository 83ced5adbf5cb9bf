"""Progress and result values the export engine hands to the window and the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class ExportProgress:
    """One progress report; ``phase`` is "counting", "writing" or "finishing".

    Reported at most once per chunk (tens of thousands of rows) and per contract, so a UI
    may forward each report as a signal without flooding the event loop.
    """

    phase: str
    rows_done: int
    rows_total: int
    contracts_done: int
    contracts_total: int
    current: str = ""  # OpenAlgo symbol being written

    @property
    def fraction(self) -> float:
        """0.0 .. 1.0 for a progress bar."""
        if self.phase == "finishing":
            return 1.0
        return self.rows_done / self.rows_total if self.rows_total else 0.0


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A completed export: the final path (file or folder), rows, bytes on disk, file count."""

    path: Path
    rows: int
    bytes: int
    files: int


@dataclass(frozen=True, slots=True)
class ExportPreview:
    """What the review page shows before exporting (see ``query.preview``)."""

    contracts: int
    empty_contracts: int  # contracts without a candle in the range
    rows: int
    first_ts: int | None  # epoch seconds of the first / last candle
    last_ts: int | None
    sample: tuple[tuple[object, ...], ...]  # first rows, one value per ``sample_columns``
    sample_columns: tuple[str, ...] = ()  # the export's columns (query.preview)
