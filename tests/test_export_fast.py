"""The Arrow path (ADBC reader + Arrow formatting) against the row-by-row reference writer:
the same bytes for every CSV shape, the same Parquet tables, the same groups."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from contextlib import closing
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from expirytrack_desktop.export.api import ExportOptions, run_export
from expirytrack_desktop.export.arrow_read import ArrowCandleSource, adbc_available, python_groups
from expirytrack_desktop.export.candles import CandleReader, price_text
from expirytrack_desktop.export.db import reading
from expirytrack_desktop.export.query import TS_MAX, TS_MIN, select_contracts
from tests._export_db import build_db

pytestmark = pytest.mark.skipif(not adbc_available(), reason="adbc-driver-sqlite not installed")

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")
NOISY = [2114.2999999999997, 0.1 + 0.2, -0.0, 1e-5, 0.0001, 1e15, 1e16, -5.25,
         123456789012.35, 99999999999999.99, 5e-324, 0.0, 1.0, 2115.0]  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def noisy_db(db: Path) -> Path:
    with closing(sqlite3.connect(db)) as conn, conn:
        keys = conn.execute("SELECT contract_id, ts FROM candle WHERE interval = 1").fetchall()
        for i, (cid, ts) in enumerate(keys):
            # prices that are not whole paise live in the store's side table (store/prices.py)
            conn.execute(
                "UPDATE candle SET open = NULL, high = NULL, low = NULL, close = NULL, "
                "volume = ?, oi = ? WHERE contract_id = ? AND interval = 1 AND ts = ?",
                (-i, 2**62 + i, cid, ts),
            )
            conn.execute(
                "INSERT OR REPLACE INTO candle_exact VALUES (?, 1, ?, ?, ?, ?, ?)",
                (cid, ts, NOISY[i % len(NOISY)], NOISY[(i + 3) % len(NOISY)],
                 NOISY[(i + 5) % len(NOISY)], NOISY[(i + 7) % len(NOISY)]),
            )  # fmt: skip
    return db


def both(
    db: Path, opts: ExportOptions, tmp_path: Path, name: str, group_rows: int = 5
) -> tuple[Path, Path]:
    fast, ref = tmp_path / f"fast_{name}", tmp_path / f"ref_{name}"
    run_export(db, opts, fast, record_history=False, chunk_rows=group_rows)
    run_export(db, opts, ref, record_history=False, arrow_reader=False, chunk_rows=5)
    return fast, ref


def folder_bytes(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*.csv"))}


@pytest.mark.parametrize("noisy", [False, True])
@pytest.mark.parametrize(
    "opts",
    [
        ExportOptions(ALL),
        ExportOptions(ALL, include_metadata=True),
        ExportOptions(ALL, per_contract=True, include_metadata=True),
        ExportOptions(ALL[1:], contract_types=("FUT", "CE")),
    ],
    ids=["csv", "csv-metadata", "per-contract", "subset"],
)
@pytest.mark.parametrize("group_rows", [5, 50_000])
def test_fast_csv_is_byte_identical_to_the_reference(db, tmp_path, opts, noisy, group_rows):
    if noisy:
        noisy_db(db)
    name = "x.csv" if not opts.per_contract else "d"
    fast, ref = both(db, opts, tmp_path, name, group_rows)
    got, want = folder_bytes(fast), folder_bytes(ref)
    assert got == want
    assert sum(len(v) for v in want.values()) > 500


@pytest.mark.parametrize("noisy", [False, True])
@pytest.mark.parametrize(
    "opts",
    [
        ExportOptions(ALL, format="json"),
        ExportOptions(ALL, format="json", include_metadata=True),
        ExportOptions(ALL, format="json", per_contract=True),
        ExportOptions(ALL[:1], format="json", contract_types=("CE",)),
    ],
    ids=["json", "json-metadata", "per-contract", "one-underlying"],
)
@pytest.mark.parametrize("group_rows", [5, 50_000])
def test_fast_json_is_byte_identical_to_the_reference(db, tmp_path, opts, noisy, group_rows):
    """Empty contracts (NIFTY24APR2520450CE) between others and at a group's end included."""
    from datetime import UTC, datetime

    if noisy:
        noisy_db(db)
    clock = lambda: datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # noqa: E731  exported_at
    fast, ref = tmp_path / "fast", tmp_path / "ref"
    for path, arrow in ((fast, True), (ref, False)):
        run_export(db, opts, path, record_history=False, arrow_reader=arrow,
                   chunk_rows=group_rows, clock=clock)  # fmt: skip

    def read(p):
        return (
            {str(q.relative_to(p)): q.read_bytes() for q in sorted(p.rglob("*"))}
            if p.is_dir()
            else {"": p.read_bytes()}
        )

    got, want = read(fast), read(ref)
    assert got == want
    assert all(json.loads(v) for v in want.values())


