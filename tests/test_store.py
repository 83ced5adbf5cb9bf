"""The SQLite store: opening, migrations, clear errors, the hot write path, views, jobs."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from expirytrack_desktop.store import (
    StoreCorruptError,
    StoreFullError,
    StoreLockedError,
    StoreMissingError,
    StoreUnwritableError,
    StoreVersionError,
    latest_version,
    open_database,
)
from expirytrack_desktop.store import database as dbmod
from expirytrack_desktop.store.coverage import (
    chunk_range,
    merge_ranges,
    months_before,
    subtract_ranges,
)
from expirytrack_desktop.timeutil import ist_iso, parse_ts
from expirytrack_desktop.upstox.candles import decode_candles
from expirytrack_desktop.upstox.models import Contract

KEY = "NSE_INDEX|Nifty 50"
EXP = date(2025, 4, 24)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def contract(token: str, ctype: str = "CE", strike: float | None = 22000.0) -> Contract:
    return Contract(
        instrument_key=f"NSE_FO|{token}|24-04-2025",
        underlying_key=KEY,
        underlying_symbol="NIFTY",
        expiry=EXP,
        instrument_type=ctype,
        strike_price=strike,
        trading_symbol=f"NIFTY {strike} {ctype} 24 APR 25",
        exchange_token=token,
        lot_size=75,
        tick_size=5.0,  # paise, as the API sends it
        freeze_quantity=1800.0,
        minimum_lot=75,
        weekly=False if ctype != "FUT" else None,
        name="NIFTY",
        segment="NSE_FO",
        exchange="NSE",
        underlying_type="INDEX",
        raw={"instrument_key": f"NSE_FO|{token}|24-04-2025", "lot_size": 75},
    )


def candles(day: date, n: int, base: float = 100.0) -> list[tuple]:
    start = parse_ts(f"{day.isoformat()}T09:15:00+05:30")
    return [
        (start + 60 * i, base + i, base + i + 1, base + i - 1, base + i + 0.5, 10 * i, 1000 + i)
        for i in range(n)
    ]


@pytest.fixture
def db(tmp_path):
    d = open_database(tmp_path / "t.sqlite3", busy_timeout_ms=100)
    yield d
    d.close()


def seeded(db) -> int:
    db.upsert_underlying(KEY, symbol="NIFTY")
    db.store_contracts(
        KEY,
        EXP,
        [contract("1"), contract("2", "PE"), contract("3", "FUT", None)],
        openalgo=lambda c: f"OA-{c.exchange_token}",
        mark_fetched=True,
    )
    return next(c.id for c in db.contracts_for(KEY, EXP) if c.expired_key.startswith("NSE_FO|1|"))


# ---- opening ------------------------------------------------------------------------------------


def test_fresh_database_has_wal_foreign_keys_and_latest_version(tmp_path):
    path = tmp_path / "sub" / "fresh.sqlite3"
    with open_database(path) as db:
        assert db.schema_version == latest_version() >= 1
        assert db.execute("PRAGMA journal_mode")[0][0] == "wal"
        assert db.execute("PRAGMA foreign_keys")[0][0] == 1
        names = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='view'")}
        assert {"instruments", "expiries", "contracts", "historical_data", "job_status"} <= names
    assert not list(tmp_path.glob("sub/*.bak"))  # nothing to back up on creation


def test_missing_file_with_create_false(tmp_path):
    with pytest.raises(StoreMissingError):
        open_database(tmp_path / "nope.sqlite3", create=False)
    assert not (tmp_path / "nope.sqlite3").exists()


def test_newer_database_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "new.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE future_thing(x)")
        conn.execute("PRAGMA user_version = 99")
        conn.commit()
    before = sha(path)
    with pytest.raises(StoreVersionError, match="newer ExpiryTrack"):
        open_database(path)
    assert sha(path) == before
    assert not Path(str(path) + "-wal").exists()


def test_migration_backs_up_first(tmp_path, monkeypatch):
    path = tmp_path / "m.sqlite3"
    with open_database(path) as db:
        db.kv_set("marker", "v1")
    real = dbmod.load_migrations()
    extra = (len(real) + 1, f"{len(real) + 1:03d}_test.sql", "CREATE TABLE added(x);")
    monkeypatch.setattr(dbmod, "load_migrations", lambda: [*real, extra])
    with open_database(path) as db:
        assert db.schema_version == len(real) + 1
        assert db.execute("SELECT count(*) FROM added")[0][0] == 0
    backups = list(tmp_path.glob("m.sqlite3.v*.bak"))
    assert len(backups) == 1
    with closing(sqlite3.connect(backups[0])) as old:
        assert old.execute("PRAGMA user_version").fetchone()[0] == len(real)
        assert old.execute("SELECT value FROM kv WHERE key='marker'").fetchone()[0] == "v1"


def test_failed_migration_leaves_previous_version(tmp_path, monkeypatch):
    path = tmp_path / "m.sqlite3"
    open_database(path).close()
    real = dbmod.load_migrations()
    bad = (len(real) + 1, "002_bad.sql", "CREATE TABLE ok1(x); THIS IS NOT SQL;")
    monkeypatch.setattr(dbmod, "load_migrations", lambda: [*real, bad])
    with pytest.raises(Exception, match=r"002_bad\.sql"):
        open_database(path)
    monkeypatch.undo()
    with open_database(path) as db:
        assert db.schema_version == len(real)
        assert not db.execute("SELECT name FROM sqlite_master WHERE name='ok1'")


def test_migrations_load_as_package_resources():
    migs = dbmod.load_migrations()
    assert [v for v, _, _ in migs] == list(range(1, len(migs) + 1))
    assert "CREATE TABLE candle" in migs[0][2]


def test_corrupt_file_is_reported_and_untouched(tmp_path):
    path = tmp_path / "junk.sqlite3"
    path.write_bytes(b"this is not a database, just some bytes" * 200)
    before = sha(path)
    with pytest.raises(StoreCorruptError, match="not a usable ExpiryTrack database"):
        open_database(path)
    assert sha(path) == before


def test_foreign_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.sqlite3"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE customers(id)")
        conn.commit()
    with pytest.raises(StoreCorruptError, match="not an ExpiryTrack database"):
        open_database(path)


def test_unwritable_location(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(StoreUnwritableError, match="Cannot create the folder"):
        open_database(blocker / "db.sqlite3")
    with pytest.raises(StoreUnwritableError, match="is a folder"):
        open_database(tmp_path)


def test_locked_by_another_process_is_reported_after_busy_timeout(tmp_path):
    path = tmp_path / "l.sqlite3"
    open_database(path).close()
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(StoreLockedError, match="locked by another process"):
            open_database(path, busy_timeout_ms=50)
    finally:
        other.execute("ROLLBACK")
        other.close()


def test_lock_during_write_rolls_back_cleanly(db, tmp_path):
    cid = seeded(db)
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreLockedError):
            db.store_window(cid, "1minute", EXP, EXP, candles(EXP, 5))
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert db.windows_for([cid], "1minute")[cid] == []
    db.store_window(cid, "1minute", EXP, EXP, candles(EXP, 5))  # usable again
    assert len(db.candle_rows("NSE_FO|1|24-04-2025")) == 5


def test_disk_full_rolls_back_the_whole_window(tmp_path):
    path = tmp_path / "full.sqlite3"
    open_database(path).close()
    with closing(sqlite3.connect(path)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    db = open_database(path, max_page_count=pages + 8)
    try:
        cid = seeded(db)
        db.store_window(cid, "1minute", date(2025, 4, 1), date(2025, 4, 1), candles(EXP, 3))
        with pytest.raises(StoreFullError, match="Disk full"):
            db.store_window(cid, "1minute", EXP, EXP, candles(EXP, 20000))
        windows = db.windows_for([cid], "1minute")[cid]
        assert [(w.from_date, w.candles) for w in windows] == [(date(2025, 4, 1), 3)]
        assert db.execute("SELECT count(*) FROM candle")[0][0] == 3
        assert db.integrity_check() == "ok"
    finally:
        db.close()


# ---- repository -----------------------------------------------------------------------------


def test_contracts_keep_complete_metadata(db):
    seeded(db)
    rows = {r["expired_instrument_key"]: r for r in db.execute("SELECT * FROM contracts")}
    ce = rows["NSE_FO|1|24-04-2025"]
    assert ce["contract_type"] == "CE"
    assert ce["strike_price"] == 22000.0
    assert ce["lot_size"] == 75 and ce["tick_size"] == 0.05  # rupees in the view (5 paise)
    assert ce["exchange_token"] == "1" and ce["freeze_quantity"] == 1800.0
    assert ce["minimum_lot"] == 75 and ce["weekly"] == 0
    assert ce["underlying_symbol"] == "NIFTY" and ce["openalgo_symbol"] == "OA-1"
    assert '"lot_size":75' in ce["metadata"]
    fut = rows["NSE_FO|3|24-04-2025"]
    assert fut["strike_price"] is None and fut["weekly"] is None
    exp = db.execute("SELECT * FROM expiries")[0]
    assert (exp["is_weekly"], exp["contracts_fetched"], exp["data_fetched"]) == (0, 1, 0)
    inst = db.execute("SELECT * FROM instruments")[0]
    assert (inst["instrument_key"], inst["symbol"], inst["underlying_type"]) == (
        KEY,
        "NIFTY",
        "INDEX",
    )


def test_store_window_is_atomic_and_idempotent(db):
    cid = seeded(db)
    rows = candles(EXP, 50)
    first = db.store_window(cid, "1minute", EXP, EXP, rows)
    again = db.store_window(cid, "1minute", EXP, EXP, rows)
    assert (first.candles, first.overlapped) == (50, False)
    assert (again.candles, again.overlapped) == (50, True)
    assert db.execute("SELECT count(*) FROM candle")[0][0] == 50
    assert db.candle_rows("NSE_FO|1|24-04-2025") == [tuple(r) for r in rows]
    assert db.counts().candles == 50


def test_empty_window_is_distinct_from_not_fetched(db):
    cid = seeded(db)
    db.store_window(cid, "1minute", date(2025, 1, 24), date(2025, 2, 1), [])
    (w,) = db.windows_for([cid], "1minute")[cid]
    assert (w.state, w.candles) == ("empty", 0)


def test_failed_windows_count_attempts_and_never_downgrade(db):
    cid = seeded(db)
    d1, d2 = date(2025, 3, 1), date(2025, 3, 31)
    assert db.mark_window_failed(cid, "1minute", d1, d2, "HTTP 500") == 1
    assert db.mark_window_failed(cid, "1minute", d1, d2, "timeout", job_id=7) == 2
    (row, key) = db.failed_windows(7)[0]
    assert (row.state, row.attempts, row.error, key) == (
        "failed",
        2,
        "timeout",
        "NSE_FO|1|24-04-2025",
    )
    db.store_window(cid, "1minute", d1, d2, candles(d1, 2))
    assert db.failed_windows() == []
    db.mark_window_failed(cid, "1minute", d1, d2, "late failure")
    (w,) = db.windows_for([cid], "1minute")[cid]
    assert (w.state, w.candles) == ("fetched", 2)


def test_historical_data_view_reads_iso_ist_and_answers_documented_sql(db):
    cid = seeded(db)
    rows = candles(EXP, 3)
    db.store_window(cid, "1minute", EXP, EXP, rows)
    db.store_window(cid, "5minute", EXP, EXP, candles(EXP, 1))
    got = db.execute(
        "SELECT timestamp, open, high, low, close, volume, open_interest FROM historical_data "
        "WHERE expired_instrument_key = ? AND DATE(timestamp) = ? ORDER BY timestamp",
        ("NSE_FO|1|24-04-2025", "2025-04-24"),
    )
    assert [r[0] for r in got] == [ist_iso(r[0]) for r in rows]
    assert got[0][0] == "2025-04-24T09:15:00+05:30"
    assert tuple(got[1][1:]) == rows[1][1:]
    # the documented join of contracts and candles
    joined = db.execute(
        "SELECT c.trading_symbol, c.strike_price, COUNT(*) FROM historical_data h "
        "JOIN contracts c ON c.expired_instrument_key = h.expired_instrument_key "
        "WHERE c.instrument_key = ? AND c.expiry_date = ? GROUP BY 1, 2",
        (KEY, "2025-04-24"),
    )
    assert [tuple(r) for r in joined] == [("NIFTY 22000.0 CE 24 APR 25", 22000.0, 3)]
    allint = db.execute("SELECT interval, count(*) FROM historical_data_all GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in allint] == [("1minute", 3), ("5minute", 1)]


def test_coverage_states(db):
    cid = seeded(db)
    ids = [c.id for c in db.contracts_for(KEY, EXP) if c.id != cid]
    ids.insert(0, cid)
    eid = db.expiry_id(KEY, EXP)
    t0 = date(2025, 4, 1)
    db.set_coverage_target(eid, "1minute", t0, EXP)
    (c,) = db.coverage()
    assert (c.state, c.contracts, c.contracts_complete) == ("no_data", 3, 0)
    db.store_window(cid, "1minute", t0, EXP, candles(EXP, 4))
    (c,) = db.coverage()
    assert (c.state, c.contracts_complete, c.candles) == ("partial", 1, 4)
    db.mark_window_failed(ids[1], "1minute", t0, EXP, "boom")
    assert db.coverage()[0].state == "failed"
    db.store_window(ids[1], "1minute", t0, date(2025, 4, 10), [])
    db.store_window(ids[1], "1minute", date(2025, 4, 11), EXP, [])
    db.store_window(ids[2], "1minute", t0, EXP, [])
    (c,) = db.coverage()
    assert (c.state, c.contracts_complete, c.contracts_no_trades, c.failed_windows) == (
        "complete",
        3,
        2,
        0,
    )
    assert c.is_weekly is False and c.target == (t0, EXP)


def test_counts_and_kv(db):
    seeded(db)
    n = db.counts()
    assert (n.underlyings, n.expiries, n.contracts, n.candles) == (1, 1, 3, 0)
    assert n.db_bytes > 0
    assert db.kv_get("x") is None
    db.kv_set("x", "1")
    db.set_span_cap("1minute", 30)
    assert db.kv_get("x") == "1"
    assert db.span_caps() == {"1minute": 30}


# ---- jobs -------------------------------------------------------------------------------------


def test_jobs_persist_and_show_in_job_status(db):
    seeded(db)
    bank = "NSE_INDEX|Nifty Bank"
    params = {"underlyings": [KEY, bank], "expiries": [EXP.isoformat()], "interval": "1minute"}
    jid = db.create_job("collect", params, underlyings="NIFTY, BANKNIFTY", expiries="2025-04-24")
    db.update_job(jid, status="completed", done_items=3, total_items=3)
    db.add_job_log(jid, "info", "done")
    rec = db.get_job(jid)
    assert (rec.status, rec.params, rec.done_items) == ("completed", params, 3)
    # one row per job x underlying x expiry, real keys and dates (BANKNIFTY: nothing stored)
    rows = db.execute(
        "SELECT job_type, instrument_key, expiry_date, status FROM job_status WHERE id = ? "
        "ORDER BY instrument_key",
        (jid,),
    )
    assert [tuple(r) for r in rows] == [
        ("collect", KEY, "2025-04-24", "completed"),
        ("collect", bank, None, "completed"),
    ]
    assert db.job_logs(jid)[0][1:] == ("info", "done")
    with pytest.raises(ValueError):
        db.update_job(jid, status="weird")


def test_job_status_all_expiries_lists_each_stored_expiry(db):
    seeded(db)
    db.upsert_expiries(KEY, [date(2025, 5, 29), date(2025, 4, 30)])
    everything = db.create_job("collect", {"underlyings": [KEY], "expiries": None})
    odd = db.create_job("collect", {"note": "no selection"})
    rows = db.execute(
        "SELECT id, instrument_key, expiry_date FROM job_status ORDER BY id, expiry_date"
    )
    assert [tuple(r) for r in rows] == [
        (everything, KEY, "2025-04-24"),
        (everything, KEY, "2025-04-30"),
        (everything, KEY, "2025-05-29"),
        (odd, None, None),
    ]


def test_job_of_a_dead_process_shows_as_interrupted(db):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    jid = db.create_job("collect", {})
    db.update_job(jid, status="running", pid=proc.pid)
    alive = db.create_job("collect", {})
    db.update_job(alive, status="running", pid=None)
    db.update_job(alive, pid=__import__("os").getpid(), heartbeat_at=db.now_text())
    statuses = {j.id: j.status for j in db.list_jobs()}
    assert statuses == {jid: "interrupted", alive: "running"}
    assert db.get_job(jid).resumable


def test_dead_job_reads_as_interrupted_even_while_another_process_writes(db):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    jid = db.create_job("collect", {})
    db.update_job(jid, status="running", pid=proc.pid)
    other = sqlite3.connect(db.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        assert db.list_jobs()[0].status == "interrupted"  # reported, not yet stored
        assert db.execute("SELECT status FROM job")[0][0] == "running"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert db.mark_interrupted_jobs() == 1
    assert db.execute("SELECT status FROM job")[0][0] == "interrupted"


def test_stale_heartbeat_means_interrupted(tmp_path):
    now = [datetime(2025, 5, 1, 10, 0, tzinfo=UTC)]
    db = open_database(tmp_path / "c.sqlite3", clock=lambda: now[0])
    try:
        jid = db.create_job("collect", {})
        db.update_job(
            jid, status="running", pid=__import__("os").getpid(), heartbeat_at=db.now_text()
        )
        assert db.get_job(jid).status == "running"
        now[0] += timedelta(minutes=5)
        assert db.get_job(jid).status == "interrupted"
    finally:
        db.close()


def test_a_new_pending_job_is_not_interrupted_until_its_grace_period_passes(tmp_path):
    now = [datetime(2025, 5, 1, 10, 0, tzinfo=UTC)]
    db = open_database(tmp_path / "p.sqlite3", clock=lambda: now[0])
    try:
        jid = db.create_job("collect", {})  # no pid yet: its process starts it next
        assert [j.status for j in db.list_jobs()] == ["pending"]
        assert db.mark_interrupted_jobs() == 0
        assert db.get_job(jid).status == "pending"
        now[0] += timedelta(minutes=2)
        assert db.mark_interrupted_jobs() == 0
        now[0] += timedelta(minutes=2)  # never started: its process is gone
        assert db.mark_interrupted_jobs() == 1
        assert db.get_job(jid).status == "interrupted"
        assert db.execute("SELECT status FROM job")[0][0] == "interrupted"
        # a pending job whose recorded process is dead is interrupted at once
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        proc.wait()
        other = db.create_job("collect", {})
        db.update_job(other, pid=proc.pid)
        assert db.get_job(other).status == "interrupted"
    finally:
        db.close()


async def test_run_executes_on_the_single_writer_thread(db):
    main = threading.get_ident()
    seen = {await db.run(threading.get_ident) for _ in range(5)}
    assert len(seen) == 1 and main not in seen
    cid = await db.run(seeded, db)
    stored = await db.run(db.store_window, cid, "1minute", EXP, EXP, candles(EXP, 2))
    assert stored.candles == 2


# ---- pure range arithmetic ---------------------------------------------------------------------


def test_months_before_clamps_to_month_end():
    assert months_before(date(2025, 5, 31), 3) == date(2025, 2, 28)
    assert months_before(date(2024, 5, 31), 3) == date(2024, 2, 29)
    assert months_before(date(2025, 4, 24), 3) == date(2025, 1, 24)
    assert months_before(date(2025, 2, 15), 3) == date(2024, 11, 15)


def test_chunk_range():
    r = (date(2025, 1, 1), date(2025, 3, 31))
    chunks = chunk_range(r, 30)
    assert chunks[0] == (date(2025, 1, 1), date(2025, 1, 30))
    assert chunks[-1][1] == date(2025, 3, 31) and len(chunks) == 3
    assert chunk_range(r, None) == [r]


days = st.integers(min_value=0, max_value=120)


@given(
    target=st.tuples(days, days),
    covered=st.lists(st.tuples(days, days), max_size=6),
    span=st.integers(min_value=1, max_value=40),
)
def test_gaps_plus_cover_equal_target(target, covered, span):
    base = date(2025, 1, 1)
    d = lambda i: base + timedelta(days=i)  # noqa: E731
    lo, hi = sorted(target)
    tgt = (d(lo), d(hi))
    cov = [(d(a), d(b)) for a, b in covered]
    gaps = subtract_ranges(tgt, cov)
    covered_days = {x for a, b in covered for x in range(a, b + 1)}
    want = [i for i in range(lo, hi + 1) if i not in covered_days]
    got = [(g0 - base).days + k for g0, g1 in gaps for k in range((g1 - g0).days + 1)]
    assert got == want
    for g in gaps:
        pieces = chunk_range(g, span)
        assert pieces[0][0] == g[0] and pieces[-1][1] == g[1]
        assert all((b - a).days + 1 <= span for a, b in pieces)
    merged = merge_ranges(cov)
    assert all(merged[i][1] + timedelta(days=1) < merged[i + 1][0] for i in range(len(merged) - 1))


def store_answer(db, cid, f, t, body, **kw):
    """An answer's bytes as the engine stores them: decoded by the client, written by the store."""
    return db.store_window_rows(cid, "1minute", f, t, decode_candles(body), **kw)


