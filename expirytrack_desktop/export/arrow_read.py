"""Candles as numpy/Arrow columns, a group of contracts at a time: the fast path of every format.

Reading SQLite row by row in Python (a tuple and seven objects per candle) was the ceiling
of every export. The ADBC SQLite driver (``adbc-driver-sqlite``, a C library) steps SQLite
and fills Arrow columns itself, so Python only sees one table per group of contracts.
DuckDB's SQLite reader would do the same but downloads its extension at run time; ADBC is
an ordinary wheel. Measured in bench/RESULTS.md ("Exports, Arrow path").

The reader reads the stored integer columns (:func:`~.query.stored_candle_sql`: close in
paise, open/high/low relative to it; store/prices.py), not the ``candle_rupees`` view: SQLite
then decodes integers and computes nothing, and the CSV/JSON text is made from whole paise
(:mod:`.text_views`). A row whose prices are NULL there (not whole paise) takes its four
prices from ``candle_exact`` (:attr:`CandleGroup.exact`). :attr:`CandleGroup.table` gives the
rupee floats the view would (``paise / 100.0``, the same division in double precision).

A group is up to :data:`GROUP_CONTRACTS` consecutive contracts (in the export's order) with
increasing ids, read by ONE query (``contract_id IN (...)``, rows by contract id then time),
so its rows need no reordering. :data:`READERS` threads, each with its own connection, read
alternate groups ahead of the writer (SQLite and the driver release the GIL), at most
:data:`AHEAD` groups each in memory; the groups still come out in order. A format's own work
on a group (its CSV text, its typed Parquet columns: ``prepare``) runs in the reader thread
too, so two cores share it instead of one thread doing it after the read.

:func:`python_groups` gives the same groups from an ``sqlite3`` connection (a connection
handed in by the caller, or no ADBC driver installed).
"""

from __future__ import annotations

import contextlib
import math
import queue
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expirytrack_desktop.export.arrow_np import arrow_of, numpy_of
from expirytrack_desktop.export.candles import CandleReader
from expirytrack_desktop.export.errors import DatabaseError
from expirytrack_desktop.export.query import SelectedContract, exact_candle_sql, stored_candle_sql
from expirytrack_desktop.store.prices import paise
from expirytrack_desktop.store.readonly import readonly_uri

GROUP_CONTRACTS = 64  # contracts per query
GROUP_ROWS = 25_000  # ... or fewer, once a group holds this many candles: CSV/JSON, whose
# text is made in the reader threads (~40 MiB of peak RSS less than 50,000)
PARQUET_GROUP_ROWS = 50_000  # Parquet keeps only typed columns: fewer, larger queries, ~4 %
# faster for ~20 MiB more (bench/RESULTS.md)


def group_rows_for(fmt: str) -> int:
    """Candles per group for an export format (Parquet, the mirror, Historify's load: typed
    columns; the text formats: their text)."""
    return PARQUET_GROUP_ROWS if fmt in ("parquet", "historify") else GROUP_ROWS


AHEAD = 3  # groups each reader keeps ready (READERS x AHEAD in all; memory: RESULTS.md)
# 3, not 1: a reader whose next group is not taken yet (the other reader's is slower) goes on
# reading instead of waiting (Parquet 2.18-2.22 -> 2.10-2.12 s, bench/RESULTS.md)
READERS = 2  # reader threads (connections), reading alternate groups
# rows per Arrow batch the driver builds: a whole group in one (its default, 1,024, made
# ~50 per group: 0.3-0.4 s more CPU over the 6.17 M-row bench, bench/RESULTS.md)
BATCH_OPTION, BATCH_ROWS = "adbc.sqlite.query.batch_rows", 65_536

PRICES = ("open", "high", "low", "close")
Prepare = Callable[["CandleGroup"], Any]  # a format's work on a group, done by its reader


