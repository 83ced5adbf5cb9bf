"""Ingest rate: JSON response bytes -> committed candle rows, through the engine's real path,
next to a raw ``executemany`` of the same pre-parsed rows into the same schema.

Data: the simulator's serialized answers (exactly its JSON bytes, newest candle first) for
every 30-day window of NIFTY's last two expiries' 85 contracts over 4 months (471,530 1-minute
candles). No network and no rate limit: an httpx ``MockTransport`` hands the prepared bytes to
the real ``UpstoxClient`` (limiter with an unreachable limit), so only parsing and writing count.

- engine, per window: the path the collector takes with the real client —
  ``client.get_candle_rows`` (httpx response, decoded and type-checked by msgspec on the event
  loop) then ``Database.store_window_rows`` (clipped to the window, ``executemany`` with
  SQLite's ``unixepoch`` for the timestamps, + done mark, one transaction per window, WAL,
  synchronous=NORMAL) on a database opened by ``open_database``; ``--parsed`` measures the
  lenient Python path instead (``get_candles`` + ``store_window``);
- collector: the whole engine as it runs (``Collector``, concurrency 8, writer thread);
- raw: ``executemany("INSERT INTO candle VALUES (...)")`` of the already parsed rows, one
  transaction per window, same schema, same pragmas, a fresh file.

Both are timed in the same process, alternating, ``--rounds`` times; the median is reported.
Target: engine >= 50% of raw.

    .venv/bin/python bench/bench_ingest.py [--rounds 3] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import httpx
from _collect_harness import MONTHS, NIFTY, last_expiries, make_app

from expirytrack_desktop.collect.plan import target_range
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN
from expirytrack_desktop.store import open_database
from expirytrack_desktop.store.coverage import chunk_range
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec
from expirytrack_desktop.upstox.models import Contract

SPAN = 30


def build_windows():
    """[(expired_key, from, to, body bytes)] and the contract lists per expiry."""
    app = make_app(faults=None)
    m = app.market
    windows = []
    contracts: dict = {}
    for e in last_expiries(app):
        items = m.option_contracts(NIFTY, e) + m.future_contracts(NIFTY, e)
        contracts[e] = items
        for it in items:
            for f, t in chunk_range(target_range(e, MONTHS), SPAN):
                rows = m.candle_rows(it["instrument_key"], "1minute", f, t)
                body = json.dumps(
                    {"status": "success", "data": {"candles": rows}}, separators=(",", ":")
                ).encode()
                windows.append((it["instrument_key"], f, t, body))
    return windows, contracts


def _paths(windows) -> dict[str, bytes]:
    """Request path of each window (as the client writes it) -> its answer's bytes."""
    return {
        f"/v2/expired-instruments/historical-candle/{quote(key, safe='')}/1minute/"
        f"{t.isoformat()}/{f.isoformat()}": body
        for key, f, t, body in windows
    }


def _contract(item: dict) -> Contract:
    from expirytrack_desktop.upstox.client import _contract as decode

    return decode(item, future=item["instrument_type"] == "FUT")


async def engine_run(
    windows, contracts, path: Path, parsed: bool = False
) -> tuple[float, float, float, int]:
    """(total s, fetch s, write s, candles) through get_candle_rows + store_window_rows
    (``parsed``: get_candles + store_window)."""
    bodies = _paths(windows)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=bodies[request.url.raw_path.decode()],
            headers={"content-type": "application/json"},
        )

    db = open_database(path)
    ids = {}
    for e, items in contracts.items():
        db.store_contracts(NIFTY, e, [_contract(i) for i in items], mark_fetched=True)
        ids.update({r.expired_key: r.id for r in db.contracts_for(NIFTY, e)})
    job = db.create_job("collect", {})
    limiter = RateLimiter(RateLimitSpec.parse("100000000/1"))
    client = UpstoxClient(
        "http://sim.test", access_token="x", limiter=limiter, transport=httpx.MockTransport(handler)
    )
    parse_s = write_s = 0.0
    n = 0
    t_all = time.perf_counter()
    for key, f, t, _body in windows:
        t0 = time.perf_counter()
        if parsed:
            candles = await client.get_candles(key, "1minute", f, t)
            t1 = time.perf_counter()
            stored = await db.run(db.store_window, ids[key], "1minute", f, t, candles, job_id=job)
        else:
            rows = await client.get_candle_rows(key, "1minute", f, t)
            t1 = time.perf_counter()
            stored = await db.run(
                db.store_window_rows, ids[key], "1minute", f, t, [rows], job_id=job
            )
        t2 = time.perf_counter()
        parse_s += t1 - t0
        write_s += t2 - t1
        n += stored.candles
    total = time.perf_counter() - t_all
    await client.aclose()
    db.close()
    return total, parse_s, write_s, n


