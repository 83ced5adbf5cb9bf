"""Ingest rate: JSON response bytes -> committed candle rows, through the engine's own code,
next to a raw ``executemany`` of the same pre-parsed rows into the same schema.

Data: the simulator's serialized answers (exactly its JSON bytes, newest candle first) for
every 30-day window of NIFTY's last two expiries' 85 contracts over 4 months (471,530 1-minute
candles). No network and no rate limit.

- raw: ``executemany("INSERT INTO candle VALUES (...)")`` of the already parsed rows (epoch
  seconds, prices as the store keeps them: integer paise, sorted), one transaction per window,
  same schema, same pragmas (WAL,
  synchronous=NORMAL), a fresh file.
- ingest (the target measure, bytes -> committed rows): per window, the two calls the engine
  makes on an answer's bytes — ``decode_candles`` (msgspec typed decode + checks; the client
  runs it on ``response.content``) and ``Database.store_window_rows`` (clip to the window,
  ``executemany`` with SQLite's ``unixepoch`` for the times, + done mark, one transaction) —
  on a database opened by ``open_database``, in one thread.
- per window with HTTP: the same through the real ``UpstoxClient`` (``get_candle_rows``, an
  httpx ``MockTransport`` handing over the prepared bytes, limiter with an unreachable limit)
  and the store's writer thread (``db.run``), one window after the other; ``--parsed``
  measures the Python-values path instead (``get_candles``: the same decode, then a checked
  Python candle per row; ``store_window``).
- collector as run: the whole engine (``Collector``, concurrency 8, writer thread, job and
  progress bookkeeping), the candle answers served from the prepared bytes.

All are timed in the same process, alternating, ``--rounds`` times; medians are reported.
Target: ingest >= 50% of raw.

    .venv/bin/python bench/bench_ingest.py [--rounds 5] [--profile]
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


def seeded_database(path: Path, contracts) -> tuple:
    """(database with the contracts stored, their ids by expired key, a job id)."""
    db = open_database(path)
    ids = {}
    for e, items in contracts.items():
        db.store_contracts(NIFTY, e, [_contract(i) for i in items], mark_fetched=True)
        ids.update({r.expired_key: r.id for r in db.contracts_for(NIFTY, e)})
    return db, ids, db.create_job("collect", {})


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

    db, ids, job = seeded_database(path, contracts)
    limiter = RateLimiter(RateLimitSpec(((100_000_000, 1.0),)))  # beyond parse: no limit
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
            stored = await db.run(db.store_window_rows, ids[key], "1minute", f, t, rows, job_id=job)
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
        limiter=RateLimiter(RateLimitSpec(((100_000_000, 1.0),))),  # beyond parse: no limit
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
    """The same candles, pre-parsed to stored tuples (outside the timed part): epoch seconds,
    prices in the store's layout (``store/prices.py``: close in paise, the others relative)."""
    from expirytrack_desktop.store.prices import stored_rows
    from expirytrack_desktop.timeutil import parse_ts

    out = []
    for key, _f, _t, body in windows:
        rows = json.loads(body)["data"]["candles"]
        cid = ids[key]
        stored, exact = stored_rows(
            (parse_ts(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[5]),
             int(r[6]))
            for r in rows
        )  # fmt: skip
        assert not exact
        out.append(sorted((cid, 1, *r) for r in stored))
    return out


def ingest_run(windows, contracts, path: Path) -> tuple[float, int]:
    """Bytes -> committed rows with the engine's own calls, in this thread."""
    from expirytrack_desktop.upstox.candles import decode_candles

    db, ids, job = seeded_database(path, contracts)
    n = 0
    t0 = time.perf_counter()
    for key, f, t, body in windows:
        rows = decode_candles(body)
        n += db.store_window_rows(ids[key], "1minute", f, t, rows, job_id=job).candles
    total = time.perf_counter() - t0
    db.close()
    return total, n


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
    db, ids, _ = seeded_database(tmp / "ids.sqlite3", contracts)
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
    times: dict[str, list[float]] = {"raw": [], "ingest": [], "engine": [], "collector": []}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    for r in range(a.rounds):
        for name in ("raw", "ingest", "engine", "collector"):
            c0 = time.process_time()
            path = tmp / f"{name}{r}.sqlite3"
            if name == "raw":
                t, n = raw_run(batches, path)
            elif name == "ingest":
                t, n = ingest_run(windows, contracts, path)
            elif name == "engine":
                t, _, _, n = asyncio.run(engine_run(windows, contracts, path, a.parsed))
            else:
                t, n = asyncio.run(collector_run(windows, path))
            cpu[name].append(time.process_time() - c0)
            times[name].append(t)
            assert n == total_rows, (name, n, total_rows)
        print(
            f"round {r + 1}: "
            + "; ".join(
                f"{k} {times[k][-1]:.2f} s = {total_rows / times[k][-1]:,.0f}/s"
                + ("" if k == "raw" else f" ({times['raw'][-1] / times[k][-1]:.0%})")
                for k in times
            )
        )
    med = {k: statistics.median(v) for k, v in times.items()}
    cmed = {k: statistics.median(v) for k, v in cpu.items()}
    label = {
        "raw": "raw executemany of the parsed rows",
        "ingest": "ingest: decode_candles + store_window_rows",
        "engine": "per window with HTTP: "
        + ("get_candles + store_window" if a.parsed else "get_candle_rows + store_window_rows"),
        "collector": "collector as run (concurrency 8)",
    }
    print(f"medians of {a.rounds} rounds (ratio = this rate / raw rate; CPU s all threads):")
    for k in times:
        ratio = med["raw"] / med[k]
        cratio = cmed["raw"] / cmed[k]
        print(
            f"  {label[k]:58s} {total_rows / med[k]:>9,.0f} candles/s "
            + (f"{nbytes / med[k] / 1e6:5.1f} MB/s" if k != "raw" else "  (no JSON)")
            + f"  {ratio:4.0%}  CPU {cmed[k]:.2f} s ({cratio:.0%})"
        )
    ratio = med["raw"] / med["ingest"]
    print(
        f"ingest (JSON bytes -> committed rows) / raw = {ratio:.0%} (target >= 50%): "
        f"{'PASS' if ratio >= 0.5 else 'FAIL'}"
    )
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ratio >= 0.5 else 1


if __name__ == "__main__":
    sys.exit(main())