def candle_schema(pa: Any) -> Any:
    return pa.schema([
        ("ts", pa.int64()), ("open", pa.float64()), ("high", pa.float64()),
        ("low", pa.float64()), ("close", pa.float64()), ("volume", pa.int64()),
        ("oi", pa.int64()),
    ])  # fmt: skip


@dataclass(slots=True)
class CandleGroup:
    """Candles of ``contracts`` (export order); ``counts[i]`` rows belong to contract i.

    ``paise``: ``(4, rows)`` int64, absolute open/high/low/close in paise; on a row listed in
    ``exact`` (row index -> its four rupee floats, as sent) the paise are 0 and meaningless.
    """

    contracts: list[SelectedContract]
    counts: list[int]
    ts: Any  # int64 numpy arrays, one value per row
    paise: Any
    volume: Any
    oi: Any
    exact: dict[int, tuple[float, float, float, float]] = field(default_factory=dict)
    _table: Any = None
    prepared: Any = None  # what the ``prepare`` function made of it (the format's own)

    @property
    def rows(self) -> int:
        return len(self.ts)

    def rupees(self, i: int) -> Any:
        """Price ``i`` (0 open .. 3 close) in rupees, as float64: what candle_rupees gives."""
        out = self.paise[i] / 100.0
        for row, prices in self.exact.items():
            out[row] = prices[i]
        return out

    def split(self) -> list[CandleGroup]:
        """One group per contract, made of views of this one's arrays (a file per contract
        from a group read for many)."""
        import numpy as np

        ends = np.cumsum(self.counts)
        exact: list[dict[int, tuple[float, float, float, float]]] = [{} for _ in self.counts]
        for row, prices in self.exact.items():
            k = int(np.searchsorted(ends, row, side="right"))
            exact[k][row - (int(ends[k - 1]) if k else 0)] = prices
        out, row = [], 0
        for c, n, ex in zip(self.contracts, self.counts, exact, strict=True):
            end = row + n
            out.append(CandleGroup(
                [c], [n], self.ts[row:end], self.paise[:, row:end], self.volume[row:end],
                self.oi[row:end], ex,
            ))  # fmt: skip
            row = end
        return out

    @property
    def table(self) -> Any:
        """pyarrow.Table with :func:`candle_schema`'s columns (rupee floats)."""
        if self._table is None:
            import pyarrow as pa

            cols = [self.ts, *(self.rupees(i) for i in range(4)), self.volume, self.oi]
            self._table = pa.Table.from_arrays(
                [arrow_of(c) for c in cols], schema=candle_schema(pa)
            )
        return self._table


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def adbc_available() -> bool:
    """The ADBC SQLite driver is installed and its library is there (else: row by row)."""
    try:
        import adbc_driver_manager  # noqa: F401
        import adbc_driver_sqlite
    except ImportError:
        return False
    return Path(adbc_driver_sqlite._driver_path()).is_file()


def warm_up(fmt: str) -> None:
    """Import what the fast path of format ``fmt`` uses (run in a thread while the export
    plans)."""
    import adbc_driver_manager  # noqa: F401
    import adbc_driver_sqlite  # noqa: F401
    import numpy  # noqa: F401
    import pyarrow

    if fmt in ("parquet", "historify"):
        import pyarrow.parquet  # noqa: F401


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


def _column(table: Any, name: str) -> Any:
    """An int64 column as numpy (NULL -> 0; the caller looks at the nulls itself).

    The driver's columns are int64 unless a group's column is all NULL; only then is
    pyarrow.compute needed (its import: ~30 ms of GIL-holding CPU in the first group)."""
    import pyarrow as pa

    col = table.column(name)
    if col.null_count or col.type != pa.int64():
        import pyarrow.compute as pc

        col = pc.fill_null(col, 0).cast(pa.int64())
    return numpy_of(col)


