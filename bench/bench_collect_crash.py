"""Crash safety: ``kill -9`` the CLI at ten random moments of a collection, restart until done.

Setup as in ``bench_collect_exact.py`` (faulty simulator with the real rate limits on a
loopback port, NIFTY's last two expiries, ``--months 4``, ``--concurrency 8``). First a clean
run (its own simulator and home), then the crash run (a fresh simulator with the same seeds):
the CLI is killed with SIGKILL when the simulator receives the k-th request (k drawn at random,
seeded, over the clean run's request count) plus a random 0-500 ms delay, ten times; after each
kill the same command is started again, until one exits 0.

Checks: the final database's content (every contract row and every candle row, ordered, hashed)
equals the clean run's and the simulator's ground truth; ``PRAGMA integrity_check`` is ok; no 429;
and total requests exceed the clean run's by at most concurrency x kills. Reported besides: the
requests in progress at the simulator at each kill, and the successful candle responses whose
days had to be served again (work lost in flight).

    .venv/bin/python bench/bench_collect_crash.py [--seed 20261122] [--kills 10]
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _collect_harness import (
    CONCURRENCY,
    NIFTY,
    bench_parser,
    cli_env,
    compare,
    content_hash,
    finish,
    integrity,
    last_expiries,
    lost_responses,
    make_app,
    refetched_days,
    run_cli,
    serve_collect,
)


def clean_run(tmp: Path) -> tuple[int, int, str, float]:
    app = make_app()
    expiries = last_expiries(app)
    db = tmp / "clean.sqlite3"
    home = tmp / "clean-home"
    home.mkdir()
    with serve_collect(app, db, expiries, show=False) as (_base, argv):
        t0 = time.monotonic()
        proc = run_cli(argv, home)
        wall = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"clean run failed ({proc.returncode}): {proc.stderr[-1500:]}")
    ok = sum(1 for h in app.hits if h.ok)
    digest, nc, nk = content_hash(db)
    print(
        f"clean run: exit 0 in {wall:.1f} s, {app.stats.requests} requests ({ok} answered "
        f"without a fault), {app.stats.rate_limited} 429s; {nc} contracts, {nk} candles, "
        f"sha256 {digest[:16]}"
    )
    return app.stats.requests, ok, digest, wall


def main() -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--seed", type=int, default=20261122, help="seed of the kill moments")
    ap.add_argument("--kills", type=int, default=10)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-crash-"))
    clean_total, clean_ok, clean_digest, _clean_wall = clean_run(tmp)

    rng = random.Random(a.seed)
    thresholds = sorted(rng.sample(range(2, int(clean_total * 0.95)), a.kills))
    delays = [rng.uniform(0.0, 0.5) for _ in thresholds]
    print(f"kill at arrivals {thresholds} (+ delays {[round(d, 2) for d in delays]} s)")

    app = make_app()
    expiries = last_expiries(app)
    db = tmp / "crash.sqlite3"
    home = tmp / "crash-home"
    home.mkdir()
    state = {"proc": None, "armed": None, "fired": False}
    kills: list[dict] = []
    lock = threading.Lock()

    def do_kill(proc: subprocess.Popen, n: int) -> None:
        with lock:
            if proc.poll() is not None:
                kills.append({"arrival": n, "in_progress": None, "note": "already exited"})
                return
            in_prog = app.in_progress
            os.kill(proc.pid, signal.SIGKILL)
            kills.append({"arrival": n, "at_request": app.stats.requests, "in_progress": in_prog})

    def on_arrival(n: int) -> None:
        with lock:
            i = state["armed"]
            if i is None or state["fired"] or n < thresholds[i]:
                return
            state["fired"] = True
            proc = state["proc"]
        threading.Timer(delays[i], do_kill, args=(proc, n)).start()

    app.on_arrival = on_arrival
    runs: list[tuple[int, float]] = []
    bounds: list[tuple[float, float]] = []  # (start, end) monotonic time of each process
    t_all = time.monotonic()
    with serve_collect(app, db, expiries) as (_base, argv):
        k = 0
        while True:
            with lock:
                state["armed"] = k if k < len(thresholds) else None
                state["fired"] = False
                log = open(tmp / f"run{len(runs)}.log", "w")  # noqa: SIM115
                state["proc"] = subprocess.Popen(
                    argv, env=cli_env(home), stdout=log, stderr=subprocess.STDOUT, cwd=str(home)
                )
                proc = state["proc"]
            t0 = time.monotonic()
            rc = proc.wait(timeout=900)
            time.sleep(0.6)  # let a pending kill timer fire or lapse
            log.close()
            runs.append((rc, time.monotonic() - t0))
            bounds.append((t0, time.monotonic()))
            if rc == -signal.SIGKILL:
                k += 1
                continue
            if state["fired"] and k < len(thresholds):  # exited before the timer fired
                k += 1
            if rc == 0 and k >= len(thresholds):
                break
            if rc == 0 and state["armed"] is not None:
                print(f"  run {len(runs)} finished before kill #{k + 1}; stopping early")
                break
            if len(runs) > 3 * a.kills + 5:
                print("too many runs; giving up")
                break
    wall = time.monotonic() - t_all
    killed = sum(1 for rc, _ in runs if rc == -signal.SIGKILL)
    print(
        f"crash run: {len(runs)} processes, {killed} killed by SIGKILL, exit codes "
        f"{[rc for rc, _ in runs]}, {wall:.1f} s in all"
    )
    lost = lost_responses(app.hits)
    lost_per_run = [sum(1 for h in lost if b0 <= h.done < b1) for b0, b1 in bounds]
    for i, kinfo in enumerate(kills, 1):
        print(
            f"  kill {i}: {kinfo}, successful candle responses of that process lost "
            f"(served again later): {lost_per_run[i - 1]}"
        )

    digest, nc, nk = content_hash(db)
    ic = integrity(db)
    cmp = compare(db, app.market, NIFTY, expiries)
    total = app.stats.requests
    ok_total = sum(1 for h in app.hits if h.ok)
    dup_days, dup_resp = refetched_days(app.hits)
    restarts = len(runs) - 1
    discovery = sum(1 for h in app.hits if h.endpoint != "historical_candle")
    rejected = sum(1 for h in app.hits if h.status == 400)
    in_flight = [kk["in_progress"] for kk in kills if kk.get("in_progress") is not None]
    allowed = CONCURRENCY * killed
    excess = total - clean_total
    print(
        f"final db: {nc} contracts, {nk} candles, sha256 {digest[:16]} "
        f"({'equal to' if digest == clean_digest else 'DIFFERENT from'} the clean run's); "
        f"integrity_check: {ic}; exact vs simulator: {cmp.exact}"
    )
    print(
        f"requests: crash run {total} vs clean {clean_total}: excess {excess} "
        f"(allowed: concurrency {CONCURRENCY} x {killed} kills = {allowed}); "
        f"answered without fault {ok_total} vs {clean_ok}: excess {ok_total - clean_ok}; "
        f"429s {app.stats.rate_limited}"
    )
    print(
        f"  discovery/contract requests {discovery} over {restarts + 1} processes; span "
        f"rejections {rejected}; "
        f"requests in progress at the simulator at each kill: {in_flight} (sum {sum(in_flight)}); "
        f"successful candle responses lost and served again: {dup_resp} responses, "
        f"{dup_days} contract-days"
    )
    ok = (
        digest == clean_digest
        and ic == "ok"
        and cmp.exact
        and excess <= allowed
        and app.stats.rate_limited == 0
        and killed == a.kills
        and runs[-1][0] == 0
    )
    return finish(ok, tmp, a.keep)


if __name__ == "__main__":
    sys.exit(main())
