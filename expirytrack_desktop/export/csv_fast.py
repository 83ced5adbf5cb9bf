"""CSV lines of a whole :class:`~.arrow_read.CandleGroup` at once, made by Arrow kernels.

The text is byte for byte what the row-by-row writer (``candles.CandleReader.csv_chunks``,
kept as the reference the tests compare with) prints:

- prices: a price that is a whole number of paise below 1e13 (every exchange price) is
  printed from its integer paise, ``rupees + FRACTION[paise % 100]`` (``2114.3``,
  ``2115.0``, ``0.05``), which equals ``price_text``'s 15-digit text for such values; any
  other value (computed noise, negative zero, sub-paisa) goes through ``price_text`` itself;
- timestamps: ``date,time,ISO`` from the reference's memo table, per distinct minute;
- symbol, exchange and metadata: each contract's own text, repeated over its rows.

Every piece carries its trailing comma, so one ``binary_join_element_wise`` with an empty
separator makes each line, and the lines leave as one buffer.
"""

from __future__ import annotations

from typing import Any

from expirytrack_desktop.export.arrow_read import CandleGroup
from expirytrack_desktop.export.candles import price_text, ts_text
from expirytrack_desktop.export.csv_text import line_suffix

MAX_EXACT = 1e13  # 13 digits of rupees + 2 of paise = the 15 digits price_text keeps


class CsvFormatter:
    """Formats groups; holds the memo tables and the fraction table between groups."""

    def __init__(self, include_metadata: bool) -> None:
        import pyarrow as pa

        self.pa = pa
        self.include_metadata = include_metadata
        self.ts_memo: dict[int, str] = {}
        fractions = [".0,"] + [("." + f"{i:02d}").rstrip("0") + "," for i in range(1, 100)]
        self.fraction = pa.array(fractions, pa.string())

    def _prices(self, column: Any) -> tuple[Any, Any]:
        """(rupees text, ``.paise,`` text) columns; the second is the whole text for the rest."""
        import numpy as np
        import pyarrow.compute as pc

        pa = self.pa
        p = column.to_numpy()
        with np.errstate(invalid="ignore", over="ignore"):
            paise = np.rint(p * 100)
            exact = (paise / 100 == p) & (np.abs(p) < MAX_EXACT) & ~np.signbit(p)
        paise = np.where(exact, paise, 0).astype(np.int64)
        rupees = pa.array(paise // 100).cast(pa.string())
        frac = self.fraction.take(pa.array(paise % 100))
        if not exact.all():
            odd = ~exact
            texts = [price_text(v) + "," for v in p[odd].tolist()]
            mask = pa.array(odd)
            rupees = pc.replace_with_mask(rupees, mask, pa.array([""] * len(texts), pa.string()))
            frac = pc.replace_with_mask(frac, mask, pa.array(texts, pa.string()))
        return rupees, frac

    def _timestamps(self, column: Any) -> Any:
        import pyarrow.compute as pc

        pa = self.pa
        distinct = pc.unique(column)
        memo = self.ts_memo
        if len(memo) > 200_000:
            memo.clear()
        texts = []
        for ts in distinct.to_pylist():
            text = memo.get(ts)
            if text is None:
                text = memo[ts] = ts_text(ts) + ","
            texts.append(text)
        return pa.array(texts, pa.string()).take(pc.index_in(column, distinct))

    def lines(self, group: CandleGroup) -> Any:
        """The group's CSV lines as one pyarrow Buffer (or ``b""`` for no rows)."""
        import numpy as np
        import pyarrow.compute as pc

        pa = self.pa
        if not group.rows:
            return b""
        t = group.table.combine_chunks()
        which = pa.array(np.repeat(np.arange(len(group.contracts)), group.counts))
        heads = pa.array([c.symbol + "," for c in group.contracts], pa.string()).take(which)
        tails = pa.array(
            [line_suffix(c, self.include_metadata)[1:] + "\n" for c in group.contracts],
            pa.string(),
        ).take(which)
        parts = [heads, self._timestamps(t.column("ts").chunk(0))]
        for name in ("open", "high", "low", "close"):
            parts.extend(self._prices(t.column(name).chunk(0)))
        comma = pa.scalar(",", pa.string())
        volume = t.column("volume").chunk(0).cast(pa.string())
        oi = t.column("oi").chunk(0).cast(pa.string())
        line = pc.binary_join_element_wise(*parts, volume, comma, oi, comma, tails, "")
        offsets = np.frombuffer(line.buffers()[1], dtype=np.int32)
        start, end = int(offsets[line.offset]), int(offsets[line.offset + len(line)])
        return line.buffers()[2][start:end]