def test_fast_zip_members_are_byte_identical(db, tmp_path):
    fast, ref = both(db, ExportOptions(ALL, format="zip"), tmp_path, "x.zip")
    with zipfile.ZipFile(fast) as a, zipfile.ZipFile(ref) as b:
        assert a.namelist() == b.namelist()
        for name in a.namelist():
            if name == "metadata.json":  # says when each export ran: the seconds may differ
                meta_a, meta_b = json.loads(a.read(name)), json.loads(b.read(name))
                assert meta_a.pop("exported_at") and meta_b.pop("exported_at")
                assert meta_a == meta_b
                continue
            assert a.read(name) == b.read(name)


@pytest.mark.parametrize("partitioned", [False, True])
def test_fast_parquet_equals_the_reference(db, tmp_path, partitioned):
    import pyarrow.dataset as ds

    noisy_db(db)
    opts = ExportOptions(ALL, format="parquet", include_metadata=True,
                         parquet_partitioned=partitioned)  # fmt: skip
    fast, ref = both(db, opts, tmp_path, "p")
    a = ds.dataset(fast, format="parquet", partitioning="hive").to_table()
    b = ds.dataset(ref, format="parquet", partitioning="hive").to_table()
    assert a.num_rows == b.num_rows == 32
    assert a.to_pylist() == b.to_pylist()


def test_groups_come_in_export_order(db):
    with reading(db) as conn:
        contracts = select_contracts(conn, ExportOptions(ALL))
        ref = list(python_groups(CandleReader(conn, 1, TS_MIN, TS_MAX), contracts, 10))
    # ids are not in symbol order (100, 101, ... vs NIFTY17APR... first): the reader reorders
    assert [c.id for c in contracts] != sorted(c.id for c in contracts)
    fast = list(ArrowCandleSource(db, 1, TS_MIN, TS_MAX, 10).groups(contracts))
    assert [[c.id for c in g.contracts] for g in fast] == [[c.id for c in g.contracts] for g in ref]
    for f, r in zip(fast, ref, strict=True):
        assert f.counts == r.counts and f.table.equals(r.table)


def test_reading_stops_when_the_writer_stops(db):
    with reading(db) as conn:
        contracts = select_contracts(conn, ExportOptions(ALL))
    # closing: the reader thread is told to stop and joined, whatever the assert says
    with closing(ArrowCandleSource(db, 1, TS_MIN, TS_MAX, 1).groups(contracts)) as groups:
        first = next(groups)
        assert first.rows > 0


def _group(paise, volume, oi, ts, exact=None, contract=None):
    import numpy as np

    from expirytrack_desktop.export.arrow_read import CandleGroup
    from expirytrack_desktop.export.query import SelectedContract

    c = contract or SelectedContract(
        7, "NIFTY24APR2520400CE", "NSE_INDEX|Nifty 50", "NIFTY", "Nifty_50", "2025-04-24",
        "CE", 20400.0, 'NIFTY 20400 CE, "24 APR"', 75, "NFO",
    )  # fmt: skip
    n = len(ts)
    return CandleGroup(
        [c], [n], np.array(ts, np.int64), np.array(paise, np.int64).reshape(4, n),
        np.array(volume, np.int64), np.array(oi, np.int64), dict(exact or {}),
    )  # fmt: skip


