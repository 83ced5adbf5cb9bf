"""Limits lifted: requests and candles per second the engine sustains, and its CPU per request.

The simulator runs as its own process (``bench/_sim_logged.py``: market seed 7, today
2025-11-20, stocks included, no rate limit, a 30-day span cap on 1-minute candles unless
``--span-cap 0``, latency ``--latency-ms``, default none) and logs every request. The engine
is the CLI in its own process, as a user runs it:

    expirytrack collect -i KEY ... -e 2025-09-30 -e 2025-10-28 --months 3
        --rate-limit 100000/1 --concurrency 8 --db <fresh> --api-base ... --instruments-url ...

Cases (``--case``, repeatable; default both):

- ``dense``: NIFTY's two monthly expiries (an index option trades most minutes: thousands of
  candles per request);
- ``thin``: the same two monthly expiries of ``--stocks`` simulated stocks (every 22nd, VEDL
  left out): stock options trade ~7 candles per trading day (RESULTS.md, "F&O universe"),
  the universe's typical answer.

Measured over the steady part of the run (from the first candle request's arrival at the
simulator to the last one's answer): candle requests per second and candles per second (the
rows the answers held), the engine process's CPU seconds over that span per request (psutil
samples every 0.2 s; load-independent, unlike the rate on this shared 2-core machine), the
simulator's CPU per request, the whole engine process's CPU and peak RSS, and the load
average. ``--profile FILE`` runs the engine under cProfile (slower) and writes its stats.

    .venv/bin/python bench/bench_throughput.py [--case thin] [--stocks 10] [--latency-ms 0,0]
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_backfill import MASTER, cli_env, loadavg, read_log  # noqa: E402

TODAY = "2025-11-20"
EXPIRIES = ("2025-09-30", "2025-10-28")  # the last two monthly expiries: index and stocks
NIFTY = "NSE_INDEX|Nifty 50"


@dataclass
class Sampler:
    """CPU seconds of a process, sampled over time (interpolated at any instant)."""

    proc: psutil.Process
    samples: list[tuple[float, float]]

    def take(self) -> None:
        try:
            t = self.proc.cpu_times()
            self.samples.append((time.time(), t.user + t.system))
        except psutil.Error:
            pass

    def at(self, when: float) -> float:
        s = self.samples
        if not s:
            return 0.0
        if when <= s[0][0]:
            return s[0][1]
        for (t0, c0), (t1, c1) in itertools.pairwise(s):
            if t0 <= when <= t1:
                return c0 + (c1 - c0) * (when - t0) / max(t1 - t0, 1e-9)
        return s[-1][1]


def stock_keys(n: int) -> list[str]:
    from expirytrack_desktop.sandbox.market import Market

    market = Market(seed=7, today=date.fromisoformat(TODAY), stocks=True)
    stocks = [u for u in market.underlyings() if u.underlying_type == "EQUITY"]
    picked = [u.key for u in stocks[1::22] if u.symbol != "VEDL"]
    return picked[:n]


def run_case(name: str, keys: list[str], args: argparse.Namespace) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-throughput-{name}-"))
    log = tmp / "requests.tsv"
    sim_argv = [sys.executable, str(ROOT / "bench" / "_sim_logged.py"), "--today", TODAY,
                "--seed", "7", "--no-rate-limit", "--latency-ms", args.latency_ms,
                "--log-level", "critical", "--request-log", str(log)]  # fmt: skip
    if args.span_cap:
        sim_argv += ["--span-cap", str(args.span_cap)]
    sim = subprocess.Popen(sim_argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert sim.stdout is not None
        base = sim.stdout.readline().split(" on ", 1)[1].split()[0]
        home, db = tmp / "home", tmp / "c.sqlite3"
        home.mkdir()
        argv = [sys.executable]
        if args.profile:
            argv += ["-m", "cProfile", "-o", str(Path(args.profile).resolve()) + f".{name}"]
            argv += ["-m", "expirytrack_desktop.cli.main"]
        else:
            argv += ["-m", "expirytrack_desktop.cli.main"]
        argv += ["collect"]
        for k in keys:
            argv += ["-i", k]
        for e in EXPIRIES:
            argv += ["-e", e]
        argv += ["--months", "3", "--rate-limit", "100000/1", "--concurrency",
                 str(args.concurrency), "--db", str(db), "--api-base", base,
                 "--instruments-url", base + MASTER]  # fmt: skip
        shown = " ".join(argv[3:]).replace(base, "http://127.0.0.1:PORT")
        print(f"[{name}] engine: expirytrack {shown.replace(str(tmp), 'TMP')}", flush=True)
        load0 = loadavg()
        out = (tmp / "engine.out").open("w")
        eng = subprocess.Popen(
            argv, env=cli_env(home), stdout=out, stderr=subprocess.STDOUT, cwd=home
        )
        es = Sampler(psutil.Process(eng.pid), [])
        ss = Sampler(psutil.Process(sim.pid), [])
        while True:  # wait4 (not poll) so the child's rusage is ours to read
            pid, status, usage = os.wait4(eng.pid, os.WNOHANG)
            if pid:
                break
            es.take()
            ss.take()
            time.sleep(0.2)
        eng.returncode = os.waitstatus_to_exitcode(status)
        out.close()
        ss.take()
        load1 = loadavg()
        text = (tmp / "engine.out").read_text()
        if eng.returncode:
            print(text[-2000:])
            raise SystemExit(f"[{name}] engine exit {eng.returncode}")
        time.sleep(0.5)
    finally:
        sim.terminate()
        sim.wait(timeout=20)
    reqs = read_log(log)
    candles = [r for r in reqs if r.endpoint == "candles" and r.status == 200]
    rejected = sum(1 for r in reqs if r.endpoint == "candles" and r.status != 200)
    t0, t1 = min(r.arrived for r in candles), max(r.done for r in candles)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    stored = con.execute("SELECT count(*) FROM candle").fetchone()[0]
    windows = con.execute("SELECT count(*), sum(candles = 0) FROM fetch_window").fetchone()
    con.close()
    span = t1 - t0
    eng_cpu = es.at(t1) - es.at(t0)
    sim_cpu = ss.at(t1) - ss.at(t0)
    total_cpu = usage.ru_utime + usage.ru_stime
    res = {
        "requests": len(candles),
        "rejected": rejected,
        "all_requests": len(reqs),
        "candles": stored,
        "windows": windows[0],
        "empty": windows[1] or 0,
        "span": span,
        "rps": len(candles) / span,
        "cps": stored / span,
        "eng_ms": 1000 * eng_cpu / len(candles),
        "sim_ms": 1000 * sim_cpu / len(candles),
        "eng_total": total_cpu,
        "rss": usage.ru_maxrss / 1024,
    }
    per = stored / max(len(candles), 1)
    print(
        f"[{name}] {len(candles):,} candle requests ({res['empty']:,} windows without trades; "
        f"{rejected} span rejections; {len(reqs):,} requests in all) in {span:.1f} s: "
        f"**{res['rps']:.1f} requests/s, {res['cps']:,.0f} candles/s**, {per:,.0f} candles per "
        f"request; engine CPU {res['eng_ms']:.2f} ms per request over that span "
        f"(= {1000 / res['eng_ms']:.0f} requests/s on one free core), simulator CPU "
        f"{res['sim_ms']:.2f} ms per request; engine process in all: {total_cpu:.1f} s CPU, "
        f"peak RSS {res['rss']:.0f} MB; load average before {load0}, after {load1}",
        flush=True,
    )
    if args.keep:
        print("kept:", tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=("dense", "thin"), action="append")
    ap.add_argument("--stocks", type=int, default=10)
    ap.add_argument("--latency-ms", default="0,0")
    ap.add_argument("--span-cap", type=int, default=30, help="days; 0 = none")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--profile", metavar="FILE", help="run the engine under cProfile")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    cases: dict[str, Callable[[], list[str]]] = {
        "dense": lambda: [NIFTY],
        "thin": lambda: stock_keys(args.stocks),
    }
    ok = True
    for name in args.case or ["dense", "thin"]:
        r = run_case(name, cases[name](), args)
        if name == "thin":
            ok = r["rps"] >= 50
            print(f"thin answers: {r['rps']:.1f} requests/s vs target 50: "
                  f"{'PASS' if ok else 'FAIL'}")  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