def _as_group(
    group: list[SelectedContract], table: Any, exact: list[tuple[Any, ...]]
) -> CandleGroup:
    """Rows come by contract id, which is the group's order: count each contract's run
    (from ``contract_id`` when the table has it, else the planned counts, which the caller
    checked against the rows it got)."""
    import numpy as np

    if "contract_id" in table.column_names:
        ids = _column(table, "contract_id")
        wanted = np.array([c.id for c in group], dtype=np.int64)
        counts = np.searchsorted(ids, wanted, side="right") - np.searchsorted(ids, wanted)
    else:
        counts = np.array([c.rows for c in group], dtype=np.int64)
        ids = None
    close = _column(table, "close")
    paise = np.empty((4, len(close)), np.int64)
    for i, name in enumerate(PRICES[:3]):
        np.add(close, _column(table, name), out=paise[i])
    paise[3] = close
    found: dict[int, tuple[float, float, float, float]] = {}
    if table.column("close").null_count:
        import pyarrow as pa
        import pyarrow.compute as pc

        ts = _column(table, "ts")
        null = pc.is_null(table.column("close")).combine_chunks()
        nulls = numpy_of(pc.indices_nonzero(null).cast(pa.int64()))
        if ids is None:
            ids = np.repeat(np.array([c.id for c in group], dtype=np.int64), counts)
        where = {(int(ids[i]), int(ts[i])): int(i) for i in nulls}
        for cid, t, o, h, lo, c in exact:
            row = where.get((cid, t))
            if row is not None:
                found[row] = (o, h, lo, c)
        if len(found) != len(nulls):
            raise DatabaseError("cannot read the database: a candle without prices")
    return CandleGroup(
        group, counts.tolist(), _column(table, "ts"), paise,
        _column(table, "volume"), _column(table, "oi"), found,
    )  # fmt: skip


class ArrowCandleSource:
    """Groups of candles read through ADBC from the database file at ``path``."""

    def __init__(
        self,
        path: Path,
        iv: int,
        lo: int,
        hi: int,
        group_rows: int = GROUP_ROWS,
        readers: int = READERS,
    ) -> None:
        self.uri = readonly_uri(path)
        self.iv, self.lo, self.hi = iv, lo, hi
        self.group_rows = group_rows
        self.readers = max(1, readers)

    def groups(
        self, contracts: Sequence[SelectedContract], prepare: Prepare | None = None
    ) -> Generator[CandleGroup, None, None]:
        """Groups in export order, read ahead by threads (each sets ``group.prepared =
        prepare(group)`` when given); stops the threads when not consumed."""
        chunks = list(_chunks(contracts, self.group_rows))
        n = min(self.readers, len(chunks)) or 1
        outs: list[queue.Queue[CandleGroup | BaseException | None]] = [
            queue.Queue(AHEAD) for _ in range(n)
        ]
        stop = threading.Event()
        workers = [
            threading.Thread(
                target=self._read,
                args=(chunks[k::n], outs[k], stop, prepare),
                name=f"export-reader-{k}",
            )
            for k in range(n)
        ]
        for w in workers:
            w.start()
        try:
            for i in range(len(chunks)):
                item = outs[i % n].get()
                if isinstance(item, BaseException):
                    raise item
                assert item is not None  # each reader sends its groups before its None
                yield item
        finally:
            stop.set()
            for out in outs:
                with contextlib.suppress(queue.Empty):
                    while True:
                        out.get_nowait()  # let a blocked put() see the stop
            for w in workers:
                w.join()

    def _read(
        self,
        chunks: list[list[SelectedContract]],
        out: queue.Queue[CandleGroup | BaseException | None],
        stop: threading.Event,
        prepare: Prepare | None,
    ) -> None:
        # the driver manager's own objects: adbc_driver_sqlite.dbapi would also import
        # pandas and Polars (~80 MB of memory and a second of CPU) for nothing
        import adbc_driver_manager as dm
        import adbc_driver_sqlite
        import pyarrow as pa

        def put(item: CandleGroup | BaseException | None) -> bool:
            while not stop.is_set():
                with contextlib.suppress(queue.Full):
                    out.put(item, timeout=0.1)
                    return True
            return False

        def query(conn: Any, sql: str) -> Any:
            with dm.AdbcStatement(conn) as stmt:
                stmt.set_options(**{BATCH_OPTION: str(BATCH_ROWS)})
                stmt.set_sql_query(sql)
                handle, _ = stmt.execute_query()
                return pa.RecordBatchReader._import_from_c(handle.address).read_all()

        try:
            with (
                adbc_driver_sqlite.connect(self.uri) as db,
                dm.AdbcConnection(db) as conn,
            ):
                # two readers open the file at once: wait for the other's WAL-index set-up
                # (SQLITE_BUSY, "database is locked") instead of failing on it
                query(conn, "PRAGMA busy_timeout = 10000")
                for group in chunks:
                    if stop.is_set():
                        return
                    where = ([c.id for c in group], self.iv, self.lo, self.hi)
                    # without contract_id when the rows are the planned ones: candles are
                    # only ever added, so an unchanged total means unchanged counts; rows
                    # added since the plan (a collector) read again with their ids
                    table = query(conn, stored_candle_sql(*where, with_ids=False))
                    if table.num_rows != sum(c.rows for c in group):
                        table = query(conn, stored_candle_sql(*where))
                    exact: list[tuple[Any, ...]] = []
                    if table.column("close").null_count:
                        exact = list(
                            zip(
                                *query(conn, exact_candle_sql(*where)).to_pydict().values(),
                                strict=True,
                            )
                        )
                    made = _as_group(group, table, exact)
                    del table
                    if prepare is not None:
                        made.prepared = prepare(made)
                    if not put(made):
                        return
        except dm.Error as exc:  # the driver's errors, as the export's own one-line error
            put(DatabaseError(f"cannot read the database: {_first_line(exc)}"))
            return
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
            return
        put(None)


