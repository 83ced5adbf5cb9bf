"""Candles as Arrow tables, a group of contracts at a time: the fast path of CSV and Parquet.

Reading SQLite row by row in Python (a tuple and seven objects per candle) was the ceiling
of every export. The ADBC SQLite driver (``adbc-driver-sqlite``, a C library) steps SQLite
and fills Arrow columns itself, so Python only sees one table per group of contracts.
DuckDB's SQLite reader would do the same but downloads its extension at run time; ADBC is
an ordinary wheel. Measured in bench/RESULTS.md ("Exports, Arrow path").

A group is up to :data:`GROUP_CONTRACTS` consecutive contracts (in the export's order) with
increasing ids, read by ONE query (``contract_id IN (...)``, rows by contract id then time,
:func:`~.query.candle_sql`), so its rows need no reordering. A reader thread runs the
queries ahead of the writer (SQLite and the driver release the GIL), at most :data:`AHEAD`
groups in memory.

:func:`python_groups` gives the same groups from an ``sqlite3`` connection (a connection
handed in by the caller, or no ADBC driver installed).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expirytrack_desktop.export.candles import CandleReader
from expirytrack_desktop.export.errors import DatabaseError
from expirytrack_desktop.export.query import SelectedContract, candle_sql
from expirytrack_desktop.store.readonly import readonly_uri

GROUP_CONTRACTS = 64  # contracts per query
GROUP_ROWS = 100_000  # ... or fewer, once a group holds this many candles (default)
AHEAD = 2  # groups read ahead of the formatter (memory: see bench/RESULTS.md)


def candle_schema(pa: Any) -> Any:
    return pa.schema([
        ("ts", pa.int64()), ("open", pa.float64()), ("high", pa.float64()),
        ("low", pa.float64()), ("close", pa.float64()), ("volume", pa.int64()),
        ("oi", pa.int64()),
    ])  # fmt: skip


@dataclass(slots=True)
class CandleGroup:
    """Candles of ``contracts`` (export order); ``counts[i]`` rows belong to contract i."""

    contracts: list[SelectedContract]
    counts: list[int]
    table: Any  # pyarrow.Table with candle_schema's columns

    @property
    def rows(self) -> int:
        return int(self.table.num_rows)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def adbc_available() -> bool:
    """The ADBC SQLite driver is installed and its library is there (else: row by row)."""
    try:
        import adbc_driver_sqlite
        import adbc_driver_sqlite.dbapi
    except ImportError:
        return False
    return Path(adbc_driver_sqlite._driver_path()).is_file()


def _chunks(
    contracts: Sequence[SelectedContract], max_rows: int
) -> Iterator[list[SelectedContract]]:
    """Consecutive contracts whose ids increase (so the query's id order IS the export's
    order and nothing is moved), up to GROUP_CONTRACTS contracts or ``max_rows`` rows."""
    group: list[SelectedContract] = []
    rows = 0
    for c in contracts:
        if group and c.id < group[-1].id:
            yield group
            group, rows = [], 0
        group.append(c)
        rows += c.rows
        if len(group) >= GROUP_CONTRACTS or rows >= max_rows:
            yield group
            group, rows = [], 0
    if group:
        yield group


def _as_group(pa: Any, group: list[SelectedContract], table: Any) -> CandleGroup:
    """Rows come by contract id, which is the group's order: count each contract's run."""
    import numpy as np

    ids = table.column("contract_id").to_numpy()
    table = table.drop_columns(["contract_id"]).cast(candle_schema(pa))
    wanted = np.array([c.id for c in group], dtype=np.int64)
    counts = np.searchsorted(ids, wanted, side="right") - np.searchsorted(ids, wanted)
    return CandleGroup(group, counts.tolist(), table)


class ArrowCandleSource:
    """Groups of candles read through ADBC from the database file at ``path``."""

    def __init__(self, path: Path, iv: int, lo: int, hi: int, group_rows: int = GROUP_ROWS) -> None:
        self.uri = readonly_uri(path)
        self.iv, self.lo, self.hi = iv, lo, hi
        self.group_rows = group_rows

    def groups(self, contracts: Sequence[SelectedContract]) -> Iterator[CandleGroup]:
        """Groups in export order, read ahead by a thread; stops it when not consumed."""
        out: queue.Queue[CandleGroup | BaseException | None] = queue.Queue(AHEAD)
        stop = threading.Event()
        worker = threading.Thread(
            target=self._read, args=(list(contracts), out, stop), name="export-reader"
        )
        worker.start()
        try:
            while (item := out.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            with contextlib.suppress(queue.Empty):
                while True:
                    out.get_nowait()  # let a blocked put() see the stop
            worker.join()

    def _read(
        self,
        contracts: list[SelectedContract],
        out: queue.Queue[CandleGroup | BaseException | None],
        stop: threading.Event,
    ) -> None:
        import adbc_driver_sqlite.dbapi as adbc
        import pyarrow as pa

        def put(item: CandleGroup | BaseException | None) -> bool:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    out.put(item, timeout=0.1)
                    return True
            return False

        try:
            with adbc.connect(self.uri) as conn, conn.cursor() as cur:
                for group in _chunks(contracts, self.group_rows):
                    if stop.is_set():
                        return
                    ids = [c.id for c in group]
                    cur.execute(candle_sql(contracts=len(ids)), (*ids, self.iv, self.lo, self.hi))
                    table = cur.fetch_arrow_table()
                    if not put(_as_group(pa, group, table)):
                        return
        except adbc.Error as exc:  # the driver's errors, as the export's own one-line error
            put(DatabaseError(f"cannot read the database: {_first_line(exc)}"))
            return
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
            return
        put(None)


def python_groups(
    reader: CandleReader, contracts: Sequence[SelectedContract], group_rows: int = GROUP_ROWS
) -> Iterator[CandleGroup]:
    """The same groups from ``sqlite3`` rows (slower: every value passes through Python)."""
    import pyarrow as pa

    schema = candle_schema(pa)
    for group in _chunks(contracts, group_rows):
        counts = []
        parts: list[list[Any]] = [[] for _ in range(7)]
        for c in group:
            n = 0
            for rows in reader.raw_chunks(c):
                for part, values in zip(parts, zip(*rows, strict=True), strict=True):
                    part.extend(values)
                n += len(rows)
            counts.append(n)
        arrays = [pa.array(p, f.type) for p, f in zip(parts, schema, strict=True)]
        yield CandleGroup(group, counts, pa.Table.from_arrays(arrays, schema=schema))
