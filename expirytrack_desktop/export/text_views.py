"""Text of many rows at once, made of small pieces, gathered by Arrow's binary views.

A line of an export is a few pieces: a contract's text (symbol, exchange ...), a date, a
time, numbers. Each piece of each row is written as one 16-byte Arrow *binary view*
(``binary_view``: length + up to 12 bytes inline, or length + prefix + buffer + offset for a
longer text kept in a buffer), a row's pieces side by side, so the pieces of all rows form one
``(rows, pieces, 2)`` uint64 array that numpy fills a column at a time. Casting that view
array to ``binary`` makes Arrow copy every piece, in order, into one contiguous buffer:
the finished text, with no per-byte work in Python or numpy and no string kernel per column.

Numbers become text without ``str``: a 4-digit table (``"0000"`` .. ``"9999"`` as uint32)
gives 8 or 12 zero-padded ASCII digits in 128 bits, and a shift by the number's own digit
count drops the leading zeros. A piece longer than 12 bytes, or a value outside what the
tables cover, is made in Python instead (:func:`views_of`), row by row; that is rare.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

INLINE = 12  # bytes a view holds inline (Arrow's binary_view layout)
MAX_DIGITS = 12  # numbers below 10**12 are made here; larger ones in Python
U64 = np.uint64
_T4 = np.array([int.from_bytes(f"{i:04d}".encode(), "little") for i in range(10_000)], dtype=U64)
_D4 = np.array([len(str(i)) for i in range(10_000)], dtype=np.int64)  # digits of 0..9999
# decimal8's template: [lead][4 digits][4 digits][tail...] -> bytes 0, 1-4, 5-8, 9-15
_HIGH4, _LOW4_LO, _LOW4_HI = _T4 << U64(8), _T4 << U64(40), _T4 >> U64(24)
_NOT_BYTE0 = U64(0xFFFF_FFFF_FFFF_FF00)
_POW10 = np.array([10**i for i in range(MAX_DIGITS)], dtype=np.int64)  # 1 .. 10**11


class Piece:
    """Up to 16 bytes of text per row: bytes 0-7 in ``lo``, 8-15 in ``hi``, ``n`` long."""

    __slots__ = ("hi", "lo", "n")

    def __init__(self, lo: Any, hi: Any, n: Any) -> None:
        self.lo, self.hi, self.n = lo, hi, n

    @classmethod
    def const(cls, text: bytes, rows: int) -> Piece:
        raw = text.ljust(16, b"\0")
        lo, hi = np.frombuffer(raw[:16], "<u8")
        return cls(np.full(rows, lo, U64), np.full(rows, hi, U64), np.full(rows, len(text)))

    def __add__(self, other: Piece) -> Piece:
        """This text followed by ``other`` (their lengths add up to 16 bytes at most)."""
        s = (self.n * 8).astype(U64)
        lo = self.lo | (other.lo << s)
        hi = self.hi | (other.hi << s) | (other.lo >> (U64(64) - s)) | (other.lo << (s - U64(64)))
        return Piece(lo, hi, self.n + other.n)  # numpy: a shift by >= 64 gives 0


def digits(n: Any) -> Piece:
    """Decimal text of integers ``0 <= n < 10**12`` (the caller checks the range)."""
    d = np.maximum(np.searchsorted(_POW10, n, side="right"), 1)
    if not len(n) or int(n.max()) < 10**8:
        b1, b2 = np.divmod(n, 10_000)
        lo = (_T4[b1] | (_T4[b2] << U64(32))) >> ((8 - d) * 8).astype(U64)
        return Piece(lo, np.zeros(len(n), U64), d)
    a, b = np.divmod(n, 10**8)
    b1, b2 = np.divmod(b, 10_000)
    lo, hi = _T4[a] | (_T4[b1] << U64(32)), _T4[b2]
    s = ((12 - d) * 8).astype(U64)  # drop the leading zeros: a 128-bit right shift
    lo = (lo >> s) | (hi << (U64(64) - s)) | (hi >> (s - U64(64)))
    return Piece(lo, hi >> s, d)


def decimal8(n: Any, lead: bytes = b"", tail: Piece | None = None) -> Piece:
    """``lead`` (0 or 1 byte) + decimal text of ``0 <= n < 10**8`` + ``tail`` (up to 7
    bytes per row), built in place: the zero-padded digits sit at fixed bytes and one
    128-bit shift by the digit count closes the gap (the cheap path of :func:`digits`)."""
    b1, b2 = np.divmod(n, 10_000)
    d = np.where(b1 > 0, _D4[b1] + 4, _D4[b2])
    lo = _HIGH4[b1] | _LOW4_LO[b2]
    hi = _LOW4_HI[b2]
    if tail is not None:
        hi |= tail.lo << U64(8)
    s = ((8 + (not lead) - d) * 8).astype(U64)
    lo = (lo >> s) | (hi << (U64(64) - s)) | (hi >> (s - U64(64)))
    if lead:
        lo = (lo & _NOT_BYTE0) | U64(lead[0])
    return Piece(lo, hi >> s, d + len(lead) + (0 if tail is None else tail.n))


def inline_views(p: Piece, out: Any = None) -> Any:
    """``(rows, 2)`` uint64 views of pieces of at most 12 bytes (into ``out`` if given)."""
    if out is None:
        out = np.empty((len(p.n), 2), U64)
    np.bitwise_or(p.n.astype(U64), p.lo << U64(32), out=out[:, 0])
    np.bitwise_or(p.lo >> U64(32), p.hi << U64(32), out=out[:, 1])
    return out


class Buffers:
    """The data buffers that out-of-line views point into (index = position here)."""

    def __init__(self) -> None:
        self.buffers: list[Any] = []

    def add(self, data: bytes | Any) -> int:
        self.buffers.append(data)
        return len(self.buffers) - 1


def views_of(texts: Sequence[bytes], buffers: Buffers) -> Any:
    """``(len(texts), 2)`` uint64 views of any texts (long ones go into a new buffer)."""
    data = bytearray()
    raws = []
    index = len(buffers.buffers)
    for t in texts:
        n = len(t)
        if n <= INLINE:
            raws.append(n.to_bytes(4, "little") + t.ljust(INLINE, b"\0"))
        else:
            head = n.to_bytes(4, "little") + t[:4]
            raws.append(head + index.to_bytes(4, "little") + len(data).to_bytes(4, "little"))
            data += t
    if data:
        buffers.add(bytes(data))
    if not raws:
        return np.zeros((0, 2), U64)
    return np.frombuffer(b"".join(raws), "<u8").reshape(-1, 2).copy()


def gather(views: Any, buffers: Buffers, counts: Sequence[int] | None = None) -> Any:
    """The pieces of ``views`` (``(pieces, rows, 2)`` uint64: one column of pieces after
    another, as they are filled), row after row, as one Arrow Buffer; with ``counts``
    (rows per part), one Buffer per part instead (slices of the same memory)."""
    import pyarrow as pa

    k, n, _ = views.shape
    rows = np.empty((n, k), "V16")  # one 16-byte view per element: a plain transpose copy
    rows[...] = views.view("V16").reshape(k, n).T
    flat = rows.view(U64).reshape(-1, 2)
    bufs = [None, pa.py_buffer(flat), *(pa.py_buffer(b) for b in buffers.buffers)]
    text = pa.Array.from_buffers(pa.binary_view(), len(flat), bufs).cast(pa.large_binary())
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[text.offset :]
    data = text.buffers()[2]
    if counts is None:
        return data[int(offsets[0]) : int(offsets[len(flat)])]
    ends = np.cumsum(counts) * k  # k pieces per row
    cuts = offsets[np.concatenate([[0], ends])].tolist()
    return [data[a:b] for a, b in pairwise(cuts)]