def _reference_lines(group, columns):
    """Row by row with the reference writer's own pieces, for any column order."""
    from expirytrack_desktop.export.csv_fast import PRICE_INDEX, contract_field
    from expirytrack_desktop.timeutil import ist_iso

    c = group.contracts[0]
    out = []
    for r in range(group.rows):
        iso = ist_iso(int(group.ts[r]))
        cells = []
        for name in columns:
            if name in PRICE_INDEX:
                i = PRICE_INDEX[name]
                v = group.exact[r][i] if r in group.exact else int(group.paise[i][r]) / 100
                cells.append(price_text(v))
            elif name in ("volume", "oi"):
                cells.append(str(int(getattr(group, name)[r])))
            elif name in ("date", "time", "timestamp"):
                cells.append({"date": iso[:10], "time": iso[11:19], "timestamp": iso}[name])
            else:
                cells.append(contract_field(name, c))
        out.append(",".join(cells) + "\n")
    return "".join(out).encode()


INT64 = st.integers(-(2**63), 2**63 - 1)
PAISE = st.one_of(st.integers(0, 10**9), st.integers(-(10**15), 10**15), INT64)
MINUTES = st.integers(29_000_000, 29_000_000 + 1440 * 70).map(lambda m: m * 60)  # IST minutes
TS = st.one_of(st.integers(1_600_000_000, 1_800_000_000), st.integers(-(2**34), 2**37), MINUTES)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_csv_text_matches_the_reference_for_any_values(data):
    """Any whole paise (negative, huge: through price_text), prices not in whole paise (any
    float), any volume/oi and times from 1425 to 6325: the reference's text, in any order."""
    from expirytrack_desktop.export.csv_fast import (
        CONTRACT_COLUMNS,
        ROW_COLUMNS,
        CsvFormatter,
        default_columns,
    )

    n = data.draw(st.integers(1, 30))
    ts = data.draw(st.sampled_from([TS, MINUTES]))  # all whole minutes: one piece per row
    rows = st.lists(st.tuples(PAISE, PAISE, PAISE, PAISE, INT64, INT64, ts), min_size=n,
                    max_size=n)  # fmt: skip
    values = data.draw(rows)
    exact = data.draw(
        st.dictionaries(st.integers(0, n - 1), st.tuples(*[st.floats(allow_nan=False)] * 4))
    )
    paise = [[v[i] for v in values] for i in range(4)]
    group = _group(paise, [v[4] for v in values], [v[5] for v in values],
                   [v[6] for v in values], exact)  # fmt: skip
    names = list(ROW_COLUMNS + CONTRACT_COLUMNS)
    columns = data.draw(
        st.one_of(
            st.sampled_from([default_columns(False), default_columns(True)]),
            st.lists(st.sampled_from(names), min_size=1, max_size=20),
        )
    )
    got = bytes(CsvFormatter(columns).lines(group))
    assert got == _reference_lines(group, columns)


def test_unknown_csv_columns_are_refused():
    from expirytrack_desktop.export.csv_fast import CsvFormatter

    with pytest.raises(ValueError, match="unknown CSV column 'bid'"):
        CsvFormatter(["openalgo_symbol", "bid"])


def test_a_caller_connection_is_read_row_by_row(db, tmp_path):
    with closing(sqlite3.connect(db)) as conn:
        run_export(conn, ExportOptions(ALL), tmp_path / "c.csv", record_history=False)
    run_export(db, ExportOptions(ALL), tmp_path / "f.csv", record_history=False)
    assert (tmp_path / "c.csv").read_bytes() == (tmp_path / "f.csv").read_bytes()
    assert io.BytesIO((tmp_path / "c.csv").read_bytes()).getvalue().count(b"\n") == 33


def test_a_database_error_in_the_reader_is_one_line(db, tmp_path):
    from expirytrack_desktop.export.api import DatabaseError

    with reading(db) as conn:
        contracts = select_contracts(conn, ExportOptions(ALL))
    source = ArrowCandleSource(db, 1, TS_MIN, TS_MAX, 10)
    db.write_bytes(b"not a database any more" * 100)  # damaged after planning
    with pytest.raises(DatabaseError) as info:
        list(source.groups(contracts))
    assert str(info.value).startswith("cannot read the database") and "\n" not in str(info.value)