def test_store_window_rows_equals_the_python_path(db, tmp_path):
    """Integer prices, a volume sent as 123.0, another day's candles, repeated times: the
    same rows as the checked Python path, however the answer is decoded."""
    import json

    cid = seeded(db)
    inside = candles(EXP, 30)
    outside = candles(date(2025, 4, 25), 2)  # a sloppy answer: the next day too
    api = [[ist_iso(r[0]), *r[1:]] for r in reversed(inside + outside)]  # newest first
    api[2][1] = 7  # an integer price (the newest candle inside)
    inside[-1] = (inside[-1][0], 7.0, *inside[-1][2:])
    api[3][5] = float(api[3][5])  # a volume written as 123.0
    api.append(list(api[4]))  # a later duplicate
    api.insert(0, [ist_iso(inside[0][0]), 9, 9, 9, 9, 9, 9])  # a repeated time: first one wins
    inside[0] = (inside[0][0], 9.0, 9.0, 9.0, 9.0, 9, 9)
    body = json.dumps({"status": "success", "data": {"candles": api}}).encode()
    got = store_answer(db, cid, EXP, EXP, body, job_id=3)
    assert (got.candles, got.overlapped) == (30, False)
    # candles of another day are dropped, as fetch_window drops them on the Python path
    stored = db.candle_rows("NSE_FO|1|24-04-2025")
    assert stored == inside
    assert all(type(v) is float for r in stored for v in r[1:5])
    assert all(type(v) is int for r in stored for v in (r[0], r[5], r[6]))
    (w,) = db.windows_for([cid], "1minute")[cid]
    assert (w.state, w.candles, w.job_id) == ("fetched", 30, 3)
    with open_database(tmp_path / "py.sqlite3") as other:
        ocid = seeded(other)
        other.store_window(ocid, "1minute", EXP, EXP, inside)
        assert other.candle_rows("NSE_FO|1|24-04-2025") == stored
    empty = store_answer(
        db, cid, date(2025, 4, 1), date(2025, 4, 2), b'{"status":"success","data":{"candles":[]}}'
    )
    assert empty.candles == 0
    assert db.windows_for([cid], "1minute")[cid][0].state == "empty"


