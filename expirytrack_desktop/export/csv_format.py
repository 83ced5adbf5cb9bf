"""CSV writers: ``openalgo_symbol,date,...,oi,exchange`` (+ metadata); see :mod:`.csv_text`.

Two ways to the same bytes: Arrow groups formatted by :mod:`.csv_fast` when the context has
an Arrow source (a database file and the ADBC driver), else the row-by-row reference
(``CandleReader.csv_chunks``), which the tests also use to check the fast path byte for byte.
"""

from __future__ import annotations

import gzip
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO

from expirytrack_desktop.export.context import WriteContext
from expirytrack_desktop.export.csv_fast import CsvFormatter
from expirytrack_desktop.export.csv_text import CSV_COLUMNS as CSV_COLUMNS
from expirytrack_desktop.export.csv_text import line_suffix, options_header
from expirytrack_desktop.export.query import SelectedContract


def write_reference_rows(ctx: WriteContext, out: BinaryIO, c: SelectedContract) -> int:
    """Append one contract's lines, row by row in Python (the reference); returns rows."""
    suffix = line_suffix(c, ctx.options.include_metadata)
    n = 0
    for text, rows in ctx.reader.csv_chunks(c, suffix):
        out.write(text)
        n += rows
        ctx.tracker.add_rows(rows, c.symbol)
    ctx.tracker.contract_done(c.symbol)
    return n


def write_rows(ctx: WriteContext, out: BinaryIO, contracts: Sequence[SelectedContract]) -> int:
    """Append the lines of ``contracts`` (in order) to an open CSV stream; returns rows.

    Any columns (``options.columns_in_force``): :mod:`.csv_fast`, on the groups of the fast
    reader (or of ``sqlite3`` rows without one, for custom columns); the default columns
    without the fast reader: the row-by-row reference.
    """
    if ctx.arrow is None and not ctx.options.custom_columns:
        return sum(write_reference_rows(ctx, out, c) for c in contracts)
    fmt = ctx.csv_formatter
    if fmt is None:
        fmt = ctx.csv_formatter = CsvFormatter(ctx.options.columns_in_force)
    n = 0
    with BackgroundWriter(out) as writer:  # the file writes overlap the next group's text
        for group in ctx.groups(contracts, fmt.lines):  # the text made by the reader threads
            writer.write(group.prepared)
            n += group.rows
            ctx.tracker.add_group(group.rows, len(group.contracts), group.contracts[-1].symbol)
    return n


class BackgroundWriter:
    """Writes buffers to ``out`` in a thread, in order, at most ``waiting`` queued (CSV: two
    groups' text, ~10 MB).

    ``out.write`` releases the GIL (and a gzip/zstd stream compresses there), so formatting
    the next group goes on meanwhile. A write error is raised by the next :meth:`write` or
    on leaving the block; leaving early (an error, a cancel) stops the thread first.
    """

    def __init__(self, out: Any, waiting: int = 2) -> None:
        self.out = out
        self.queue: queue.Queue[Any] = queue.Queue(waiting)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="export-writer", daemon=True)

    def __enter__(self) -> BackgroundWriter:
        self.thread.start()
        return self

    def _run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.out.write(item)
                except BaseException as exc:  # raised in the exporting thread
                    self.error = exc

    def write(self, data: Any) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(data)

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        if exc_type is not None:
            self.error = self.error or RuntimeError("stopped")  # skip what is still queued
        self.queue.put(None)
        self.thread.join()
        if exc_type is None and self.error is not None:
            raise self.error


def write_contract_rows(ctx: WriteContext, out: BinaryIO, c: SelectedContract) -> int:
    """Append one contract's lines to an open CSV stream; returns its row count."""
    return write_rows(ctx, out, [c])


def contract_lines(
    ctx: WriteContext, contracts: Sequence[SelectedContract]
) -> Iterator[tuple[SelectedContract, int, Any]] | None:
    """``(contract, rows, its lines)`` of each contract in order, from one read of them all
    (the reader threads make the text, cut per contract); None when the row-by-row
    reference is the writer (no fast reader and the default columns)."""
    if ctx.arrow is None and not ctx.options.custom_columns:
        return None
    fmt = ctx.csv_formatter
    if fmt is None:
        fmt = ctx.csv_formatter = CsvFormatter(ctx.options.columns_in_force)

    def each() -> Iterator[tuple[SelectedContract, int, Any]]:
        for group in ctx.groups(contracts, fmt.lines_per_contract):
            yield from zip(group.contracts, group.counts, group.prepared, strict=True)
            ctx.tracker.add_group(group.rows, len(group.contracts), group.contracts[-1].symbol)

    return each()


class WholeFiles:
    """A :class:`BackgroundWriter`'s ``out`` for many-file exports: each item is a whole
    file, ``(path, [pieces])``, opened through the context, written, closed. ``head`` is
    written first in each (a CSV's header line), through ``wrap`` when given (a CSV's
    compression stream around the file)."""

    def __init__(
        self,
        ctx: WriteContext,
        head: bytes = b"",
        wrap: Callable[[BinaryIO], AbstractContextManager[BinaryIO]] | None = None,
    ) -> None:
        self.ctx, self.head, self.wrap = ctx, head, wrap

    def write(self, item: tuple[Path, Sequence[Any]]) -> None:
        path, pieces = item
        with self.ctx.open(path) as raw, (self.wrap or nullcontext)(raw) as out:
            if self.head:
                out.write(self.head)
            for piece in pieces:
                out.write(piece)


def write_csv_files(ctx: WriteContext, files: Sequence[tuple[Path, SelectedContract]]) -> None:
    """One CSV per contract (``per_contract``): from one read when the fast path writes,
    each file written on a thread while the next text is made."""
    lines = contract_lines(ctx, [c for _, c in files])
    if lines is None:
        for path, c in files:
            write_csv(ctx, [c], path)
        return
    files_out = WholeFiles(ctx, options_header(ctx.options), partial(compressed, ctx))
    with BackgroundWriter(files_out) as out:
        for (path, _), (_, _, text) in zip(files, lines, strict=True):
            out.write((path, [text]))


@contextmanager
def compressed(ctx: WriteContext, raw: BinaryIO) -> Iterator[BinaryIO]:
    """``raw`` itself, or a gzip / zstd stream writing into it (``options.codec``)."""
    codec, level = ctx.options.codec, ctx.options.compression_level
    if codec == "gzip":  # no file name, no time in the header: the same bytes every time
        with gzip.GzipFile(
            filename="", fileobj=raw, mode="wb", compresslevel=level or 6, mtime=0
        ) as gz:
            yield gz  # type: ignore[misc]
    elif codec == "zstd":
        import zstandard

        with zstandard.ZstdCompressor(level=level or 3).stream_writer(raw, closefd=False) as zs:
            yield zs
    else:
        yield raw


def write_csv(ctx: WriteContext, contracts: Sequence[SelectedContract], path: Path) -> None:
    """One CSV holding ``contracts`` in the given (symbol) order (compressed if asked)."""
    with ctx.open(path) as raw, compressed(ctx, raw) as out:
        out.write(options_header(ctx.options))
        write_rows(ctx, out, contracts)
