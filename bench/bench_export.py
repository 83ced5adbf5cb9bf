"""Export throughput and peak memory on >= 5 million candles, next to a pandas baseline.

    .venv/bin/python bench/bench_export.py [--candles 5400000] [--rebuild] [--only csv,parquet]
        [--runs 5] [--ahead 3] [--group-rows 50000] [--tree /tmp/before --tree .]

Builds (once, cached in bench/out/, git-ignored) a store database shaped like real data:
4 underlyings (NIFTY, BANKNIFTY, SENSEX50 indexes and the VEDL stock with fractional
strikes), weekly expiries of 60 strikes x CE/PE plus the future, each contract trading the
last 5 sessions of its expiry minute by minute (09:15-15:29 IST) with ~15% of minutes
missing, prices in whole 0.05 ticks. Then runs each exporter in its own subprocess and
reports rows/s (wall time of the export call), that process's peak RSS and (Linux) its RSS
once the export has returned (what the window keeps); with ``--runs N`` the median run by
wall time (and the highest peak RSS of the N).

``--tree DIR`` (twice or more): the same measurements of each source tree's exporter, run by
turns (a run of each tree, then the next round), so a shared machine's slow spells fall on
every tree alike; each tree's median and its ratio to the first. A tree made with ``git
archive <commit>`` needs the database linked into its ``bench/out/`` (its own bench script
runs its own code).

Baseline: what a plain pandas exporter does -- ``pd.read_sql`` of the joined query (with
the symbol, date, time and timestamp columns made by SQLite) and ``DataFrame.to_csv``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
DB = OUT / "export_bench_v4.sqlite3"  # v4: the paise layout (store/prices.py)
sys.path.insert(0, str(ROOT))

UNDERLYINGS = [
    # id, key, symbol, spot, strike step
    (1, "NSE_INDEX|Nifty 50", "NIFTY", 23_000.0, 50.0),
    (2, "NSE_INDEX|Nifty Bank", "BANKNIFTY", 49_000.0, 100.0),
    (3, "BSE_INDEX|SNSX50", "SENSEX50", 24_500.0, 100.0),
    (4, "NSE_EQ|INE205A01025", "VEDL", 290.0, 2.5),
]
STRIKES_PER_SIDE = 30
SESSIONS = 5
MINUTES = 375  # 09:15 .. 15:29


def trading_days_before(expiry: date, n: int) -> list[date]:
    days: list[date] = []
    d = expiry
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d -= timedelta(days=1)
    return sorted(days)


def build(path: Path, target: int) -> int:
    import numpy as np

    from expirytrack_desktop.export.symbols import openalgo_symbol
    from expirytrack_desktop.timeutil import IST

    per_contract = int(SESSIONS * MINUTES * 0.85)
    contracts_per_expiry = 2 * 2 * STRIKES_PER_SIDE + 1
    expiries = -(-target // (per_contract * contracts_per_expiry * len(UNDERLYINGS)))
    tmp = path.with_suffix(".building")
    tmp.unlink(missing_ok=True)
    from expirytrack_desktop.store import open_database

    open_database(tmp).close()  # the app's schema, every migration
    conn = sqlite3.connect(tmp)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    rng = np.random.default_rng(7)
    cid = 0
    total = 0
    first_expiry = date(2025, 1, 2)  # a Thursday
    for uid, key, sym, spot, step in UNDERLYINGS:
        conn.execute(
            "INSERT INTO underlying (id, instrument_key, symbol, name) VALUES (?,?,?,?)",
            (uid, key, sym, key.split("|")[1]),
        )
        for e in range(expiries):
            expiry = first_expiry + timedelta(weeks=e)
            eid = uid * 1000 + e
            conn.execute(
                "INSERT INTO expiry (id, underlying_id, expiry_date, is_weekly) VALUES (?,?,?,1)",
                (eid, uid, expiry.isoformat()),
            )
            minutes = np.concatenate([
                int(datetime.combine(d, datetime.min.time(), IST).timestamp()) + 33_300
                + 60 * np.arange(MINUTES)
                for d in trading_days_before(expiry, SESSIONS)
            ])  # fmt: skip
            atm = round(spot / step) * step
            specs = [("FUT", None)] + [
                (kind, atm + k * step)
                for k in range(-STRIKES_PER_SIDE, STRIKES_PER_SIDE)
                for kind in ("CE", "PE")
            ]
            rows = []
            for kind, strike in specs:
                cid += 1
                osym = openalgo_symbol(sym, expiry, kind, strike)
                tsym = f"{sym} {expiry:%d %b %y} {'' if strike is None else f'{strike:g} '}{kind}"
                conn.execute(
                    "INSERT INTO contract (id, expired_key, expiry_id, contract_type,"
                    " strike_price, trading_symbol, lot_size, underlying_symbol, openalgo_symbol)"
                    " VALUES (?,?,?,?,?,?,?,?,?)",
                    (cid, f"X|{cid}|{expiry}", eid, kind, strike, tsym, 75, sym, osym),
                )
                keep = minutes[rng.random(minutes.size) < 0.85]
                n = keep.size
                base = spot if kind == "FUT" else max(spot * 0.01, abs(spot - strike) + spot * 0.01)
                ticks = np.maximum(1, np.round(base * 20) + np.cumsum(rng.integers(-4, 5, n)))
                o = ticks
                c = np.maximum(1, ticks + rng.integers(-3, 4, n))
                h = np.maximum(o, c) + rng.integers(0, 4, n)
                lo = np.maximum(1, np.minimum(o, c) - rng.integers(0, 4, n))
                vol = rng.integers(0, 5000, n) * 25
                oi = 100_000 + np.cumsum(rng.integers(-50, 51, n)) * 25
                # the store's layout (store/prices.py): close in paise (a tick is 5 paise),
                # open/high/low in paise relative to it
                paise = [x.astype(np.int64) * 5 for x in (c, o - c, h - c, lo - c)]
                rows.extend(zip(
                    [cid] * n, [1] * n, keep.tolist(), *(x.tolist() for x in paise),
                    vol.tolist(), oi.tolist(), strict=True,
                ))  # fmt: skip
            conn.executemany("INSERT INTO candle VALUES (?,?,?,?,?,?,?,?,?)", rows)
            total += len(rows)
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    os.replace(tmp, path)
    return total


# ---- one measurement per subprocess --------------------------------------------------------


def child(kind: str, db: Path, out: Path, tuning: dict | None = None) -> dict:
    t0 = time.perf_counter()
    c0 = time.process_time()
    if kind == "baseline":
        import pandas as pd

        conn = sqlite3.connect(db)
        df = pd.read_sql(
            """SELECT c.openalgo_symbol,
                      strftime('%Y-%m-%d', k.ts + 19800, 'unixepoch') AS date,
                      strftime('%H:%M:%S', k.ts + 19800, 'unixepoch') AS time,
                      strftime('%Y-%m-%dT%H:%M:%S+05:30', k.ts + 19800, 'unixepoch') AS timestamp,
                      k.open, k.high, k.low, k.close, k.volume, k.oi,
                      CASE WHEN u.instrument_key LIKE 'BSE%' THEN 'BFO' ELSE 'NFO' END
                        AS exchange
               FROM candle_rupees k JOIN contract c ON c.id = k.contract_id
               JOIN expiry e ON e.id = c.expiry_id JOIN underlying u ON u.id = e.underlying_id
               WHERE k.interval = 1
               ORDER BY c.openalgo_symbol, k.ts""",
            conn,
        )
        df.to_csv(out, index=False)
        rows = len(df)
    else:
        from expirytrack_desktop.export.api import ExportOptions, run_export

        keys = tuple(u[1] for u in UNDERLYINGS)
        fmt, _, variant = kind.partition("-")
        opts = ExportOptions(
            keys, format=fmt,  # type: ignore[arg-type]
            parquet_partitioned="partitioned" in variant, per_contract="percontract" in variant,
        )  # fmt: skip
        arrow = "rowbyrow" not in variant  # the row-by-row reader (the "before" figure)
        exported_at = lambda: datetime(2026, 12, 7, 8, 0, tzinfo=UTC)  # noqa: E731 (JSON: same)
        tuning = tuning or {}
        if tuning.get("ahead"):  # readers' groups kept ready (arrow_read.AHEAD), to compare
            from expirytrack_desktop.export import arrow_read

            arrow_read.AHEAD = tuning["ahead"]
        rows = run_export(
            db, opts, out, record_history=False, arrow_reader=arrow, clock=exported_at,
            chunk_rows=tuning.get("group_rows"),
        ).rows  # fmt: skip
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - c0
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return {"kind": kind, "rows": rows, "seconds": elapsed, "cpu": cpu,
            "peak_rss": maxrss * scale, "rss_after": rss_now()}  # fmt: skip


def rss_now() -> int | None:
    """Resident bytes now (Linux): what a long-running window keeps after an export."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return None


