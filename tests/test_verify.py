"""``expirytrack verify``: each kind of problem made in a real SQLite file (collected from the
simulator, then damaged with plain SQL) must be reported, with exit code 4; notes (possible
special sessions) are reported without failing; ``--fix`` re-marks only the inconsistent
windows, deletes no candle, and the next collection makes the data exact again."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import threading
from contextlib import closing
from datetime import date, datetime, time, timedelta

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.collect import Selection, target_range
from expirytrack_desktop.store import open_database
from expirytrack_desktop.store.verify import verify
from expirytrack_desktop.timeutil import IST
from tests.collect_helpers import NIFTY, ground_truth_rows, make_app, make_client, make_collector

APP = make_app()
EXPIRY = APP.market.expiries(NIFTY)[-1]
OTHER_EXPIRY = APP.market.expiries(NIFTY)[-2]


async def _collect(path) -> None:
    with open_database(path, busy_timeout_ms=200) as db:
        async with make_client(APP) as client:
            result = await make_collector(db, client).run(Selection([NIFTY], [EXPIRY], months=1))
    assert result.reason.value == "ok"


def collect(path) -> None:
    """Collect in a thread of its own: a module fixture may be set up while another test's
    event loop is running in this thread."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(_collect(path))
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=target)
    t.start()
    t.join()
    if errors:
        raise errors[0]


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify") / "template.sqlite3"
    collect(path)
    return path


@pytest.fixture
def dbfile(template, tmp_path):
    path = tmp_path / "v.sqlite3"
    shutil.copy(template, path)
    return path


def sql(path, statement: str, params=()) -> list[tuple]:
    with closing(sqlite3.connect(path)) as con:
        rows = con.execute(statement, params).fetchall()
        con.commit()
        return rows


def fetched_windows(path) -> list[tuple]:
    return sql(
        path,
        "SELECT contract_id, interval, from_date, to_date, candles FROM fetch_window "
        "WHERE state = 'fetched' ORDER BY contract_id",
    )


def ts(day: date, hh: int, mm: int) -> int:
    return int(datetime.combine(day, time(hh, mm), IST).timestamp())


def run_verify(path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["verify", "--db", str(path), *extra])
    return code, capsys.readouterr().out


def counts(path, **kw) -> dict[str, int]:
    """Every check over everything (``full``: leaves no verified marks behind)."""
    kw.setdefault("full", True)
    with open_database(path, create=False) as db:
        return {f.key: f.count for f in verify(db, **kw).findings}


def test_collected_data_is_clean(dbfile, capsys):
    code, out = run_verify(dbfile, capsys)
    assert code == exitcodes.OK, out
    assert "Result: no problems found." in out
    c = counts(dbfile)
    assert {k: v for k, v in c.items() if v and k != "never_collected"} == {}
    assert c["never_collected"] == len(APP.market.expiries(NIFTY)) - 1


def test_types_judge_a_futures_only_collection_by_its_futures(dbfile, capsys):
    """What `collect --types FUT` leaves (the options' contract rows, no options' windows) is
    missing options for a plain verify, complete for `verify --types FUT`."""
    options = "SELECT id FROM contract WHERE contract_type IN ('CE', 'PE')"
    sql(dbfile, f"DELETE FROM candle WHERE contract_id IN ({options})")
    sql(dbfile, f"DELETE FROM fetch_window WHERE contract_id IN ({options})")
    n_options = len(sql(dbfile, options))
    code, out = run_verify(dbfile, capsys)
    assert code == exitcodes.FAILED_ITEMS and counts(dbfile)["no_windows"] == n_options > 0
    code, out = run_verify(dbfile, capsys, "--types", "fut")
    assert code == exitcodes.OK, out
    assert "(coverage of FUT only)" in out and "Result: no problems found." in out
    assert counts(dbfile, types=["CE"])["no_windows"] == n_options // 2
    code = main(["verify", "--db", str(dbfile), "--types", "CE,XX"])
    assert code == exitcodes.BAD_INPUT
    assert "contract types must be among CE, PE, FUT" in capsys.readouterr().err


