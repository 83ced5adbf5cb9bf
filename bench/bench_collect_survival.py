"""A long run that lives through a network outage and a token expiry without stopping: one
`expirytrack collect` process, the simulator taken away and brought back on the same port,
then every token expired and a new login saved while the run waits (README "Long runs").

Setup as in ``bench_collect_exact.py`` (faulty simulator with the real rate limits on a
loopback port, NIFTY's last two expiries, ``--months 4``, ``--concurrency 8``), but the token
comes from the secret store (an encrypted file, ``EXPIRYTRACK_PASSPHRASE``) as after
`expirytrack login`, so the run can pick up a new one.

1. after ``--outage-at`` requests the server stops (requests in flight get no answer, new
   connections are refused) for ``--outage`` seconds, then serves again on the same port;
2. after ``--expire-at`` more requests every token expires (401 UDAPI100050); once the run
   says "needs login" a new token is saved into its store (what `expirytrack login` does).

Expected: exit 0 from the one process; each wait announced once; database exact vs the
simulator; 0 HTTP 429; contract-days served twice = only answers the outage cut off.

    .venv/bin/python bench/bench_collect_survival.py [--outage 20] [--outage-at 150]
        [--expire-at 150]
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from _collect_harness import (
    NIFTY,
    bench_parser,
    cli_env,
    collect_args,
    command_text,
    compare,
    finish,
    last_expiries,
    make_app,
    refetched_days,
)

from expirytrack_desktop.sandbox.server import LOOPBACK, make_server

PASSPHRASE = "bench-survival-passphrase"


class Switchable:
    """The simulator on one loopback port: ``down()`` stops it, ``up()`` serves it again."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        with socket.socket() as s:
            s.bind((LOOPBACK, 0))
            self.port = s.getsockname()[1]
        self.base = f"http://{LOOPBACK}:{self.port}"
        self.server = self.thread = self.sock = None

    def up(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, self.port))
        sock.listen(128)
        sock.setblocking(False)
        server = make_server(self.app, "critical")
        server.config.timeout_graceful_shutdown = 1
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)
        self.server, self.thread, self.sock = server, thread, sock

    def down(self) -> None:
        self.server.should_exit = self.server.force_exit = True  # type: ignore[union-attr]
        self.thread.join(30)  # type: ignore[union-attr]
        self.sock.close()  # type: ignore[union-attr]


def save_token(home: Path, token: str) -> None:
    """What `expirytrack login` leaves behind: the token in the home's secret store."""
    os.environ["EXPIRYTRACK_HOME"] = str(home)
    from expirytrack_desktop.auth.secrets import SecretStore
    from expirytrack_desktop.auth.token import TokenManager
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.upstox.models import TokenGrant

    store = SecretStore.for_paths(AppPaths.default(), lambda _creating: PASSPHRASE)
    TokenManager(store).save_grant(TokenGrant(token, "DEMO1", "Bench"), datetime.now(UTC))


def main() -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--outage", type=float, default=20.0, help="seconds the server is away")
    ap.add_argument("--outage-at", type=int, default=150, help="requests before the outage")
    ap.add_argument("--expire-at", type=int, default=150, help="requests after it, to expiry")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-survival-"))
    app = make_app()
    expiries = last_expiries(app)
    db = tmp / "collect.sqlite3"
    save_token(tmp, app.issue_token())
    server = Switchable(app)
    server.up()
    argv = [*collect_args(server.base, db, expiries), "--network-wait", "forever"]
    print("command:", command_text(argv).replace(server.base, "http://127.0.0.1:PORT"))
    env = cli_env(tmp)
    del env["EXPIRYTRACK_ACCESS_TOKEN"]
    env["EXPIRYTRACK_PASSPHRASE"] = PASSPHRASE
    lines: list[str] = []
    seen = threading.Condition()
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=str(tmp))  # fmt: skip

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            with seen:
                lines.append(f"{time.monotonic() - t0:7.1f} s  {line.rstrip()}")
                seen.notify_all()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_for(check) -> None:  # type: ignore[no-untyped-def]
        while not check():
            if proc.poll() is not None:
                raise SystemExit(f"the run ended early: {lines}")
            time.sleep(0.02)

    def said(text: str) -> bool:
        with seen:
            return any(text in ln for ln in lines)

    wait_for(lambda: len(app.hits) >= a.outage_at)
    server.down()
    down_at, hits_at_down = time.monotonic(), len(app.hits)
    wait_for(lambda: said("waiting for the network since"))
    time.sleep(max(0.0, a.outage - (time.monotonic() - down_at)))
    server.up()
    up_at = time.monotonic()
    wait_for(lambda: len(app.hits) > hits_at_down)
    first_probe = time.monotonic() - up_at
    wait_for(lambda: any(h.endpoint == "historical_candle" for h in app.hits[hits_at_down:]))
    resumed = time.monotonic() - up_at
    app.expire_tokens_after(a.expire_at)
    wait_for(lambda: said("needs login:"))
    login_asked = time.monotonic()
    time.sleep(3.0)  # the user switches to another terminal and logs in
    save_token(tmp, app.issue_token())
    wait_for(lambda: said("new login found: continuing"))
    login_seen = time.monotonic() - login_asked - 3.0
    out, _ = proc.communicate(timeout=900)
    reader.join(10)
    total = time.monotonic() - t0
    server.down()

    cmp = compare(db, app.market, NIFTY, expiries)
    days, lost = refetched_days(app.hits)
    waits = [ln for ln in lines if "waiting for the network" in ln or "needs login:" in ln]
    print(f"exit {proc.returncode} after {total:.1f} s (one process)")
    for ln in lines:
        text = ln.split("s  ", 1)[1]
        if text.strip() and not text.startswith("["):  # the wait lines, not the progress
            print("  stderr:", ln)
    print("  stdout:", out.strip().splitlines()[-1] if out.strip() else "")
    print(
        f"outage {a.outage:g} s after {a.outage_at} requests: the API's first request after "
        f"it came back {first_probe:.1f} s later, the first candle request {resumed:.1f} s later"
    )
    print(f"new login picked up {login_seen:.1f} s after it was saved")
    print(
        f"server: {len(app.hits)} requests, 429s {app.stats.rate_limited}, "
        f"401s {sum(1 for h in app.hits if h.status == 401)}; contract-days served twice "
        f"{days}, candle answers served again {lost} (cut off by the outage or lost to the "
        "fault mix's dropped connections)"
    )
    print(f"final db exact vs simulator: {cmp.exact} ({cmp.contracts_db} contracts, "
          f"{cmp.candles_db} candles)")  # fmt: skip
    ok = (
        proc.returncode == 0
        and cmp.exact
        and app.stats.rate_limited == 0
        and len(waits) == 2
        and said("the API answers again: continuing")
    )
    return finish(ok, tmp, a.keep)


if __name__ == "__main__":
    sys.exit(main())
