"""Shared pieces of the collection-engine benchmarks (not a benchmark itself).

The simulator runs in this process on a loopback port (``serve``) so the benchmark reads its
``stats`` and its per-request log; the CLI under test runs as a separate process
(``expirytrack collect``) with a private ``EXPIRYTRACK_HOME`` and a fresh ``--db``, so the real
home folder, keyring and rate-limit ledger are never touched.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from expirytrack_desktop.collect.plan import target_range  # noqa: E402
from expirytrack_desktop.sandbox import (  # noqa: E402
    DEMO_ACCESS_TOKEN,
    FaultConfig,
    Market,
    SimulatorApp,
    serve,
)
from expirytrack_desktop.timeutil import parse_ts  # noqa: E402

REAL_LIMITS = "50/1,500/60,2000/1800"
NIFTY = "NSE_INDEX|Nifty 50"
TODAY = date(2025, 6, 1)  # last two NIFTY expiries: 2025-05-22 (weekly), 2025-05-29 (monthly)
MONTHS = 4  # > a monthly contract's listed life (91 days), so the range holds every candle
CONCURRENCY = 8
ISSUE_FAULTS = FaultConfig(  # the fault mix the exactness target was set with
    http_500=0.05, truncated_json=0.02, drop_connection=0.02, latency_ms=(20, 200), seed=1
)
CLI = [sys.executable, "-m", "expirytrack_desktop.cli.main"]


@dataclass(slots=True)
class Hit:
    """One request as the simulator saw it."""

    endpoint: str
    path: str
    status: int
    ok: bool  # answered in full with a parseable body (no injected fault)
    arrived: float
    done: float


class RecordingApp(SimulatorApp):
    """The simulator, plus a log of every request and an arrival hook (kill triggers)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hits: list[Hit] = []
        self.in_progress = 0
        self.on_arrival: Callable[[int], None] | None = None
        self._arrivals = 0
        self._hlock = threading.Lock()

    async def handle(self, method, path, query, headers, body):  # type: ignore[override]
        t0 = time.monotonic()
        with self._hlock:
            self._arrivals += 1
            n = self._arrivals
            self.in_progress += 1
        if self.on_arrival is not None:
            self.on_arrival(n)
        try:
            resp = await super().handle(method, path, query, headers, body)
        finally:
            with self._hlock:
                self.in_progress -= 1
        ok = resp.status == 200 and not resp.drop
        if ok:
            try:
                json.loads(resp.body)
            except ValueError:
                ok = False  # truncated JSON
        endpoint = _endpoint(path)
        with self._hlock:
            self.hits.append(Hit(endpoint, path, resp.status, ok, t0, time.monotonic()))
        return resp


def _endpoint(path: str) -> str:
    if "/historical-candle/" in path:
        return "historical_candle"
    for tail, name in (("/expiries", "expiries"), ("/option/contract", "option_contracts"),
                       ("/future/contract", "future_contracts")):  # fmt: skip
        if path.rstrip("/").endswith(tail):
            return name
    return path


def make_app(*, faults: FaultConfig | None = ISSUE_FAULTS, span_cap: int | None = 30,
             seed: int = 7, fault_seed: int = 1) -> RecordingApp:  # fmt: skip
    """NIFTY-only market (seed 7, today 2025-06-01, 10 strikes per side), real rate limits,
    the target fault mix (ISSUE_FAULTS: 5% HTTP 500, 2% truncated JSON, 2% dropped
    connections, 20-200 ms latency), and a 30-day span cap on 1-15 minute candles (the client
    learns it)."""
    market = Market(seed=seed, today=TODAY, underlyings=("NIFTY",))
    caps = (
        {iv: span_cap for iv in ("1minute", "3minute", "5minute", "15minute")} if span_cap else {}
    )
    if faults is not None and fault_seed != faults.seed:
        faults = dataclasses.replace(faults, seed=fault_seed)
    return RecordingApp(market, rate_limit=REAL_LIMITS, span_cap_days=caps, faults=faults)