def test_bad_candles_are_reported_not_deleted(dbfile, capsys):
    cid = fetched_windows(dbfile)[0][0]
    first = sql(dbfile, "SELECT ts FROM candle WHERE contract_id = ? ORDER BY ts LIMIT 3", (cid,))
    sql(
        dbfile,
        "UPDATE candle SET low = high + 5 WHERE contract_id = ? AND ts = ?",
        (cid, first[0][0]),
    )
    sql(
        dbfile, "UPDATE candle SET volume = -1 WHERE contract_id = ? AND ts = ?", (cid, first[1][0])
    )
    sql(dbfile, "UPDATE candle SET oi = -7 WHERE contract_id = ? AND ts = ?", (cid, first[2][0]))
    before = sql(dbfile, "SELECT count(*) FROM candle")[0][0]
    code, out = run_verify(dbfile, capsys, "--fix")
    assert code == exitcodes.FAILED_ITEMS
    c = counts(dbfile)
    assert c["ohlc"] == 1 and c["negative"] == 2
    assert "candles: low <= open, close <= high" in out and "PROBLEM" in out
    assert "V -1" in out and "OI -7" in out  # the examples show the values
    assert sql(dbfile, "SELECT count(*) FROM candle")[0][0] == before  # nothing deleted
    assert "no inconsistent window to re-mark; nothing changed" in out


def test_special_sessions_are_notes_not_failures(dbfile, capsys):
    cid = fetched_windows(dbfile)[0][0]
    weekday = EXPIRY - timedelta(days=7)
    while weekday.weekday() >= 5:
        weekday -= timedelta(days=1)
    saturday = EXPIRY - timedelta(days=(EXPIRY.weekday() + 2) % 7)
    assert saturday.weekday() == 5
    # close 1000 paise, then open/high/low relative to it: O 10, H 11, L 9, C 10 rupees
    row = "INSERT OR REPLACE INTO candle VALUES (?, 1, ?, 1000, 0, 100, -100, 5, 5)"
    sql(dbfile, row, (cid, ts(weekday, 18, 15)))  # Muhurat-like evening session
    sql(dbfile, row, (cid, ts(saturday, 10, 0)))  # a Saturday special session
    c = counts(dbfile)
    assert c["hours"] == 1 and c["weekend"] == 1
    code, out = run_verify(dbfile, capsys)
    assert code == exitcodes.OK  # notes only (the window counts now differ upward: a note too)
    assert "18:15 IST" in out and "Sat 10:00 IST" in out


def test_orphans_and_foreign_keys(dbfile, capsys):
    sql(
        dbfile,
        "INSERT INTO candle VALUES (987654, 1, ?, 1000, 0, 100, -100, 5, 5)",
        (ts(EXPIRY, 10, 0),),
    )
    sql(
        dbfile,
        "INSERT INTO fetch_window(contract_id, interval, from_date, to_date, state, candles) "
        "VALUES (987654, 1, '2025-01-01', '2025-01-02', 'empty', 0)",
    )
    c = counts(dbfile)
    assert c["orphan"] == 1 and c["foreign_keys"] == 1
    code, out = run_verify(dbfile, capsys)
    assert code == exitcodes.FAILED_ITEMS
    assert "fetch_window row" in out and "refers to a missing contract" in out