class _CachedCandles(httpx.AsyncBaseTransport):
    """Candle answers from the prepared bytes; everything else from the simulator in-process."""

    def __init__(self, bodies: dict[str, bytes], app) -> None:
        self.bodies = bodies
        self.fallback = app.transport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = self.bodies.get(request.url.raw_path.decode())
        if body is None:
            return await self.fallback.handle_async_request(request)
        return httpx.Response(200, content=body, headers={"content-type": "application/json"})


async def collector_run(windows, path: Path) -> tuple[float, int]:
    """The whole engine as it runs (Collector, concurrency 8, parsing on the event loop,
    writes on the store's writer thread), the candle answers served from the prepared bytes."""
    from expirytrack_desktop.collect import Collector, Selection

    app = make_app(faults=None)
    db = open_database(path)
    db.set_span_cap("1minute", SPAN)  # learned by an earlier run: plans the same windows
    client = UpstoxClient(
        "http://sim.test",
        access_token=DEMO_ACCESS_TOKEN,
        limiter=RateLimiter(RateLimitSpec.parse("100000000/1")),
        transport=_CachedCandles(_paths(windows), app),
    )
    collector = Collector(db, client, concurrency=8)
    t0 = time.perf_counter()
    result = await collector.run(Selection([NIFTY], last_expiries(app), months=MONTHS))
    total = time.perf_counter() - t0
    assert result.counters.candle_requests == len(windows), result.counters
    await client.aclose()
    db.close()
    return total, result.counters.candles


def parsed_rows(windows, ids) -> list[list[tuple]]:
    """The same candles, pre-parsed to stored tuples (outside the timed part)."""
    from expirytrack_desktop.timeutil import parse_ts

    out = []
    for key, _f, _t, body in windows:
        rows = json.loads(body)["data"]["candles"]
        cid = ids[key]
        out.append(
            sorted(
                (
                    cid,
                    1,
                    parse_ts(r[0]),
                    float(r[1]),
                    float(r[2]),
                    float(r[3]),
                    float(r[4]),
                    int(r[5]),
                    int(r[6]),
                )
                for r in rows
            )
        )
    return out


def json_only(windows) -> float:
    """``json.loads`` of every answer alone: the floor of any stdlib-json parse path."""
    t0 = time.perf_counter()
    for *_, body in windows:
        json.loads(body)
    return time.perf_counter() - t0