def _paise(price: float) -> int | None:
    """Whole paise of a rupee float as the store keeps it, else None (kept as a float)."""
    k = paise(price)
    if k is None or abs(k) >= 10**15 or (k == 0 and math.copysign(1.0, price) < 0):
        return None
    return k


def python_groups(
    reader: CandleReader,
    contracts: Sequence[SelectedContract],
    group_rows: int = GROUP_ROWS,
    prepare: Prepare | None = None,
) -> Generator[CandleGroup, None, None]:
    """The same groups from ``sqlite3`` rows of candle_rupees (slower: every value passes
    through Python); a row with a price that is not whole paise keeps its floats.
    ``prepare`` runs here, in the consumer's thread."""
    import numpy as np

    for group in _chunks(contracts, group_rows):
        counts = []
        ts: list[int] = []
        prices: list[list[int]] = [[], [], [], []]
        volume: list[int] = []
        oi: list[int] = []
        exact: dict[int, tuple[float, float, float, float]] = {}
        for c in group:
            n = 0
            for rows in reader.raw_chunks(c):
                for t, o, h, lo, cl, v, i in rows:
                    ks = [_paise(o), _paise(h), _paise(lo), _paise(cl)]
                    if None in ks:
                        exact[len(ts)] = (o, h, lo, cl)
                        ks = [0, 0, 0, 0]
                    for col, k in zip(prices, ks, strict=True):
                        col.append(k)  # type: ignore[arg-type]
                    ts.append(t)
                    volume.append(v)
                    oi.append(i)
                n += len(rows)
            counts.append(n)
        made = CandleGroup(
            group, counts, np.array(ts, np.int64), np.array(prices, np.int64).reshape(4, -1),
            np.array(volume, np.int64), np.array(oi, np.int64), exact,
        )  # fmt: skip
        if prepare is not None:
            made.prepared = prepare(made)
        yield made