def test_window_counts_and_fix_then_collect_again(dbfile, capsys):
    (w1, w2, w3, *_rest) = fetched_windows(dbfile)
    lo = lambda d: ts(date.fromisoformat(d), 0, 0)  # noqa: E731
    # w1 loses some candles, w2 loses all, w3 records a wrong count of zero
    sql(dbfile, "DELETE FROM candle WHERE contract_id = ? AND ts IN (SELECT ts FROM candle "
        "WHERE contract_id = ? ORDER BY ts LIMIT 10)", (w1[0], w1[0]))  # fmt: skip
    sql(dbfile, "DELETE FROM candle WHERE contract_id = ? AND ts >= ?", (w2[0], lo(w2[2])))
    sql(dbfile, "UPDATE fetch_window SET candles = 0 WHERE contract_id = ?", (w3[0],))
    c = counts(dbfile)
    assert c["missing_candles"] == 1 and c["fetched_empty"] == 1 and c["extra_candles"] == 1
    code, out = run_verify(dbfile, capsys)
    assert code == exitcodes.FAILED_ITEMS
    assert f"{w1[4]} recorded, {w1[4] - 10} stored" in out
    assert "2 inconsistent window(s): `expirytrack verify --fix`" in out
    before = sql(dbfile, "SELECT count(*) FROM candle")[0][0]
    code, out = run_verify(dbfile, capsys, "--fix")
    assert "Fixed: 2 window(s) of 2 contract(s) re-marked as not fetched" in out
    assert sql(dbfile, "SELECT count(*) FROM candle")[0][0] == before
    left = {r[0] for r in sql(dbfile, "SELECT contract_id FROM fetch_window")}
    assert w1[0] not in left and w2[0] not in left and w3[0] in left
    assert sql(dbfile, "SELECT data_fetched FROM expiry WHERE expiry_date = ?",
               (EXPIRY.isoformat(),)) == [(0,)]  # fmt: skip
    c = counts(dbfile)
    assert c["no_windows"] == 2 and c["missing_candles"] == 0 and c["fetched_empty"] == 0
    # the next collection fetches exactly those two windows again
    collect(dbfile)
    f, t = target_range(EXPIRY, 1)
    with open_database(dbfile) as db:
        for cid in (w1[0], w2[0]):
            key = db.execute("SELECT expired_key FROM contract WHERE id = ?", (cid,))[0][0]
            assert db.candle_rows(key) == ground_truth_rows(APP.market, key, "1minute", f, t)
    c = counts(dbfile)
    assert c["no_windows"] == 0 and c["missing_candles"] == 0 and c["fetched_empty"] == 0


def test_coverage_problems(dbfile, capsys):
    (w1, w2, w3, *_rest) = fetched_windows(dbfile)
    # w1: window gone (never fetched); w2: only part of the range covered -> gap;
    # w3: replaced by a failed window
    sql(dbfile, "DELETE FROM fetch_window WHERE contract_id = ?", (w1[0],))
    later = (date.fromisoformat(w2[2]) + timedelta(days=10)).isoformat()
    n = sql(dbfile, "SELECT count(*) FROM candle WHERE contract_id = ? AND ts >= ?",
            (w2[0], ts(date.fromisoformat(later), 0, 0)))[0][0]  # fmt: skip
    sql(dbfile, "UPDATE fetch_window SET from_date = ?, candles = ? WHERE contract_id = ?",
        (later, n, w2[0]))  # fmt: skip
    sql(dbfile, "UPDATE fetch_window SET state = 'failed', candles = 0, error = 'HTTP 500' "
        "WHERE contract_id = ?", (w3[0],))  # fmt: skip
    # an expiry asked for whose contract list never arrived
    eid = sql(dbfile, "SELECT id FROM expiry WHERE expiry_date = ?", (OTHER_EXPIRY.isoformat(),))
    sql(dbfile, "INSERT INTO coverage_target VALUES (?, 1, '2025-01-01', ?)",
        (eid[0][0], OTHER_EXPIRY.isoformat()))  # fmt: skip
    c = counts(dbfile)
    assert c["no_windows"] == 1
    assert c["gaps"] == 2  # w2 (partly covered) and w3 (its only window failed)
    assert c["failed"] == 1
    assert c["no_contract_list"] == 1
    code, out = run_verify(dbfile, capsys)
    assert code == exitcodes.FAILED_ITEMS
    first_missing = w2[2]
    assert f"missing {first_missing}.." in out
    assert "1 attempt(s), HTTP 500" in out
    assert f"NIFTY {OTHER_EXPIRY.isoformat()}: contract list not stored" in out
    # scoped to the other expiry: only its own problem
    c = counts(dbfile, instrument=NIFTY, expiries=[OTHER_EXPIRY])
    assert c["no_contract_list"] == 1 and c["gaps"] == 0 and c["no_windows"] == 0
    code, _ = run_verify(dbfile, capsys, "-i", "NIFTY", "-e", EXPIRY.isoformat())
    assert code == exitcodes.FAILED_ITEMS


