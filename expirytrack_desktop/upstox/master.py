"""Upstox's public instrument master: streamed download, gunzip, and the F&O underlyings in it.

The complete master is tens of MB compressed and hundreds uncompressed, so it is never held
whole: bytes are gunzipped as they arrive and fed to ijson's push parser, and only the few
facts kept per underlying survive a row. A master that is cut short, is not JSON or lacks a
field an F&O row needs is refused whole (:class:`MasterMalformed`); unknown fields are ignored.
No token is sent: the file is public.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import ijson  # type: ignore[import-untyped]

from expirytrack_desktop.settings import INSTRUMENT_MASTER_PATH

MASTER_PATH = INSTRUMENT_MASTER_PATH
FO_SEGMENTS = ("NSE_FO", "BSE_FO")
UNDERLYING_TYPES = ("INDEX", "EQUITY")
_NAME_SEGMENTS = ("NSE_EQ", "BSE_EQ", "NSE_INDEX", "BSE_INDEX")
_CHUNK = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"


class MasterError(Exception):
    """The master could not be used (one line, shown to the user)."""


class MasterUnreachable(MasterError):
    """No answer, a non-200 answer, or a download cut by the network."""


class MasterMalformed(MasterError):
    """The file arrived but is not a complete, well-formed master."""


@dataclass(frozen=True, slots=True)
class MasterUnderlying:
    """One F&O underlying as the master describes it."""

    key: str  # 'NSE_EQ|INE002A01018', 'NSE_INDEX|Nifty 50'
    symbol: str  # 'RELIANCE', 'NIFTY'
    name: str  # the cash or index row's name when listed, else the F&O rows' name
    kind: str  # 'INDEX' | 'EQUITY'
    segment: str  # 'NSE_FO' | 'BSE_FO'
    lot_size: int  # of its nearest-expiry contract
    # the most contracts one of its listed monthly expiries has (any expiry when it has no
    # monthly), and one of its weekly ones: what the estimate assumes for an expired expiry
    # whose contracts are not listed yet (0: not counted; weeklies list fewer strikes)
    contracts_per_expiry: int = 0
    contracts_per_weekly: int = 0


@dataclass(frozen=True, slots=True)
class MasterSummary:
    underlyings: tuple[MasterUnderlying, ...]
    rows: int  # rows read (every kind)
    fo_rows: int  # NSE_FO/BSE_FO rows among them
    compressed_bytes: int  # bytes read from the source


def _text(row: dict[str, Any], field: str, n: int) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise MasterMalformed(f"row {n} has no {field!r} text: the master is malformed")
    return value.strip()


def _whole(row: dict[str, Any], field: str, n: int) -> int:
    value = row.get(field)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MasterMalformed(f"row {n} has no numeric {field!r}: the master is malformed")
    if isinstance(value, float) and not value.is_integer():
        raise MasterMalformed(f"row {n} has a fractional {field!r}: the master is malformed")
    return int(value)


class _Inflater:
    """Source bytes (gzip, or plain JSON: told apart by the first two bytes) -> JSON bytes."""

    def __init__(self) -> None:
        self._gz: Any = None
        self.mode: str | None = None  # 'gzip' | 'json'
        self._head = b""
        self.compressed_bytes = 0

    def push(self, data: bytes) -> bytes:
        self.compressed_bytes += len(data)
        if self.mode is None:
            self._head += data
            if len(self._head) < 2:
                return b""
            data, self._head = self._head, b""
            self.mode = "gzip" if data[:2] == _GZIP_MAGIC else "json"
            if self.mode == "gzip":
                self._gz = zlib.decompressobj(wbits=31)
        if self.mode == "json":
            return data
        out = []
        while data:
            try:
                out.append(self._gz.decompress(data))
            except zlib.error as exc:
                raise MasterMalformed(f"the master is not valid gzip ({exc})") from None
            data = self._gz.unused_data
            if data:  # a further gzip member (concatenated files are valid gzip)
                self._gz = zlib.decompressobj(wbits=31)
        return b"".join(out)

    def end(self) -> bytes:
        """What is left; MasterMalformed when the source was empty or the gzip stream cut."""
        if self.mode is None:
            if not self._head:
                raise MasterMalformed("the master is empty")
            self.mode, rest = "json", self._head
            return rest
        if self.mode == "gzip" and not self._gz.eof:
            raise MasterMalformed("the master's gzip stream is truncated")
        return b""


class _Reader:
    """A file-like ``read(n)`` over source chunks, inflated; ijson pulls from it."""

    def __init__(self, inflater: _Inflater) -> None:
        self.inflater = inflater
        self._pending = b""
        self._done = False

    def _take(self, n: int) -> bytes:
        out, self._pending = self._pending[:n], self._pending[n:]
        return out

    def _got(self, chunk: bytes | None) -> None:
        if chunk is None:
            self._pending += self.inflater.end()
            self._done = True
        else:
            self._pending += self.inflater.push(chunk)


class _SyncReader(_Reader):
    def __init__(self, inflater: _Inflater, chunks: Iterable[bytes]) -> None:
        super().__init__(inflater)
        self._chunks = iter(chunks)

    def read(self, n: int) -> bytes:
        while not self._pending and not self._done:
            self._got(next(self._chunks, None))
        return self._take(n)


class _AsyncReader(_Reader):
    def __init__(self, inflater: _Inflater, chunks: AsyncIterator[bytes]) -> None:
        super().__init__(inflater)
        self._chunks = chunks

    async def read(self, n: int) -> bytes:
        while not self._pending and not self._done:
            try:
                self._got(await anext(self._chunks))
            except StopAsyncIteration:
                self._got(None)
        return self._take(n)


class MasterParser:
    """Reads a master's rows one at a time (ijson's C backend pulling from a streaming gunzip)
    and keeps, per F&O underlying, only its facts."""

    def __init__(self) -> None:
        self.inflater = _Inflater()
        self.rows = 0
        self.fo_rows = 0
        self._found: dict[str, list[Any]] = {}  # key -> [symbol, fo name, kind, seg, lot, expiry]
        self._per_expiry: Counter[tuple[str, int, bool]] = Counter()  # (key, expiry, weekly)
        self._names: dict[str, str] = {}  # cash/index instrument_key -> name

    def read(self, chunks: Iterable[bytes]) -> MasterSummary:
        try:
            for row in ijson.items(
                _SyncReader(self.inflater, chunks), "item", use_float=True, buf_size=_CHUNK
            ):
                self._row(row)
        except ijson.JSONError as exc:
            raise MasterMalformed(f"the master is not valid JSON ({exc})") from None
        return self.finish()

    async def read_async(self, chunks: AsyncIterator[bytes]) -> MasterSummary:
        try:
            async for row in ijson.items(
                _AsyncReader(self.inflater, chunks), "item", use_float=True, buf_size=_CHUNK
            ):
                self._row(row)
        except ijson.JSONError as exc:
            raise MasterMalformed(f"the master is not valid JSON ({exc})") from None
        return self.finish()

    def _row(self, row: Any) -> None:
        self.rows += 1
        n = self.rows
        if not isinstance(row, dict):
            raise MasterMalformed(f"row {n} is not an object: the master is malformed")
        segment = _text(row, "segment", n)
        _text(row, "instrument_key", n)
        if segment in _NAME_SEGMENTS:
            name = row.get("name")
            if isinstance(name, str) and name.strip():
                self._names[row["instrument_key"].strip()] = name.strip()
            return
        if segment not in FO_SEGMENTS:
            return  # MCX, currency, ...: not ours
        self.fo_rows += 1
        key = _text(row, "underlying_key", n)
        symbol = _text(row, "underlying_symbol", n)
        kind = _text(row, "underlying_type", n)
        _text(row, "instrument_type", n)
        lot = _whole(row, "lot_size", n)
        expiry = _whole(row, "expiry", n)
        if kind not in UNDERLYING_TYPES:
            return
        name = row.get("name") if isinstance(row.get("name"), str) else symbol
        self._per_expiry[(key, expiry, row.get("weekly") is True)] += 1
        seen = self._found.get(key)
        if seen is None:
            self._found[key] = [symbol, name, kind, segment, lot, expiry]
        elif expiry < seen[5]:
            seen[4], seen[5] = lot, expiry

    def finish(self) -> MasterSummary:
        """The summary; MasterMalformed when the master lists no F&O rows."""
        if not self._found:
            raise MasterMalformed(
                f"the master lists no {'/'.join(FO_SEGMENTS)} contracts of an index or stock "
                f"({self.rows} rows read): refused"
            )
        most: dict[tuple[str, bool], int] = {}
        for (key, _, weekly), n in self._per_expiry.items():
            most[(key, weekly)] = max(most.get((key, weekly), 0), n)
        found = tuple(
            MasterUnderlying(
                key,
                sym,
                self._names.get(key) or fo_name,
                kind,
                seg,
                lot,
                most.get((key, False)) or most.get((key, True), 0),
                most.get((key, True), 0),
            )
            for key, (sym, fo_name, kind, seg, lot, _) in sorted(self._found.items())
        )
        return MasterSummary(found, self.rows, self.fo_rows, self.inflater.compressed_bytes)


def parse_master(chunks: Iterable[bytes]) -> MasterSummary:
    """Parse a master given as byte chunks (a file, a test's bytes)."""
    return MasterParser().read(chunks)


def shown_url(url: str) -> str:
    """The URL without any ``user:password@`` part (for messages and the stored source)."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
    return url


def local_path(url: str) -> Path | None:
    """The file a URL names when it is a local path or a ``file:`` URL, else None."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        return None
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    return Path(url).expanduser()


def _file_chunks(path: Path) -> Iterable[bytes]:
    try:
        with path.open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk
    except OSError as exc:
        raise MasterUnreachable(
            f"cannot read the instrument master {path}: {exc.strerror}"
        ) from None


async def download_master(
    url: str, *, transport: httpx.AsyncBaseTransport | None = None, timeout: float = 60.0
) -> MasterSummary:
    """Fetch (or read, for a local path) and parse the master; MasterError on any problem."""
    path = local_path(url)
    if path is not None:
        return parse_master(_file_chunks(path))
    try:
        async with (
            httpx.AsyncClient(transport=transport, timeout=timeout, follow_redirects=True) as http,
            http.stream("GET", url) as resp,
        ):
            if resp.status_code != 200:
                raise MasterUnreachable(
                    f"the instrument master at {shown_url(url)} answered HTTP {resp.status_code}"
                )
            return await MasterParser().read_async(resp.aiter_bytes(_CHUNK))
    except httpx.HTTPError as exc:
        raise MasterUnreachable(
            f"cannot download the instrument master from {shown_url(url)} ({type(exc).__name__})"
        ) from None