def raw_run(batches: list[list[tuple]], path: Path) -> tuple[float, int]:
    db = open_database(path)  # same schema and pragmas (WAL, synchronous=NORMAL)
    con = db._conn
    n = 0
    t0 = time.perf_counter()
    for rows in batches:
        con.execute("BEGIN IMMEDIATE")
        if rows:
            con.executemany("INSERT INTO candle VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        con.execute("COMMIT")
        n += len(rows)
    total = time.perf_counter() - t0
    db.close()
    return total, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--profile", action="store_true", help="cProfile one engine round")
    ap.add_argument(
        "--parsed", action="store_true", help="per-window path: get_candles + store_window"
    )
    a = ap.parse_args()
    windows, contracts = build_windows()
    nbytes = sum(len(w[3]) for w in windows)
    tmp = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    # contract ids as the engine database assigns them (same order in every fresh file)
    db = open_database(tmp / "ids.sqlite3")
    ids = {}
    for e, items in contracts.items():
        db.store_contracts(NIFTY, e, [_contract(i) for i in items], mark_fetched=True)
        ids.update({r.expired_key: r.id for r in db.contracts_for(NIFTY, e)})
    db.close()
    batches = parsed_rows(windows, ids)
    total_rows = sum(len(b) for b in batches)
    print(
        f"{len(windows)} windows, {total_rows} candles, {nbytes / 1e6:.1f} MB of JSON "
        f"({nbytes / total_rows:.0f} bytes per candle)"
    )
    if a.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.enable()
        asyncio.run(engine_run(windows, contracts, tmp / "profile.sqlite3", a.parsed))
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(18)
    eng, raw, col, js = [], [], [], []
    cpu: dict[str, list[float]] = {"engine": [], "raw": [], "collector": []}
    for r in range(a.rounds):
        c0 = time.process_time()
        total, parse_s, write_s, n = asyncio.run(
            engine_run(windows, contracts, tmp / f"engine{r}.sqlite3", a.parsed)
        )
        c1 = time.process_time()
        assert n == total_rows, (n, total_rows)
        eng.append((total, parse_s, write_s))
        rt, rn = raw_run(batches, tmp / f"raw{r}.sqlite3")
        c2 = time.process_time()
        assert rn == total_rows
        raw.append(rt)
        ct, cn = asyncio.run(collector_run(windows, tmp / f"collector{r}.sqlite3"))
        c3 = time.process_time()
        assert cn == total_rows, (cn, total_rows)
        col.append(ct)
        cpu["engine"].append(c1 - c0)
        cpu["raw"].append(c2 - c1)
        cpu["collector"].append(c3 - c2)
        js.append(json_only(windows))
        print(
            f"round {r + 1}: engine {total:.2f} s (fetch {parse_s:.2f} s, write {write_s:.2f} s)"
            f" = {n / total:,.0f} candles/s; raw executemany {rt:.2f} s = {rn / rt:,.0f} candles/s;"
            f" collector {ct:.2f} s = {cn / ct:,.0f} candles/s ({rt / ct:.0%} of raw); "
            f"CPU s engine {c1 - c0:.2f}, raw {c2 - c1:.2f}, collector {c3 - c2:.2f}"
        )
    e_med = statistics.median(t for t, _, _ in eng)
    p_med = statistics.median(p for _, p, _ in eng)
    w_med = statistics.median(w for _, _, w in eng)
    r_med = statistics.median(raw)
    c_med = statistics.median(col)
    e_rate, r_rate, c_rate = total_rows / e_med, total_rows / r_med, total_rows / c_med
    print(
        f"median: engine {e_rate:,.0f} candles/s ({nbytes / e_med / 1e6:.1f} MB/s of JSON; "
        f"fetch {total_rows / p_med:,.0f}/s, write {total_rows / w_med:,.0f}/s); "
        f"raw executemany {r_rate:,.0f} candles/s"
    )
    j_med = statistics.median(js)
    print(
        f"median: collector as run {c_rate:,.0f} candles/s; json.loads alone {j_med:.2f} s "
        f"({total_rows / j_med:,.0f} candles/s) = {j_med / e_med:.0%} of the per-window path"
    )
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    print(
        "median CPU seconds (all threads; steadier than wall time on a shared machine): "
        f"engine {cpu_med['engine']:.2f} ({cpu_med['raw'] / cpu_med['engine']:.0%} of raw's "
        f"rate), raw {cpu_med['raw']:.2f}, collector {cpu_med['collector']:.2f} "
        f"({cpu_med['raw'] / cpu_med['collector']:.0%} of raw's rate)"
    )
    ratio = e_rate / r_rate
    c_ratio = c_rate / r_rate
    path = "get_candles + store_window" if a.parsed else "get_candle_rows + store_window_rows"
    print(
        f"per-window path ({path}, sequential) / raw = {ratio:.0%}; "
        f"collector as run / raw = {c_ratio:.0%} (target >= 50%): "
        f"{'PASS' if c_ratio >= 0.5 else 'FAIL'}"
    )
    ratio = c_ratio
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ratio >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