def test_sqlite_integrity_check(dbfile, capsys):
    # redefine an index in the schema but not its contents: its entries no longer match rows
    with closing(sqlite3.connect(dbfile)) as con:
        con.execute("PRAGMA writable_schema = ON")
        con.execute(
            "UPDATE sqlite_master SET sql = 'CREATE INDEX contract_by_openalgo ON "
            "contract(trading_symbol)' WHERE name = 'contract_by_openalgo'"
        )
        con.commit()
    c = counts(dbfile)
    assert c["integrity"] >= 1
    code, out = run_verify(dbfile, capsys)
    assert code == exitcodes.FAILED_ITEMS
    line = next(x for x in out.splitlines() if x.startswith("SQLite integrity_check"))
    assert line.endswith("PROBLEM")
    assert "contract_by_openalgo" in out  # the first messages of SQLite are shown


def test_missing_database_and_bad_input(tmp_path, capsys):
    assert main(["verify", "--db", str(tmp_path / "none.sqlite3")]) == exitcodes.BAD_INPUT
    assert "no database" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite3").exists()
    assert main(["verify", "--db", str(tmp_path / "x"), "-e", "24-04-2025"]) == exitcodes.BAD_INPUT


def test_incremental_verify_checks_what_changed_since_the_last_clean_run(dbfile, capsys):
    code, _ = run_verify(dbfile, capsys)
    assert code == exitcodes.OK
    windows = len(fetched_windows(dbfile))
    with open_database(dbfile, create=False) as db:
        again = verify(db)
        assert again.clean and again.stats["windows_checked"] == 0
        assert again.stats["candles"] == 0  # nothing changed: no candle read again
    # a candle damaged behind the app's back: only a full run reads it again
    cid, _iv, f0, _t0, _n = fetched_windows(dbfile)[0]
    first = sql(dbfile, "SELECT ts FROM candle WHERE contract_id = ? ORDER BY ts LIMIT 1", (cid,))
    sql(dbfile, "UPDATE candle SET low = high + 5 WHERE contract_id = ? AND ts = ?",
        (cid, first[0][0]))  # fmt: skip
    assert counts(dbfile, full=False)["ohlc"] == 0
    assert counts(dbfile)["ohlc"] == 1
    # the window written again (as a collection does): the next incremental run reads it
    sql(dbfile, "UPDATE fetch_window SET updated_at = '2099-01-01 00:00:00' "
        "WHERE contract_id = ? AND from_date = ?", (cid, f0))  # fmt: skip
    with open_database(dbfile, create=False) as db:
        rep = verify(db)
        assert rep.finding("ohlc").count == 1 and rep.stats["windows_checked"] == 1
        assert not verify(db).clean  # an error marks nothing: reported until resolved
    assert windows > 1


def test_incremental_verify_of_a_big_file_samples_its_pages(dbfile, monkeypatch):
    from expirytrack_desktop.store import verify as verify_module

    monkeypatch.setattr(verify_module, "FULL_CHECK_BYTES", 0)  # as if it were a big file
    with open_database(dbfile, create=False) as db:
        page = verify(db).finding("integrity")
        assert page.ok and "sampled check" in page.title
        assert "integrity_check" in verify(db, full=True).finding("integrity").title