@pytest.mark.parametrize(
    "body",
    [
        b'{"status":"success","data":{"candles":[["2025-04-24T09:15:00+05:30",1,2,0.5,1]',
        b'{"status":"success","data":{"candles":[[null,1,2,3,4,5,6]]}}',
        b'{"status":"success","data":{"candles":[["not a time",1,2,3,4,5,6]]}}',
        b'{"status":"success","data":{"candles":[["2025-04-24T09:15:00",1,2,3,4,5,6]]}}',
        b'{"status":"success","data":{"candles":[["2025-04-24T09:75:00+05:30",1,2,3,4,5,6]]}}',
        b'{"status":"success","data":{"candles":[["2025-02-30T09:15:00+05:30",1,2,3,4,5,6]]}}',
        b'{"status":"success","data":{"candles":[["2025-04-24T09:15:00+05:30",null,2,3,4,5,6]]}}',
        b'{"status":"success","data":{"candles":[["2025-04-24T09:15:00+05:30","x",2,3,4,5,6]]}}',
        b'{"status":"success","data":{"candles":[["2025-04-24T09:15:00+05:30",1,2,3,4,5.5,6]]}}',
        b'{"status":"success","data":{"candles":[["2025-04-24T09:15:00+05:30",1,2,3,4,5,[6]]]}}',
        b'{"status":"success","data":{"candles":[["2025-04-24T09:15:00+05:30",1,2,3,4]]}}',
        b'{"status":"success","data":{"rows":[]}}',
        b'{"status":"success","data":{"candles":{}}}',
        b'{"status":"error","data":{"candles":[]}}',
        b'{"data":{"candles":[]}}',
    ],
)
def test_bad_answers_are_refused_and_write_nothing(db, body):
    cid = seeded(db)
    with pytest.raises(ValueError, match="candle"):
        store_answer(db, cid, EXP, EXP, body)
    assert db.windows_for([cid], "1minute")[cid] == []
    assert db.execute("SELECT count(*) FROM candle")[0][0] == 0


