"""CSV lines with chosen columns in a chosen order (``ExportOptions.csv_columns``).

The default columns go through :mod:`.csv_fast` (tuned for that one layout); a custom list
comes here. Each column of a :class:`~.arrow_read.CandleGroup` becomes one Arrow string
array, made once per distinct value and spread with ``take`` (a session has 375 distinct
minutes and prices repeat tick by tick), and one ``binary_join_element_wise`` makes the
lines. Every value is the same text the default writer prints for it (``price_text``,
``ts_text``, the contract's own fields, CSV-quoted as needed), so a custom export is exactly
the default export's columns picked out and reordered; the tests check that.
"""

from __future__ import annotations

from typing import Any

from expirytrack_desktop.export.arrow_read import CandleGroup
from expirytrack_desktop.export.candles import price_text, ts_text
from expirytrack_desktop.export.csv_text import field, meta_values
from expirytrack_desktop.export.options import META_CSV_COLUMNS, CsvColumns, check_csv_columns
from expirytrack_desktop.export.query import SelectedContract

TIME_PARTS = {"date": 0, "time": 1, "timestamp": 2}  # the pieces of ts_text's "d,t,iso"
PRICES = ("open", "high", "low", "close")
COUNTS = ("volume", "oi")


def contract_text(c: SelectedContract, column: str) -> str:
    """A per-contract column's text, as the default writer prints it."""
    if column == "openalgo_symbol":
        return c.symbol
    if column == "exchange":
        return field(c.exchange)
    return field(meta_values(c)[META_CSV_COLUMNS.index(column)])


class ColumnFormatter:
    """Formats groups into lines of ``columns`` (checked here: a bad list never writes)."""

    def __init__(self, columns: CsvColumns) -> None:
        import pyarrow as pa

        self.pa = pa
        self.columns = check_csv_columns(columns)

    def _spread(self, column: Any, text: Any) -> Any:
        """``text(value)`` for each distinct value of ``column``, spread over its rows."""
        import pyarrow.compute as pc

        distinct = pc.unique(column)
        texts = self.pa.array([text(v) for v in distinct.to_pylist()], self.pa.string())
        return texts.take(pc.index_in(column, distinct))

    def _column(self, name: str, arrays: dict[str, Any], group: CandleGroup, which: Any) -> Any:
        pa = self.pa
        if name in TIME_PARTS:
            part = TIME_PARTS[name]
            return self._spread(arrays["ts"], lambda ts: ts_text(ts).split(",")[part])
        if name in PRICES:
            return self._spread(arrays[name], price_text)
        if name in COUNTS:
            return arrays[name].cast(pa.string())
        texts = pa.array([contract_text(c, name) for c in group.contracts], pa.string())
        return texts.take(which)

    def lines(self, group: CandleGroup) -> Any:
        """The group's CSV lines as one pyarrow Buffer (or ``b""`` for no rows)."""
        import numpy as np
        import pyarrow.compute as pc

        pa = self.pa
        if not group.rows:
            return b""
        table = group.table.combine_chunks()
        arrays = {n: table.column(n).chunk(0) for n in table.column_names}
        which = pa.array(np.repeat(np.arange(len(group.contracts)), group.counts))
        parts = [self._column(name, arrays, group, which) for name in self.columns]
        comma = pa.scalar(",", pa.string())
        line = pc.binary_join_element_wise(*parts, comma)
        line = pc.binary_join_element_wise(line, pa.scalar("\n", pa.string()), "")
        offsets = np.frombuffer(line.buffers()[1], dtype=np.int32)
        start, end = int(offsets[line.offset]), int(offsets[line.offset + len(line)])
        return line.buffers()[2][start:end]
