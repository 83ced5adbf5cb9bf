"""What to export: the options of the wizard's steps 1-3 and the CLI flags, in one dataclass."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Literal

from expirytrack_desktop.export.errors import EmptySelectionError, InvalidOptionsError
from expirytrack_desktop.export.symbols import format_expiry
from expirytrack_desktop.upstox.models import INTERVAL_MINUTES

ExportFormat = Literal["csv", "json", "zip", "parquet", "historify"]
FORMATS: tuple[str, ...] = ("csv", "json", "zip", "parquet", "historify")
CONTRACT_TYPES: tuple[str, ...] = ("CE", "PE", "FUT")
FILE_PREFIX = "OpenAlgo_ExpiryTrack"
# compression per format: the first is the default. CSV files (single or per contract) may
# be gzip or zstd; Parquet chooses its page codec; ZIP always deflates its members.
COMPRESSIONS: dict[str, tuple[str, ...]] = {
    "csv": ("none", "gzip", "zstd"),
    "parquet": ("zstd", "snappy", "gzip", "lz4", "brotli", "none"),
}
CSV_SUFFIX = {"none": "", "gzip": ".gz", "zstd": ".zst"}
LEVELS = {"gzip": (1, 9), "zstd": (1, 22), "brotli": (0, 11)}  # codecs that take a level

# CSV columns. The export document's ten, unchanged in name and order, then OpenAlgo's
# exchange (NFO / BFO), then the contract's metadata columns (``include_metadata``).
DEFAULT_CSV_COLUMNS: tuple[str, ...] = (
    "openalgo_symbol", "date", "time", "timestamp",
    "open", "high", "low", "close", "volume", "oi",
)  # fmt: skip
EXCHANGE_COLUMN = "exchange"
META_CSV_COLUMNS: tuple[str, ...] = (
    "underlying", "expiry", "strike", "option_type", "trading_symbol", "lot_size",
)  # fmt: skip
ALL_CSV_COLUMNS: tuple[str, ...] = (*DEFAULT_CSV_COLUMNS, EXCHANGE_COLUMN, *META_CSV_COLUMNS)
CsvColumns = tuple[str, ...]
"""A custom CSV column list: names from :data:`ALL_CSV_COLUMNS`, each once, in the order
they are written. ``ExportOptions.csv_columns = None`` means the default columns."""


def default_csv_columns(include_metadata: bool) -> CsvColumns:
    """The columns written when no custom list is given (today's header, byte for byte)."""
    return (*DEFAULT_CSV_COLUMNS, EXCHANGE_COLUMN) + (META_CSV_COLUMNS if include_metadata else ())


def parse_csv_columns(text: str) -> CsvColumns:
    """``"openalgo_symbol, Date,time"`` -> a checked tuple (:func:`check_csv_columns`)."""
    names = (n.strip().lower() for n in text.split(","))
    return check_csv_columns(tuple(n for n in names if n))


def check_csv_columns(columns: CsvColumns) -> CsvColumns:
    """Raise :class:`InvalidOptionsError` on an empty list, an unknown name (the message
    lists the valid ones) or a name given twice; returns ``columns`` unchanged."""
    if not columns:
        raise InvalidOptionsError(
            "no CSV column chosen; choose from: " + ", ".join(ALL_CSV_COLUMNS)
        )
    unknown = [c for c in columns if c not in ALL_CSV_COLUMNS]
    if unknown:
        raise InvalidOptionsError(
            f"unknown CSV column {unknown[0]!r}; the columns are: " + ", ".join(ALL_CSV_COLUMNS)
        )
    seen: set[str] = set()
    for name in columns:
        if name in seen:
            raise InvalidOptionsError(f"CSV column {name!r} is given twice")
        seen.add(name)
    return columns


@dataclass(frozen=True, slots=True)
class ExportOptions:
    """An export selection. Frozen so a running export cannot see it change under it.

    - ``underlyings``: instrument keys (``"NSE_INDEX|Nifty 50"``); resolve symbols such as
      ``NIFTY`` first with :func:`expirytrack_desktop.export.query.resolve_underlyings`.
    - ``expiries``: ``None`` = every expiry of those underlyings; an empty tuple selects nothing.
    - ``strike_min`` / ``strike_max``: inclusive, applied to options only (futures have no
      strike and stay selected when ``"FUT"`` is in ``contract_types``).
    - time range: all (default), ``last_days`` (the last N calendar days in IST up to today,
      today included), or ``date_from`` / ``date_to`` (inclusive IST dates, either may be open).
    - ``per_contract``: one file per contract in a folder (csv, json, parquet); ZIP always holds
      one CSV per contract.
    - ``format="historify"``: OpenAlgo Historify's layout (see :mod:`.historify`).
    - ``parquet_partitioned``: a hive-style folder
      ``underlying=X/expiry=YYYY-MM-DD/part-0.parquet``.
    - ``csv_columns``: CSV (and ZIP member) columns in the order written, any of
      :data:`ALL_CSV_COLUMNS` once each; ``None`` = the default columns (plus the metadata
      ones with ``include_metadata``). A custom list names metadata columns itself, so it
      does not go with ``include_metadata``.
    """

    underlyings: tuple[str, ...]
    expiries: tuple[date, ...] | None = None
    contract_types: tuple[str, ...] = CONTRACT_TYPES
    strike_min: float | None = None
    strike_max: float | None = None
    last_days: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    interval: str = "1minute"
    include_metadata: bool = False
    per_contract: bool = False
    format: ExportFormat = "csv"
    parquet_partitioned: bool = False
    compression: str | None = None  # None: the format's default (COMPRESSIONS)
    compression_level: int | None = None  # None: the codec's default
    csv_columns: CsvColumns | None = None  # None: default_csv_columns(include_metadata)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # UI notes; not used

    @property
    def interval_minutes(self) -> int:
        return INTERVAL_MINUTES[self.interval]

    @property
    def output_is_folder(self) -> bool:
        """True when the output is a folder (one file per contract, or a parquet dataset)."""
        if self.format == "zip":
            return False
        if self.format == "historify":  # a folder of files (or a database, see .historify)
            return True
        return self.per_contract or (self.format == "parquet" and self.parquet_partitioned)

    @property
    def extension(self) -> str:
        """File extension with its dot (``.csv.gz`` ...), or "" for a folder output."""
        if self.output_is_folder:
            return ""
        return "." + self.format + self.file_suffix

    @property
    def codec(self) -> str:
        """The compression in force: the one chosen, or the format's default."""
        choices = COMPRESSIONS.get(self.format, ("none",))
        return self.compression or choices[0]

    @property
    def file_suffix(self) -> str:
        """What a compressed CSV file adds after ``.csv`` (``.gz``, ``.zst``)."""
        return CSV_SUFFIX.get(self.codec, "") if self.format == "csv" else ""

    def validate(self) -> None:
        """Raise :class:`InvalidOptionsError` / :class:`EmptySelectionError` on bad options."""
        if self.format not in FORMATS:
            raise InvalidOptionsError(f"unknown format {self.format!r}; use one of {FORMATS}")
        if self.interval not in INTERVAL_MINUTES:
            raise InvalidOptionsError(f"unknown interval {self.interval!r}")
        if not self.underlyings:
            raise EmptySelectionError("no instrument selected")
        if self.expiries is not None and not self.expiries:
            raise EmptySelectionError("no expiry selected")
        if not self.contract_types:
            raise EmptySelectionError("no contract type selected (CE, PE, FUT)")
        bad = [t for t in self.contract_types if t not in CONTRACT_TYPES]
        if bad:
            raise InvalidOptionsError(f"unknown contract type {bad[0]!r}; use CE, PE or FUT")
        lo, hi = self.strike_min, self.strike_max
        if lo is not None and hi is not None and lo > hi:
            raise InvalidOptionsError(f"strike range is empty: {lo:g} > {hi:g}")
        if self.last_days is not None:
            if self.date_from is not None or self.date_to is not None:
                raise InvalidOptionsError("give either last N days or a from/to range, not both")
            if self.last_days < 1:
                raise InvalidOptionsError("last N days needs N >= 1")
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise InvalidOptionsError(f"date range is empty: {self.date_from} > {self.date_to}")
        if self.parquet_partitioned and self.format != "parquet":
            raise InvalidOptionsError(
                f"a partitioned dataset is written in Parquet only, not {_KIND[self.format]}"
            )
        if self.format == "parquet" and self.parquet_partitioned and self.per_contract:
            raise InvalidOptionsError("choose per-contract files or a partitioned dataset")
        self._validate_compression()
        self._validate_columns()
        if self.format == "historify" and self.interval not in ("1minute", "day"):
            raise InvalidOptionsError(
                f"Historify stores only 1-minute and daily candles, not {self.interval!r}"
                " (it builds 5m, 15m, 1h ... from 1m)"
            )

    def _validate_compression(self) -> None:
        choices = COMPRESSIONS.get(self.format)
        if self.compression is not None and self.compression not in (choices or ()):
            if choices is None:
                raise InvalidOptionsError(f"{self.format} has no compression choice")
            raise InvalidOptionsError(
                f"{self.format} compression is one of {', '.join(choices)}, "
                f"not {self.compression!r}"
            )
        if self.compression_level is not None:
            bounds = LEVELS.get(self.codec)
            if bounds is None:
                raise InvalidOptionsError(f"{self.codec} takes no compression level")
            lo, hi = bounds
            if not lo <= self.compression_level <= hi:
                raise InvalidOptionsError(f"{self.codec} level is {lo}..{hi}")

    def _validate_columns(self) -> None:
        if self.csv_columns is None:
            return
        if self.format not in ("csv", "zip"):
            raise InvalidOptionsError(
                f"custom columns are for CSV and ZIP exports, not {self.format}"
            )
        if self.include_metadata:
            raise InvalidOptionsError(
                "with custom columns, name the metadata columns among them instead of"
                " asking for metadata: " + ", ".join(META_CSV_COLUMNS)
            )
        check_csv_columns(self.csv_columns)

    @property
    def columns_in_force(self) -> CsvColumns:
        """The CSV columns this export writes, in order."""
        if self.csv_columns is not None:
            return self.csv_columns
        return default_csv_columns(self.include_metadata)

    @property
    def custom_columns(self) -> bool:
        """True when the CSV columns differ from the default ones (another writer is used)."""
        return self.csv_columns is not None and self.csv_columns != default_csv_columns(False)

    def date_range(self, today: date) -> tuple[date | None, date | None]:
        """Inclusive IST dates (None = open end); ``today`` is the IST date of the clock."""
        if self.last_days is not None:
            return today - timedelta(days=self.last_days - 1), today
        return self.date_from, self.date_to

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict, stored in ``export_history.selection``."""
        d = asdict(self)
        d.pop("extra")
        if self.expiries is not None:
            d["expiries"] = [e.isoformat() for e in self.expiries]
        for k in ("date_from", "date_to"):
            if d[k] is not None:
                d[k] = d[k].isoformat()
        d["underlyings"] = list(self.underlyings)
        d["contract_types"] = list(self.contract_types)
        if self.csv_columns is not None:
            d["csv_columns"] = list(self.csv_columns)
        return d


def options_from_json(d: dict[str, Any]) -> ExportOptions:
    """Inverse of :meth:`ExportOptions.to_json_dict` (presets, history); unknown keys are
    ignored, missing ones take their defaults; raises InvalidOptionsError on bad values."""
    known = {f for f in ExportOptions.__dataclass_fields__ if f != "extra"}
    kw = {k: v for k, v in d.items() if k in known}
    try:
        kw["underlyings"] = tuple(kw.get("underlyings") or ())
        if kw.get("expiries") is not None:
            kw["expiries"] = tuple(date.fromisoformat(e) for e in kw["expiries"])
        for k in ("date_from", "date_to"):
            if kw.get(k) is not None:
                kw[k] = date.fromisoformat(kw[k])
        if "contract_types" in kw:
            kw["contract_types"] = tuple(kw["contract_types"])
        if kw.get("csv_columns") is not None:
            kw["csv_columns"] = tuple(kw["csv_columns"])
        options = ExportOptions(**kw)
    except (TypeError, ValueError) as exc:
        raise InvalidOptionsError(f"not a valid export selection: {exc}") from None
    return options


def instrument_label(instrument_key: str, symbol: str | None = None) -> str:
    """``"NSE_INDEX|Nifty 50" -> "Nifty_50"``: the name part, safe in file names.

    A stock's key names its ISIN (``NSE_EQ|INE205A01025``), so its symbol is used instead.
    """
    segment, _, name = instrument_key.rpartition("|")
    if segment.endswith("_EQ") and symbol:
        name = symbol
    return re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "Instrument"


def default_filename(options: ExportOptions, now: datetime, *, symbol: str | None = None) -> str:
    """``OpenAlgo_ExpiryTrack_[Instrument|All][_EXPIRY]_[YYYYMMDD]_[HHMMSS].[ext]``.

    ``EXPIRY`` when expiries are chosen: ``24APR25``, or ``17APR25-24APR25`` for several.

    Instrument when exactly one underlying is selected, else ``All``; ``symbol`` (its
    underlying symbol, e.g. VEDL) names a stock better than its key. ``now`` is shown as
    given (pass local time). Folder outputs get the same name without an extension.
    """
    if len(options.underlyings) == 1:
        label = instrument_label(options.underlyings[0], symbol)
    else:
        label = "All"
    if options.expiries:  # the expiry chosen (or the first and last): 24APR25, 17APR25-24APR25
        first, last = min(options.expiries), max(options.expiries)
        span = _expiry_tag(first) + ("" if first == last else "-" + _expiry_tag(last))
        label = f"{label}_{span}"
    return f"{FILE_PREFIX}_{label}_{now:%Y%m%d}_{now:%H%M%S}{options.extension}"


def _expiry_tag(d: date) -> str:
    return format_expiry(d)


# What a file's name says it holds (longest first): the readers people use go by it (pandas,
# Polars and DuckDB decompress ".gz"/".zst" and pick a reader by the extension).
NAMED_AS: tuple[tuple[str, ExportFormat, str | None], ...] = (
    (".csv.gz", "csv", "gzip"),
    (".csv.zst", "csv", "zstd"),
    (".csv", "csv", "none"),
    (".json", "json", None),
    (".zip", "zip", None),
    (".parquet", "parquet", None),
    (".duckdb", "historify", None),
    (".ddb", "historify", None),
)
ONE_FILE = ("zip", "historify")  # named so, a file whatever else is chosen
_KIND = {"csv": "CSV", "json": "JSON", "zip": "ZIP", "parquet": "Parquet",
         "historify": "DuckDB (Historify)", "none": "plain CSV", "gzip": "gzip-compressed CSV",
         "zstd": "zstd-compressed CSV"}  # fmt: skip


def options_for_name(
    options: ExportOptions, name: str, *, format_chosen: bool, compression_chosen: bool
) -> ExportOptions:
    """The options for an output file named ``name``: its extension gives the format and the
    CSV compression where they were not chosen (``-o x.parquet`` writes Parquet), and a name
    that contradicts a choice is refused (a gzip stream named ``x.csv``, CSV text named
    ``x.parquet``: readers that go by the name cannot open them). A name with another
    extension (``x.txt``) is left as the user's own. A folder output is named for its files
    the same way (``-o x.parquet --per-contract``: Parquet files, as Spark names a dataset;
    ``-o x.zip --per-contract``: the ZIP of one CSV per contract); Historify's folder is
    named freely (``.duckdb`` makes it a database load)."""
    said = next(((s, f, c) for s, f, c in NAMED_AS if name.lower().endswith(s)), None)
    if said is None or options.format == "historify":
        return options
    suffix, fmt, codec = said
    if fmt != options.format:
        if format_chosen:
            raise _contradiction(name, suffix, _KIND[fmt], options, "format", fmt in ONE_FILE)
        options = replace(options, format=fmt)
        if options.output_is_folder and not options.per_contract:  # Historify: a folder
            return options
    if codec is None or options.codec == codec:
        return options
    if compression_chosen:
        raise _contradiction(name, suffix, _KIND[codec], options, "compression")
    return replace(options, compression=None if codec == "none" else codec)


def _contradiction(
    name: str,
    suffix: str,
    kind: str,
    options: ExportOptions,
    choice: str,
    one_file: bool = False,
) -> InvalidOptionsError:
    """``one_file``: the name says one file whatever the options (a ZIP, a database)."""
    folder = options.output_is_folder
    better = name[: len(name) - len(suffix)] + (
        "." + options.format + options.file_suffix if folder else options.extension
    )
    said = f"a folder of {kind} files" if folder and not one_file else f"a {kind} file"
    return InvalidOptionsError(
        f"{name} is the name of {said},"
        f" but the {choice}"
        f" chosen writes {_KIND[options.codec if choice == 'compression' else options.format]}:"
        f" name it {better}"
    )
