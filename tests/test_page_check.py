"""A database with damaged pages is found before a collection writes into it:
real files with real garbage pages; the full check below 64 MB, the sampled one above (forced
here on small files), and the real command stopping with exit code 5, writing nothing."""

from __future__ import annotations

import os
import random
import sqlite3
import struct
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from expirytrack_desktop.store import StoreCorruptError, open_database
from expirytrack_desktop.store.health import check_database, check_pages

PER = 2_000  # candles per contract
CONTRACTS = 30
MID_TS = 1700000000 + 60 * (PER // 2)  # a candle in the middle of each contract


def make_db(path: Path, *, free_pages: bool = False) -> Path:
    open_database(path).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as conn, conn:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO underlying(id, instrument_key) VALUES (1, 'NSE_INDEX|Nifty 50')")
        conn.execute(
            "INSERT INTO expiry(id, underlying_id, expiry_date) VALUES (1, 1, '2025-04-24')"
        )
        columns = [r[1] for r in conn.execute("PRAGMA table_info(candle)")]
        values = {"contract_id": "?2", "interval": "1", "ts": "1700000000 + 60 * k"}
        select = ", ".join(values.get(c, "100 + k % 7") for c in columns)
        for i in range(1, CONTRACTS + 1):
            conn.execute(
                "INSERT INTO contract(id, expired_key, expiry_id, contract_type) "
                "VALUES (?, ?, 1, 'CE')",
                (i, f"NSE_FO|{i}|24-04-2025"),
            )
            conn.execute(
                "WITH RECURSIVE s(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM s WHERE k < ?1) "
                f"INSERT INTO candle({', '.join(columns)}) SELECT {select} FROM s",
                (PER - 1, i),
            )
        if free_pages:
            conn.execute("CREATE TABLE scratch(x)")
            conn.executemany("INSERT INTO scratch VALUES (?)", [(b"\0" * 3000,)] * 50)
            conn.execute("DROP TABLE scratch")
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def pages_of(path: Path, table: str, kind: str = "leaf") -> list[int]:
    with closing(sqlite3.connect(path)) as conn, conn:
        rows = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno",
            (table, kind),
        ).fetchall()
    return [r[0] for r in rows]


def leaf_read_by(path: Path, query: str, tmp: Path) -> int:
    """The candle leaf page that ``query`` reads: the one whose damage makes it fail (found
    by damaging copies; the leaves are tried in key order, around where it should be)."""
    with closing(sqlite3.connect(path)) as conn, conn:
        leaves = [
            r[0]
            for r in conn.execute(
                "SELECT pageno FROM dbstat WHERE name = 'candle' AND pagetype = 'leaf' "
                "ORDER BY path"
            )
        ]
    for page in leaves:
        copy = tmp / f"probe-{page}.sqlite3"
        copy.write_bytes(path.read_bytes())
        damage(copy, page)
        try:
            with closing(sqlite3.connect(copy)) as probe:
                probe.execute(query).fetchall()
        except sqlite3.DatabaseError:
            return page
        finally:
            copy.unlink()
    raise AssertionError(f"no single leaf page is read by {query}")


def damage(path: Path, page: int) -> None:
    rng = random.Random(page)
    with open(path, "r+b") as f:
        f.seek((page - 1) * 4096)
        f.write(bytes(rng.randrange(256) for _ in range(4096)))


def check(path: Path, **options) -> str:
    with open_database(path) as db:
        return check_database(db, **options)


def test_a_clean_file_passes_both_ways(tmp_path):
    path = make_db(tmp_path / "ok.sqlite3", free_pages=True)
    assert check(path) == "full"
    with open_database(path) as db:
        seen = []
        for _ in range(5):
            assert check_database(db, again=True, full_check_bytes=0, page_budget=200) == "sampled"
            seen.append(db.kv_get("page_check_next_contract"))
    assert seen[0] != seen[1] and "0" in seen  # the slice moves on, then wraps round


