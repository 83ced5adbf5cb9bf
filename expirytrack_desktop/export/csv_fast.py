"""CSV lines of a whole :class:`~.arrow_read.CandleGroup` at once, gathered as binary views.

The text is byte for byte what the row-by-row writer (``candles.CandleReader.csv_chunks``,
kept as the reference the tests compare with) prints. Each line is a few pieces per column
(:mod:`.text_views`), every piece but the first starting with its comma:

- prices: from whole paise, ``rupees + FRACTION[paise % 100]`` (``2114.3``, ``2115.0``,
  ``0.05``), which equals ``price_text``'s 15-digit text of ``paise / 100``; a row whose
  prices are not whole paise, and any price that does not fit, goes through ``price_text``;
- volume, oi: decimal digits (a negative or huge value through ``str``);
- date, time, timestamp: per-day and per-second-of-day tables (``ts_text``'s text);
- the contract's own columns (symbol, exchange, metadata): its text, once per contract.

:class:`CsvFormatter` takes the list of columns (:func:`default_columns`, or any order of
those names): ``ExportOptions.csv_columns``, the custom CSV columns, go through it too.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.export.arrow_read import CandleGroup
from expirytrack_desktop.export.candles import price_text
from expirytrack_desktop.export.csv_text import (
    EXCHANGE_COLUMN,
    META_COLUMNS,
    field,
)
from expirytrack_desktop.export.options import default_csv_columns
from expirytrack_desktop.export.query import SelectedContract
from expirytrack_desktop.timeutil import IST_OFFSET_SECONDS

if TYPE_CHECKING:  # numpy is imported when an export formats, not when the app starts
    from expirytrack_desktop.export.text_views import Buffers, Piece

PRICE_INDEX = {"open": 0, "high": 1, "low": 2, "close": 3}
NUMBER_COLUMNS = ("volume", "oi")
TIME_COLUMNS = ("date", "time", "timestamp")
ROW_COLUMNS = (*TIME_COLUMNS, *PRICE_INDEX, *NUMBER_COLUMNS)
CONTRACT_COLUMNS = ("openalgo_symbol", EXCHANGE_COLUMN, *META_COLUMNS)
MAX_DIGITS = 12  # = text_views.MAX_DIGITS
MAX_PAISE = 10 ** (MAX_DIGITS + 2)  # rupees below 10**12
INLINE = 12
DAY = 86_400
_EPOCH = date(1970, 1, 1)


def default_columns(include_metadata: bool) -> tuple[str, ...]:
    """The export document's ten columns, ``exchange``, then the metadata if asked."""
    return default_csv_columns(include_metadata)


def contract_field(name: str, c: SelectedContract) -> str:
    """A contract column's CSV text (the symbol as the reference prints it: unquoted)."""
    if name == "openalgo_symbol":
        return c.symbol
    return field(c.column_value(name))


def _fractions(np: Any) -> tuple[Any, Any]:
    """paise % 100 -> its text after the rupees (``.0``, ``.05``, ``.5``): bytes and length."""
    texts = [b".0"] + [("." + f"{i:02d}".rstrip("0")).encode() for i in range(1, 100)]
    lo = np.array([int.from_bytes(t, "little") for t in texts], np.uint64)
    return lo, np.array([len(t) for t in texts])