# ---- window claims (two jobs never fetch the same window) ---------------------------------------

_NO_SUCH_PID = 4_194_400  # above Linux's largest pid_max


def _running_job(db) -> int:
    job = db.create_job("collect", {})
    db.update_job(job, status="running", pid=os.getpid(), heartbeat_at=db.now_text())
    return job


def test_window_claims_leave_a_window_to_the_live_job_that_took_it(db):
    cid = seeded(db)
    a, b = _running_job(db), _running_job(db)
    w = (cid, 1, date(2025, 4, 1), date(2025, 4, 10))
    assert db.claim_windows(a, [w]) == {}
    overlapping = (cid, 1, date(2025, 4, 10), date(2025, 4, 20))
    apart = (cid, 1, date(2025, 4, 11), date(2025, 4, 20))
    other_interval = (cid, 5, date(2025, 4, 1), date(2025, 4, 10))
    assert db.claim_windows(b, [overlapping, apart, other_interval]) == {0: a}
    assert db.claims_of(b) == [apart, other_interval]
    # a done mark of a part keeps the claim; the mark of its last part drops it, and only it
    nxt = (cid, 1, date(2025, 4, 21), date(2025, 4, 30))
    assert db.claim_windows(a, [nxt]) == {}
    db.store_window(cid, 1, date(2025, 4, 1), date(2025, 4, 5), [], job_id=a)
    db.store_window(cid, 1, date(2025, 4, 21), date(2025, 4, 30), [], job_id=a, claim=nxt[2:])
    assert db.claims_of(a) == [w]
    db.store_window(cid, 1, date(2025, 4, 6), date(2025, 4, 10), [], job_id=a, claim=w[2:])
    assert db.claims_of(a) == []
    assert db.claim_windows(b, [overlapping]) == {}
    # a failed mark drops it too
    later = (cid, 1, date(2025, 5, 1), date(2025, 5, 9))
    assert db.claim_windows(a, [later]) == {}
    db.mark_window_failed(
        cid, 1, date(2025, 5, 3), date(2025, 5, 9), "HTTP 500", job_id=a, claim=later[2:]
    )
    assert db.claims_of(a) == []
    # narrowed to what is still missing, in one step
    wide = (cid, 1, date(2025, 6, 1), date(2025, 6, 30))
    assert db.claim_windows(a, [wide]) == {}
    part = (cid, 1, date(2025, 6, 10), date(2025, 6, 30))
    db.reclaim(a, [wide], [part])
    assert db.claims_of(a) == [part]
    assert db.integrity_check() == "ok"  # with claims stored
    db.release_claims(a)
    db.release_claims(b)
    assert db.claims_of(a) == db.claims_of(b) == []