def test_full_check_finds_a_damaged_page_in_the_middle(tmp_path):
    path = make_db(tmp_path / "mid.sqlite3")
    leaves = pages_of(path, "candle")
    damage(path, leaves[len(leaves) // 2])
    with pytest.raises(StoreCorruptError) as err:
        check(path)
    message = str(err.value)
    assert message.startswith(f"{path} has damaged pages (")
    assert "nothing was written" in message and "expirytrack verify" in message
    assert "\n" not in message


def test_sampled_check_finds_damage_where_a_run_writes(tmp_path):
    path = make_db(tmp_path / "end.sqlite3")
    last = "SELECT * FROM candle WHERE contract_id = 17 ORDER BY interval DESC, ts DESC LIMIT 1"
    damage(path, leaf_read_by(path, last, tmp_path))  # where contract 17's next candles go
    with pytest.raises(StoreCorruptError, match="has damaged pages"):
        check(path, full_check_bytes=0, page_budget=1)


def test_sampled_check_finds_a_damaged_free_list(tmp_path):
    path = make_db(tmp_path / "free.sqlite3", free_pages=True)
    with open(path, "rb") as f:
        (trunk,) = struct.unpack(">I", f.read(100)[32:36])
    assert trunk > 0
    with open(path, "r+b") as f:  # the trunk now lists pages far beyond the file
        f.seek((trunk - 1) * 4096)
        f.write(struct.pack(">IIII", 0, 2, 999_999, 999_998))
    with pytest.raises(StoreCorruptError, match="free-page list"):
        check(path, full_check_bytes=0)


def test_sampled_check_reads_small_tables_whole(tmp_path):
    path = make_db(tmp_path / "small.sqlite3")
    (page,) = pages_of(path, "contract")
    damage(path, page)
    with pytest.raises(StoreCorruptError, match="has damaged pages"):
        check(path, full_check_bytes=0)


def test_sampled_runs_read_the_whole_candle_table_in_turn(tmp_path):
    """A damaged page in the middle of a contract's candles: missed by the end probes, found
    by the rotating slice before it has gone round once."""
    path = make_db(tmp_path / "scrub.sqlite3")
    middle = f"SELECT * FROM candle WHERE contract_id = 21 AND interval = 1 AND ts = {MID_TS}"
    damage(path, leaf_read_by(path, middle, tmp_path))  # inside contract 21
    found_on = None
    with open_database(path) as db:
        for run in range(1, CONTRACTS + 1):
            try:
                check_database(db, again=True, full_check_bytes=0, page_budget=40)  # ~2 contracts
            except StoreCorruptError:
                found_on = run
                break
    assert found_on is not None and found_on > 1  # not by the end probes: by the slice


def test_collect_into_a_damaged_database_stops_with_exit_5_and_writes_nothing(tmp_path):
    path = make_db(tmp_path / "collect.sqlite3")
    leaves = pages_of(path, "candle")
    damage(path, leaves[len(leaves) // 3])
    before = path.read_bytes()
    env = dict(os.environ, EXPIRYTRACK_HOME=str(tmp_path / "home"), PYTHONPATH=os.getcwd())
    args = ["collect", "--demo", "-i", "NIFTY", "--all-expiries", "--db", str(path)]
    done = subprocess.run(
        [sys.executable, "-m", "expirytrack_desktop.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 5, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"error: {path} has damaged pages")
    assert "Job " not in done.stdout + done.stderr
    assert path.read_bytes() == before  # no job row, no candle, not even a changed header


def test_check_pages_on_a_bare_connection(tmp_path):
    path = make_db(tmp_path / "bare.sqlite3")
    with closing(sqlite3.connect(path)) as conn, conn:
        assert check_pages(conn, path) == "full"
        assert check_pages(conn, path, full_check_bytes=0) == "sampled"


def test_the_engine_checks_before_its_first_job(tmp_path):
    """The window's path: a Collector on a database opened without a check (the engine
    process opens it once) refuses its first job before any request or job row."""
    import asyncio

    from expirytrack_desktop.collect import Selection
    from tests.collect_helpers import NIFTY, make_app, make_client, make_collector

    path = make_db(tmp_path / "engine.sqlite3")
    leaves = pages_of(path, "candle")
    damage(path, leaves[len(leaves) // 2])
    app = make_app()
    expiry = app.market.expiries(NIFTY)[-1]

    async def start() -> int:
        db = open_database(path)
        client = make_client(app)
        try:
            with pytest.raises(StoreCorruptError, match="has damaged pages"):
                await make_collector(db, client).start(Selection([NIFTY], [expiry]))
            return client.requests_sent
        finally:
            await client.aclose()
            db.close()

    assert asyncio.run(start()) == 0
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT count(*) FROM job").fetchone() == (0,)