def _clock_texts(np: Any) -> Any:
    """Second of the day -> ``HH:MM:SS`` as 8 bytes in a uint64, for all 86,400."""
    s = np.arange(DAY)
    two = np.array([int.from_bytes(f"{i:02d}".encode(), "little") for i in range(100)], np.uint64)
    colon = np.uint64(ord(":"))
    return (
        two[s // 3600]
        | (colon << np.uint64(16))
        | (two[s // 60 % 60] << np.uint64(24))
        | (colon << np.uint64(40))
        | (two[s % 60] << np.uint64(48))
    )


class CsvFormatter:
    """Formats groups; holds the per-day and per-second tables between groups."""

    def __init__(self, columns: Sequence[str]) -> None:
        import numpy as np

        from expirytrack_desktop.export import text_views

        self.tv = text_views
        unknown = [c for c in columns if c not in ROW_COLUMNS + CONTRACT_COLUMNS]
        if unknown or not columns:
            raise ValueError(f"unknown CSV column {unknown[0] if unknown else None!r}")
        self.np = np
        self.columns = tuple(columns)
        self.frac_lo, self.frac_n = _fractions(np)
        self.clock = _clock_texts(np)
        self.day_texts: dict[int, bytes] = {}
        self.minute_tables: dict[tuple[int, bytes], tuple[bytes, Any]] = {}
        # the steps of a line: runs of contract columns, and each row column
        self.steps: list[tuple[str, tuple[str, ...]]] = []
        for name in self.columns:
            kind = "contract" if name in CONTRACT_COLUMNS else name
            if kind == "contract" and self.steps and self.steps[-1][0] == "contract":
                self.steps[-1] = ("contract", (*self.steps[-1][1], name))
            else:
                self.steps.append((kind, (name,)))

    @classmethod
    def for_options(cls, include_metadata: bool) -> CsvFormatter:
        return cls(default_columns(include_metadata))

    # ---- pieces ------------------------------------------------------------------------

    def comma(self, p: Piece, first: bool) -> Piece:
        """``,`` + ``p`` (nothing for the line's first column)."""
        if first:
            return p
        np = self.np
        u8 = np.uint64(8)
        lo = (p.lo << u8) | np.uint64(ord(","))
        return self.tv.Piece(lo, (p.hi << u8) | (p.lo >> np.uint64(56)), p.n + 1)

    def put(self, views: Any, k: int, p: Piece, odd: Any, texts: Any, buffers: Buffers) -> None:
        """Views of piece ``p`` into column ``k``; the rows in ``odd`` get ``texts(rows)``."""
        np = self.np
        odd = odd | (p.n > INLINE)
        self.tv.inline_views(p, views[k])
        if odd.any():
            rows = np.flatnonzero(odd)
            views[k][rows] = self.tv.views_of(texts(rows), buffers)

    def price(self, group: CandleGroup, i: int, first: bool) -> tuple[Piece, Any, Any]:
        np = self.np
        p = group.paise[i]
        ok = (p >= 0) & (p < MAX_PAISE)
        rupees, frac = np.divmod(np.where(ok, p, 0), 100)
        fraction = self.tv.Piece(self.frac_lo[frac], None, self.frac_n[frac])
        if int(rupees.max()) < 10**8:
            text = self.tv.decimal8(rupees, b"" if first else b",", fraction)
        else:
            zero = np.zeros(len(p), np.uint64)
            fraction.hi = zero
            text = self.comma(self.tv.digits(rupees), first) + fraction
        odd = ~ok
        if group.exact:
            odd[list(group.exact)] = True
        sep = "" if first else ","

        def texts(rows: Any) -> list[bytes]:
            out = []
            for r in rows.tolist():
                value = group.exact[r][i] if r in group.exact else int(p[r]) / 100
                out.append((sep + price_text(value)).encode())
            return out

        return text, odd, texts

    def number(self, values: Any, first: bool) -> tuple[Piece, Any, Any]:
        np = self.np
        ok = (values >= 0) & (values < 10**MAX_DIGITS)
        clean = np.where(ok, values, 0)
        if int(clean.max()) < 10**8:
            text = self.tv.decimal8(clean, b"" if first else b",")
        else:
            text = self.comma(self.tv.digits(clean), first)
        sep = "" if first else ","
        return text, ~ok, lambda rows: [f"{sep}{v}".encode() for v in values[rows].tolist()]

    def days(self, ts: Any) -> tuple[Any, list[bytes]]:
        """(index of each row's IST day in the list, ``YYYY-MM-DD`` of those days)."""
        np = self.np
        day = (ts + IST_OFFSET_SECONDS) // DAY
        lo, hi = int(day.min()), int(day.max())
        if hi - lo < 4096:
            index, days = day - lo, range(lo, hi + 1)
        else:
            uniq, index = np.unique(day, return_inverse=True)
            days = uniq.tolist()
        return index, [self.day_text(d) for d in days]

    def day_text(self, day: int) -> bytes:
        """``YYYY-MM-DD`` of an IST day number (days since 1970-01-01), memoised."""
        text = self.day_texts.get(day)
        if text is None:
            if len(self.day_texts) > 100_000:
                self.day_texts.clear()
            text = self.day_texts[day] = (_EPOCH + timedelta(days=day)).isoformat().encode()
        return text

    def minute_table(self, day: int, sep: bytes) -> tuple[bytes, Any]:
        """``sep + date,time,timestamp`` of each minute of ``day``: 1,440 texts of one
        length in one block, and their out-of-line views (buffer index 0; the caller sets
        it), memoised: a day's minutes are shared by every contract trading that day."""
        hit = self.minute_tables.get((day, sep))
        if hit is not None:
            return hit
        np = self.np
        if len(self.minute_tables) > 256:  # ~30 MB
            self.minute_tables.clear()
        d = self.day_text(day)
        template = sep + d + b",00:00:00," + d + b"T00:00:00+05:30"
        width = len(template)
        block = np.empty((1440, width), np.uint8)
        block[:] = np.frombuffer(template, np.uint8)
        clock = self.clock[np.arange(1440) * 60].view(np.uint8).reshape(1440, 8)
        at = len(sep) + 11  # after "sep + YYYY-MM-DD,"
        block[:, at : at + 8] = clock
        block[:, at + 20 : at + 28] = clock  # after "HH:MM:SS,YYYY-MM-DDT"
        views = np.empty((1440, 2), np.uint64)
        head = int.from_bytes(template[:4], "little")
        views[:, 0] = np.uint64(width) | (np.uint64(head) << np.uint64(32))
        views[:, 1] = (np.arange(1440, dtype=np.uint64) * np.uint64(width)) << np.uint64(32)
        made = self.minute_tables[(day, sep)] = (block.tobytes(), views)
        return made

    def minutes(self, ts: Any, sep: bytes, buffers: Buffers) -> Any:
        """Views of ``sep + date,time,timestamp`` for each row when every ``ts`` is a whole
        minute within 64 days (one piece instead of five), else None."""
        np = self.np
        local = ts + IST_OFFSET_SECONDS
        if (local % 60).any():
            return None
        day = local // DAY
        lo, hi = int(day.min()), int(day.max())
        if hi - lo >= 64:
            return None
        tables = []
        for d in range(lo, hi + 1):
            block, views = self.minute_table(d, sep)
            index = np.uint64(buffers.add(block))
            tables.append(views | np.array([0, index], np.uint64))
        return np.concatenate(tables)[(day - lo) * 1440 + local % DAY // 60]

    def lines(self, group: CandleGroup) -> Any:
        """The group's CSV lines as one pyarrow Buffer (or ``b""`` for no rows)."""
        return self._lines(group, False)

    def lines_per_contract(self, group: CandleGroup) -> list[Any]:
        """The lines of each of the group's contracts (a Buffer each; ``b""`` for none)."""
        return self._lines(group, True)  # type: ignore[no-any-return]

    def _lines(self, group: CandleGroup, split: bool) -> Any:
        np = self.np
        n = group.rows
        if not n:
            return [b""] * len(group.contracts) if split else b""
        last_is_row = self.steps[-1][0] != "contract"
        width = sum(3 if k == "timestamp" else 1 for k, _ in self.steps) + last_is_row
        buffers = self.tv.Buffers()
        kinds = [k for k, _ in self.steps]
        merged, at = None, -1  # date,time,timestamp side by side: one piece per row
        for i in range(len(kinds) - 2):
            if kinds[i : i + 3] == ["date", "time", "timestamp"]:
                merged = self.minutes(group.ts, b"" if i == 0 else b",", buffers)
                at = i
                break
        if merged is not None:
            width -= 4
        views = np.empty((width, n, 2), np.uint64)
        none = np.zeros(n, bool)
        which = None
        day_index = day_texts = second = None
        k = 0
        for s, (kind, names) in enumerate(self.steps):
            first = s == 0
            sep = b"" if first else b","
            if merged is not None and at <= s < at + 3:
                if s == at:
                    views[k] = merged
                    k += 1
            elif kind == "contract":
                end = b"\n" if s == len(self.steps) - 1 else b""
                texts = [
                    sep + ",".join(contract_field(m, c) for m in names).encode() + end
                    for c in group.contracts
                ]
                if which is None:
                    which = np.repeat(np.arange(len(group.contracts)), group.counts)
                np.take(self.tv.views_of(texts, buffers), which, axis=0, out=views[k])
                k += 1
            elif kind in TIME_COLUMNS:
                if day_index is None:
                    day_index, day_texts = self.days(group.ts)
                    second = (group.ts + IST_OFFSET_SECONDS) % DAY
                assert day_texts is not None
                if kind in ("date", "timestamp"):
                    tail = b"T" if kind == "timestamp" else b""
                    table = self.tv.views_of([sep + t + tail for t in day_texts], buffers)
                    np.take(table, day_index, axis=0, out=views[k])
                    k += 1
                if kind in ("time", "timestamp"):
                    clock = self.clock[second]
                    lead = 0 if kind == "timestamp" else (0 if first else 1)
                    p = self.tv.Piece(clock, np.zeros(n, np.uint64), np.full(n, 8))
                    p = p if lead == 0 else self.comma(p, False)
                    self.tv.inline_views(p, views[k])
                    k += 1
                if kind == "timestamp":
                    views[k] = self.tv.views_of([b"+05:30"], buffers)[0]
                    k += 1
            else:
                if kind in PRICE_INDEX:
                    p, odd, texts_of = self.price(group, PRICE_INDEX[kind], first)
                else:
                    p, odd, texts_of = self.number(getattr(group, kind), first)
                self.put(views, k, p, odd | none, texts_of, buffers)
                k += 1
        if last_is_row:
            views[k] = self.tv.views_of([b"\n"], buffers)[0]
        return self.tv.gather(views, buffers, group.counts if split else None)