def last_expiries(app: SimulatorApp, n: int = 2, key: str = NIFTY) -> list[date]:
    return app.market.expiries(key)[-n:]


def cli_env(home: Path, token: str = DEMO_ACCESS_TOKEN) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPIRYTRACK_")}
    env.update(
        EXPIRYTRACK_HOME=str(home),
        EXPIRYTRACK_ACCESS_TOKEN=token,
        HOME=str(home),  # belt and braces: nothing may land in the real home
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),  # the CLI runs the same tree as this benchmark
    )
    return env


def collect_args(base: str, db: Path, expiries: list[date], *, months: int = MONTHS) -> list[str]:
    args = [*CLI, "collect", "--instrument", NIFTY, "--api-base", base, "--db", str(db)]
    for e in expiries:
        args += ["--expiry", e.isoformat()]
    return [*args, "--months", str(months), "--concurrency", str(CONCURRENCY)]


def command_text(argv: list[str]) -> str:
    """The command as a user would type it (for the report)."""
    parts = [".venv/bin/expirytrack", *argv[3:]]
    return " ".join(f"'{p}'" if " " in p or "|" in p else p for p in parts)


def run_cli(argv: list[str], home: Path, token: str = DEMO_ACCESS_TOKEN,
            timeout: float = 900) -> subprocess.CompletedProcess[str]:  # fmt: skip
    return subprocess.run(argv, env=cli_env(home, token), capture_output=True, text=True,
                          timeout=timeout, cwd=str(home))  # fmt: skip


# ---- the frame every collection benchmark shares -------------------------------------------------
def bench_parser(doc: str) -> argparse.ArgumentParser:
    """The benchmark's command line (its docstring's first line as the description), with
    ``--keep`` to keep the temp folder for a post-mortem."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    return ap


@contextlib.contextmanager
def serve_collect(app: SimulatorApp, db: Path, expiries: list[date],
                  *, show: bool = True) -> Iterator[tuple[str, list[str]]]:  # fmt: skip
    """Serve ``app`` on a loopback port; yield its base URL and the CLI's collect command
    (printed with the port masked, so reports compare across runs)."""
    with serve(app, log_level="critical") as base:  # a dropped connection logs an ERROR each
        argv = collect_args(base, db, expiries)
        if show:
            print("command:", command_text(argv).replace(base, "http://127.0.0.1:PORT"))
        yield base, argv


def finish(ok: bool, tmp: Path, keep: bool, detail: str = "") -> int:
    """Print the verdict, remove (or keep) the temp folder; the process exit code."""
    print(f"RESULT: {'PASS' if ok else 'FAIL'}{detail}")
    if keep:
        print("kept:", tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


# ---- ground truth and comparison ---------------------------------------------------------------

CONTRACT_SQL = (
    "SELECT c.expired_key, u.instrument_key, e.expiry_date, e.is_weekly, c.contract_type, "
    "c.strike_price, c.trading_symbol, c.lot_size, c.tick_size, c.exchange_token, "
    "c.freeze_quantity, c.minimum_lot, c.weekly, c.underlying_symbol, c.openalgo_symbol, "
    "c.raw_json FROM contract c JOIN expiry e ON e.id = c.expiry_id "
    "JOIN underlying u ON u.id = e.underlying_id ORDER BY c.expired_key"
)
CANDLE_SQL = (
    "SELECT c.expired_key, k.interval, k.ts, k.open, k.high, k.low, k.close, k.volume, k.oi "
    "FROM candle_rupees k JOIN contract c ON c.id = k.contract_id "
    "ORDER BY c.expired_key, k.interval, k.ts"
)


def truth_contracts(market: Market, key: str, expiries: list[date]) -> dict[str, tuple]:
    """expired_key -> the row CONTRACT_SQL must return (openalgo symbol checked separately)."""
    out: dict[str, tuple] = {}
    for e in expiries:
        weekly = int(market.is_weekly(key, e))
        for item, fut in [(i, False) for i in market.option_contracts(key, e)] + [
            (i, True) for i in market.future_contracts(key, e)
        ]:
            out[item["instrument_key"]] = (
                item["instrument_key"], key, e.isoformat(), weekly, item["instrument_type"],
                None if fut else float(item["strike_price"]), item["trading_symbol"],
                int(item["lot_size"]), float(item["tick_size"]), str(item["exchange_token"]),
                float(item["freeze_quantity"]), int(item["minimum_lot"]),
                None if fut else int(bool(item["weekly"])), item["underlying_symbol"],
                json.dumps(item, separators=(",", ":"), sort_keys=True),
            )  # fmt: skip
    return out


def truth_candles(market: Market, expired_key: str, expiry: date, months: int) -> list[tuple]:
    """The simulator's 1-minute candles of a contract inside the collected range, as stored."""
    f, t = target_range(expiry, months)
    return [
        (parse_ts(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[5]), int(r[6]))
        for r in market.candle_rows(expired_key, "1minute", f, t, newest_first=False)
    ]


