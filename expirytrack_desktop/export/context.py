"""What every format writer needs: rows, options, progress/cancel, how to open a file."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from expirytrack_desktop.export.arrow_read import (
    ArrowCandleSource,
    CandleGroup,
    Prepare,
    python_groups,
)
from expirytrack_desktop.export.candles import CandleReader
from expirytrack_desktop.export.errors import ExportCancelled
from expirytrack_desktop.export.options import ExportOptions
from expirytrack_desktop.export.progress import ExportProgress
from expirytrack_desktop.export.query import SelectedContract

if TYPE_CHECKING:
    from expirytrack_desktop.export.csv_fast import CsvFormatter

Opener = Callable[[Path], BinaryIO]


@dataclass(slots=True)
class Tracker:
    """Counts rows and contracts, reports progress, and stops the export on cancel."""

    rows_total: int
    contracts_total: int
    progress: Callable[[ExportProgress], None] | None = None
    cancel: threading.Event | None = None
    rows_done: int = 0
    contracts_done: int = 0

    def check(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise ExportCancelled("export cancelled; the partial file was removed")

    def report(self, phase: str = "writing", current: str = "") -> None:
        if self.progress is not None:
            self.progress(
                ExportProgress(
                    phase,
                    self.rows_done,
                    self.rows_total,
                    self.contracts_done,
                    self.contracts_total,
                    current,
                )
            )

    def add_rows(self, n: int, current: str) -> None:
        self.rows_done += n
        self.check()
        self.report(current=current)

    def add_group(self, rows: int, contracts: int, current: str) -> None:
        """A whole group of contracts written (the Arrow path)."""
        self.rows_done += rows
        self.contracts_done += contracts
        self.check()
        self.report(current=current)

    def contract_done(self, current: str) -> None:
        self.contracts_done += 1
        self.check()
        if self.contracts_done % 16 == 0 or self.contracts_done == self.contracts_total:
            self.report(current=current)


@dataclass(slots=True)
class WriteContext:
    reader: CandleReader
    options: ExportOptions
    tracker: Tracker
    open_file: Opener
    exported_at: datetime
    arrow: ArrowCandleSource | None = None  # the fast reader, when there is one
    csv_formatter: CsvFormatter | None = None  # kept between files (its memo tables)
    files: list[Path] = field(default_factory=list)  # every file written, for the result
    streams: list[Generator[CandleGroup, None, None]] = field(
        default_factory=list
    )  # see close_streams

    def open(self, path: Path) -> BinaryIO:
        self.files.append(path)
        return self.open_file(path)

    def groups(
        self, contracts: Sequence[SelectedContract], prepare: Prepare | None = None
    ) -> Generator[CandleGroup, None, None]:
        """Candles of ``contracts`` as Arrow groups, from the fast reader if there is one;
        ``group.prepared = prepare(group)`` on each (in the fast reader's threads). Kept
        until :meth:`close_streams`."""
        if self.arrow is not None:
            stream = self.arrow.groups(contracts, prepare)
        else:
            stream = python_groups(self.reader, contracts, self.reader.chunk_rows, prepare)
        self.streams.append(stream)
        return stream

    def close_streams(self) -> None:
        """Stop the reader threads of every stream handed out, now, in this thread.

        A writer that fails (a full disk, a cancel) leaves its stream unfinished, and the
        exception's traceback keeps it alive; left to the garbage collector, its clean-up
        (joining the reader threads) would run in whatever thread allocates next -- once
        inside ``threading``'s own start-up, holding a lock the join needs: a deadlock."""
        streams, self.streams = self.streams, []
        for stream in streams:
            stream.close()