@pytest.mark.parametrize("how", ["process gone", "job ended"])
def test_claims_of_a_job_that_is_not_running_are_ignored_and_cleared(db, how):
    cid = seeded(db)
    a, b = _running_job(db), _running_job(db)
    w = (cid, 1, date(2025, 4, 1), date(2025, 4, 10))
    assert db.claim_windows(a, [w]) == {}
    if how == "process gone":
        db.update_job(a, pid=_NO_SUCH_PID)
    else:
        db.update_job(a, status="cancelled")
    assert db.claim_windows(b, [w]) == {}
    assert db.claims_of(a) == [] and db.claims_of(b) == [w]


def test_claims_of_a_paused_job_are_kept_but_not_honoured(db):
    cid = seeded(db)
    a, b = _running_job(db), _running_job(db)
    w = (cid, 1, date(2025, 4, 1), date(2025, 4, 10))
    assert db.claim_windows(a, [w]) == {}
    db.update_job(a, status="paused")
    assert db.claimed_elsewhere([w]) == {}
    assert db.claim_windows(b, [w]) == {}  # b goes on
    assert db.claims_of(a) == [w] == db.claims_of(b)  # a checks again when it resumes
    db.update_job(a, status="running")
    assert db.claim_windows(a, [w]) == {0: b}