@dataclass
class Comparison:
    contracts_truth: int = 0
    contracts_db: int = 0
    contract_mismatches: list[str] = field(default_factory=list)
    candles_truth: int = 0
    candles_db: int = 0
    candles_missing: int = 0
    candles_extra: int = 0
    candles_differ: int = 0
    outside_range_truth: int = 0  # simulator candles outside the collected range (0 = all held)
    no_openalgo: int = 0
    failed_windows: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def exact(self) -> bool:
        return not (
            self.contract_mismatches or self.candles_missing or self.candles_extra
            or self.candles_differ or self.contracts_truth != self.contracts_db
            or self.failed_windows or self.no_openalgo
        )  # fmt: skip


def compare(db_path: Path, market: Market, key: str, expiries: list[date],
            months: int = MONTHS) -> Comparison:  # fmt: skip
    """Every contract (all metadata) and every candle in the database against the simulator."""
    res = Comparison()
    truth = truth_contracts(market, key, expiries)
    res.contracts_truth = len(truth)
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        db_rows = {r[0]: r for r in con.execute(CONTRACT_SQL)}
        res.contracts_db = len(db_rows)
        for k in sorted(set(truth) | set(db_rows)):
            if k not in db_rows:
                res.contract_mismatches.append(f"missing contract {k}")
                continue
            if k not in truth:
                res.contract_mismatches.append(f"extra contract {k}")
                continue
            row = db_rows[k]
            got = (*row[:14], row[15])
            if got != truth[k]:
                diff = [i for i, (a, b) in enumerate(zip(got, truth[k], strict=True)) if a != b]
                res.contract_mismatches.append(f"{k}: columns {diff} differ: {got} vs {truth[k]}")
            if not row[14]:
                res.no_openalgo += 1
        res.failed_windows = con.execute(
            "SELECT count(*) FROM fetch_window WHERE state = 'failed'"
        ).fetchone()[0]
        other = con.execute("SELECT count(*) FROM candle WHERE interval != 1").fetchone()[0]
        res.candles_extra += other
        ids = dict(con.execute("SELECT expired_key, id FROM contract"))
        for k, row in sorted(truth.items()):
            expiry = date.fromisoformat(row[2])
            want = truth_candles(market, k, expiry, months)
            res.outside_range_truth += len(market.candles(k)) - len(want)
            got_rows = (
                con.execute(
                    "SELECT ts, open, high, low, close, volume, oi FROM candle_rupees "
                    "WHERE contract_id = ? AND interval = 1 ORDER BY ts",
                    (ids[k],),
                ).fetchall()
                if k in ids
                else []
            )
            res.candles_truth += len(want)
            res.candles_db += len(got_rows)
            w = {r[0]: r for r in want}
            g = {r[0]: tuple(r) for r in got_rows}
            miss = w.keys() - g.keys()
            extra = g.keys() - w.keys()
            differ = [ts for ts in w.keys() & g.keys() if w[ts] != g[ts]]
            res.candles_missing += len(miss)
            res.candles_extra += len(extra)
            res.candles_differ += len(differ)
            for label, tss in (("missing", miss), ("extra", extra), ("differ", differ)):
                if tss and len(res.examples) < 10:
                    ts = min(tss)
                    res.examples.append(f"{k} ts={ts} {label}: db={g.get(ts)} sim={w.get(ts)}")
        orphans = con.execute(
            "SELECT count(*) FROM candle WHERE contract_id NOT IN (SELECT id FROM contract)"
        ).fetchone()[0]
        res.candles_extra += orphans
    finally:
        con.close()
    return res