def measure(kind: str, out: Path, tuning: list[str] | None = None, tree: Path = ROOT) -> dict:
    if out.is_dir():
        import shutil

        shutil.rmtree(out)
    out.unlink(missing_ok=True)
    load = os.getloadavg()[0]
    script = tree / "bench" / "bench_export.py"
    res = subprocess.run(
        [sys.executable, str(script), "--child", kind, "--out", str(out), *(tuning or [])],
        capture_output=True, text=True, cwd=tree,
    )  # fmt: skip
    if res.returncode:  # say why: a bench that hides its child's error measures nothing
        sys.exit(f"{kind} in {tree} failed (exit {res.returncode}):\n{res.stderr[-3000:]}")
    data = json.loads(res.stdout.strip().splitlines()[-1])
    # the same figure from the parent's side: max RSS of waited-for children (Linux: KiB)
    data["load"] = (load, os.getloadavg()[0])  # 1-minute load average before / after
    data["children_maxrss"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    data["bytes"] = (
        sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
        if out.is_dir()
        else out.stat().st_size
    )
    return data


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--candles", type=int, default=5_400_000)
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--child")
    ap.add_argument("--out")
    ap.add_argument("--only", help="comma list of measurements")
    ap.add_argument("--runs", type=int, default=1, help="runs of each; the median is shown")
    ap.add_argument("--ahead", type=int, help="groups each reader keeps ready (default 3)")
    ap.add_argument("--group-rows", type=int, help="candles per group (default by format)")
    ap.add_argument("--tree", action="append", type=Path, help="source trees to compare")
    args = ap.parse_args()
    tuning = {"ahead": args.ahead, "group_rows": args.group_rows}
    if args.child:
        print(json.dumps(child(args.child, DB, Path(args.out), tuning)))
        return
    OUT.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not DB.exists():
        t0 = time.perf_counter()
        n = build(DB, args.candles)
        print(f"built {DB.name}: {n:,} candles in {time.perf_counter() - t0:.0f} s")
    conn = sqlite3.connect(DB)
    candles = conn.execute("SELECT count(*) FROM candle").fetchone()[0]
    contracts = conn.execute("SELECT count(*) FROM contract").fetchone()[0]
    conn.close()
    print(f"database: {candles:,} candles, {contracts:,} contracts, "
          f"{DB.stat().st_size / 2**20:.0f} MiB; Python {sys.version.split()[0]}, "
          f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs")  # fmt: skip
    kinds = {
        "baseline": OUT / "baseline.csv",
        "csv-rowbyrow": OUT / "engine_rowbyrow.csv",
        "csv": OUT / "engine.csv",
        "parquet-rowbyrow": OUT / "engine_rowbyrow.parquet",
        "parquet": OUT / "engine.parquet",
        "parquet-partitioned": OUT / "engine_dataset",
        "json-rowbyrow": OUT / "engine_rowbyrow.json",
        "json": OUT / "engine.json",
        "zip": OUT / "engine.zip",
        # many files: one per contract (3,872), and Historify's per-symbol Parquet files
        "csv-percontract": OUT / "engine_csv_files",
        "json-percontract": OUT / "engine_json_files",
        "parquet-percontract": OUT / "engine_parquet_files",
        "historify": OUT / "engine_historify",
        "historify-db": OUT / "engine_historify.duckdb",  # a direct load into a new database
    }
    if args.only:
        kinds = {k: v for k, v in kinds.items() if k in args.only.split(",")}
    if args.tree:
        compare_trees(args.tree, kinds, args.runs)
        return
    results = {}
    for kind, out in kinds.items():
        extra = [f"--{k.replace('_', '-')}={v}" for k, v in tuning.items() if v]
        runs = sorted(
            (measure(kind, out, extra) for _ in range(args.runs)), key=lambda r: r["seconds"]
        )
        r = runs[len(runs) // 2]  # the median run by wall time (machines here are shared)
        r["peak_rss"] = max(x["peak_rss"] for x in runs)
        results[kind] = r
        spread = (
            f" [{args.runs} runs: {runs[0]['seconds']:.2f}-{runs[-1]['seconds']:.2f} s]"
            if args.runs > 1
            else ""
        )
        print(
            f"{kind:>20}: {r['rows']:>10,} rows in {r['seconds']:6.2f} s = "
            f"{r['rows'] / r['seconds']:>9,.0f} rows/s (CPU {r['cpu']:5.1f} s = "
            f"{r['rows'] / r['cpu']:>9,.0f} rows/s); peak RSS {r['peak_rss'] / 2**20:5.0f} MiB;"
            f" output {r['bytes'] / 2**20:4.0f} MiB; load {r['load'][0]:.1f} -> {r['load'][1]:.1f}"
            f"{spread}"
        )  # fmt: skip
    if "csv-rowbyrow" in results and "csv" in results:
        same = sha256(kinds["csv-rowbyrow"]) == sha256(kinds["csv"])
        print(f"CSV (Arrow path) byte-identical to the row-by-row writer: {same}")
    if "json-rowbyrow" in results and "json" in results:
        same = sha256(kinds["json-rowbyrow"]) == sha256(kinds["json"])
        print(f"JSON (Arrow path) byte-identical to the row-by-row writer: {same}")
    if "baseline" in results and "csv" in results:
        b, c = results["baseline"], results["csv"]
        same = sha256(kinds["baseline"]) == sha256(kinds["csv"])
        print(f"CSV speed-up over the pandas baseline: {b['seconds'] / c['seconds']:.1f}x wall, "
              f"{b['cpu'] / c['cpu']:.1f}x CPU; byte-identical output: {same}")  # fmt: skip


def compare_trees(trees: list[Path], kinds: dict[str, Path], runs: int) -> None:
    """Each measurement ``runs`` rounds, a run of every tree per round (see the docstring)."""
    trees = [t.resolve() for t in trees]
    for t in trees:
        if not (t / "bench" / "out" / DB.name).exists():
            sys.exit(f"{t}/bench/out/{DB.name} is missing: link this database there")
    for kind, out in kinds.items():
        got: list[list[dict]] = [[] for _ in trees]
        for _ in range(runs):
            for i, t in enumerate(trees):
                mine = out.with_name(f"tree{i}_{out.name}")
                got[i].append(measure(kind, mine, None, t))
        first = None
        for t, rs in zip(trees, got, strict=True):
            rs.sort(key=lambda r: r["seconds"])
            r = rs[len(rs) // 2]
            first = first or r["seconds"]
            rss = max(x["peak_rss"] for x in rs) / 2**20
            after = [x["rss_after"] for x in rs if x.get("rss_after")]  # older trees: none
            kept = f", {max(after) / 2**20:.0f} after" if after else ""
            print(
                f"{kind:>20} {t.name or t!s:>12}: {r['seconds']:6.2f} s ="
                f" {r['rows'] / r['seconds']:>9,.0f} rows/s (CPU {r['cpu']:4.1f} s; peak RSS"
                f" {rss:4.0f} MiB{kept}; {runs} runs"
                f" {rs[0]['seconds']:.2f}-{rs[-1]['seconds']:.2f} s;"
                f" load {rs[0]['load'][0]:.1f}); x{r['seconds'] / first:.3f} of the first tree"
            )


if __name__ == "__main__":
    main()