def content_hash(db_path: Path) -> tuple[str, int, int]:
    """(sha256 of every contract row and every candle row in key order, contracts, candles)."""
    h = hashlib.sha256()
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        nc = nk = 0
        for r in con.execute(CONTRACT_SQL):
            h.update(repr(tuple(r)).encode())
            nc += 1
        h.update(b"--candles--")
        for r in con.execute(CANDLE_SQL):
            h.update(repr(tuple(r)).encode())
            nk += 1
    finally:
        con.close()
    return h.hexdigest(), nc, nk


def integrity(db_path: Path) -> str:
    con = sqlite3.connect(str(db_path))
    try:
        return str(con.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        con.close()


# ---- request accounting ------------------------------------------------------------------------


def candle_spans(hits: list[Hit]) -> dict[str, list[tuple[date, date]]]:
    """Successful candle responses per contract key: the (from, to) day ranges served."""
    out: dict[str, list[tuple[date, date]]] = {}
    for h in hits:
        if h.endpoint != "historical_candle" or not h.ok:
            continue
        tail = h.path.split("/historical-candle/", 1)[1].split("/")
        key, to_d, from_d = tail[0], date.fromisoformat(tail[2]), date.fromisoformat(tail[3])
        out.setdefault(key, []).append((from_d, to_d))
    return out


def lost_responses(hits: list[Hit]) -> list[Hit]:
    """Successful candle responses whose days a later successful response served again."""
    by_key: dict[str, list[tuple[Hit, date, date]]] = {}
    for h in sorted(hits, key=lambda h: h.arrived):
        if h.endpoint != "historical_candle" or not h.ok:
            continue
        tail = h.path.split("/historical-candle/", 1)[1].split("/")
        by_key.setdefault(tail[0], []).append(
            (h, date.fromisoformat(tail[3]), date.fromisoformat(tail[2]))
        )
    out = []
    for spans in by_key.values():
        for n, (h, f, t) in enumerate(spans):
            if any(f2 <= t and t2 >= f for _, f2, t2 in spans[n + 1 :]):
                out.append(h)
    return out


def refetched_days(hits: list[Hit]) -> tuple[int, int]:
    """(contract-days served successfully more than once, successful candle responses whose
    days were served again by a later response: work lost, e.g. in flight at a kill)."""
    days = lost = 0
    for spans in candle_spans(hits).values():  # in arrival order
        seen: dict[date, int] = {}
        for f, t in spans:
            for i in range((t - f).days + 1):
                d = f + timedelta(days=i)
                seen[d] = seen.get(d, 0) + 1
        days += sum(c - 1 for c in seen.values() if c > 1)
        for n, (f, t) in enumerate(spans):
            if any(f2 <= t and t2 >= f for f2, t2 in spans[n + 1 :]):
                lost += 1
    return days, lost


def summarize_hits(hits: list[Hit]) -> dict[str, int]:
    by: dict[str, int] = {}
    for h in hits:
        by[h.endpoint] = by.get(h.endpoint, 0) + 1
    return by


def fmt_stats(app: SimulatorApp) -> str:
    s = app.stats
    faults = ", ".join(f"{k} {v}" for k, v in sorted(s.faults.items())) or "none"
    return (
        f"{s.requests} requests ({dict(sorted(s.by_endpoint.items()))}); "
        f"statuses {dict(sorted(s.by_status.items()))}; 429s {s.rate_limited}; "
        f"faults injected {s.faults_injected} ({faults})"
    )
