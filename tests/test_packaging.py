"""The frozen (PyInstaller) app: builds the bundle, then runs its two executables.

Deselected by default (``-m 'not packaging'`` in pyproject): a build takes about a minute.
Run with ``build_spec/smoke.sh`` (builds first), or against an existing bundle with
``EXPIRYTRACK_BUNDLE=build/dist/expirytrack .venv/bin/python -m pytest -m packaging
tests/test_packaging.py``. Every frozen process gets its own home and app folders, so nothing
reads or writes the real ones; the only network is the frozen simulator on 127.0.0.1.
"""

from __future__ import annotations

import csv
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.packaging

ROOT = Path(__file__).resolve().parents[1]
EXE_SUFFIX = ".exe" if sys.platform == "win32" else ""
INSTRUMENT_KEY = "NSE_INDEX|Nifty 50"


@pytest.fixture(scope="session")
def bundle() -> Path:
    """The onedir bundle: ``$EXPIRYTRACK_BUNDLE``, else built now with build_spec/build.sh."""
    given = os.environ.get("EXPIRYTRACK_BUNDLE")
    if given:
        path = Path(given)
    else:
        subprocess.run(["bash", str(ROOT / "build_spec" / "build.sh")], cwd=ROOT, check=True)
        path = ROOT / "build" / "dist" / "expirytrack"
    for name in ("expirytrack", "expirytrack-desktop"):
        assert (path / f"{name}{EXE_SUFFIX}").is_file(), f"{name} missing in {path}"
    return path


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("frozen-home")


def frozen_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPIRYTRACK_")}
    env.update(
        HOME=str(home),
        USERPROFILE=str(home),
        XDG_DATA_HOME=str(home / ".local/share"),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        EXPIRYTRACK_HOME=str(home / "expirytrack"),
        QT_QPA_PLATFORM="offscreen",
    )
    env.update(extra)
    return env


def run(
    bundle: Path,
    home: Path,
    *args: str,
    exe: str = "expirytrack",
    stdin: str | None = None,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    # no terminal: a command that wanted to prompt (passphrase) fails instead of hanging
    feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    proc = subprocess.run(
        [str(bundle / f"{exe}{EXE_SUFFIX}"), *args],
        env=frozen_env(home, **env),
        **feed,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, (
        f"{exe} {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc


def latest_expiry() -> str:
    """The demo market's newest NIFTY expiry (expiries move with today's date)."""
    from expirytrack_desktop.runtime import DEMO_SEED
    from expirytrack_desktop.sandbox.market import Market

    market = Market(seed=DEMO_SEED, underlyings=(INSTRUMENT_KEY,))
    return market.expiries(INSTRUMENT_KEY)[-1].isoformat()


def candle_count(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return con.execute("SELECT count(*) FROM historical_data").fetchone()[0]


def test_bundle_check_finds_everything(bundle, home):
    out = run(bundle, home, "--bundle-check").stdout
    assert "FAIL" not in out
    for name in ("frozen", "resources", "migrations", "keyring", "secrets-fallback", "sandbox"):
        assert f"ok   {name}:" in out
    for name in ("cli-commands", "tls", "parquet", "qt"):
        assert f"ok   {name}:" in out
    # keyring's backends are entry-point plugins: lost without the copied metadata
    assert "SecretService" in out and "Windows" in out and "macOS" in out


@pytest.mark.parametrize("exe", ["expirytrack", "expirytrack-desktop"])
@pytest.mark.parametrize("demo", [False, True], ids=["real", "demo"])
def test_smoke_test_exits_zero(bundle, home, exe, demo):
    run(bundle, home, "--smoke-test", *(["--demo"] if demo else []), exe=exe)


def test_screenshot_is_a_png(bundle, home, tmp_path):
    shot = tmp_path / "main.png"
    run(bundle, home, "--demo", "--screenshot", str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5_000  # a rendered window, not an empty image


def test_window_collects_in_frozen_engine_process(bundle, tmp_path):
    """The window's engine child process is this binary again (multiprocessing spawn)."""
    home, shot = tmp_path / "home", tmp_path / "jobs.png"
    run(
        bundle, home, "--demo", "--screenshot", str(shot), "--page", "jobs",
        exe="expirytrack-desktop", EXPIRYTRACK_ENGINE="process",
    )  # fmt: skip
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the screenshot driver seeds its demo jobs through the engine process
    with sqlite3.connect(home / "expirytrack" / "data" / "demo.sqlite3") as con:
        done = con.execute("SELECT count(*) FROM job_status WHERE status = 'completed'")
        assert done.fetchone()[0] >= 1
        assert con.execute("SELECT count(*) FROM historical_data").fetchone()[0] > 10_000


@pytest.mark.skipif(
    not (sys.platform.startswith("linux") and shutil.which("xvfb-run")), reason="needs xvfb-run"
)
def test_real_window_under_xvfb(bundle, home, tmp_path):
    """The xcb platform plugin and the X11 libraries it needs load from the bundle."""
    shot = tmp_path / "xcb.png"
    env = frozen_env(home, QT_QPA_PLATFORM="xcb")
    xvfb = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24"]
    proc = subprocess.run(
        [*xvfb, str(bundle / "expirytrack-desktop"), "--demo", "--screenshot", str(shot)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_version(bundle, home):
    from expirytrack_desktop import __version__

    assert run(bundle, home, "--version").stdout.strip() == f"expirytrack {__version__}"


@pytest.fixture(scope="module")
def collected(bundle, home, tmp_path_factory) -> tuple[Path, str]:
    """A frozen ``collect --demo`` (in-process simulator) of NIFTY's newest expiry."""
    db = tmp_path_factory.mktemp("db") / "demo.sqlite3"
    expiry = latest_expiry()
    out = run(
        bundle, home, "collect", "--demo", "--instrument", "NIFTY", "--expiry", expiry,
        "--db", str(db), "--rate-limit", "1000/1",
    ).stdout  # fmt: skip
    assert "completed" in out
    return db, expiry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_server(bundle, home):
    """``expirytrack demo-server`` run by the frozen binary on a free loopback port."""
    port = free_port()
    server = subprocess.Popen(
        [str(bundle / f"expirytrack{EXE_SUFFIX}"), "demo-server", "--port", str(port)],
        env=frozen_env(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert server.poll() is None, f"demo-server exited with {server.returncode}"
                assert time.monotonic() < deadline, "demo-server did not start in 30 s"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def test_collect_against_frozen_demo_server(bundle, home, collected, demo_server, tmp_path):
    """demo-server and collect both frozen, over loopback: the same data as in-process."""
    from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN

    demo_db, expiry = collected
    db = tmp_path / "loopback.sqlite3"
    out = run(
        bundle, home, "collect", "--api-base", demo_server,
        "--instrument", "NIFTY", "--expiry", expiry, "--db", str(db),
        EXPIRYTRACK_ACCESS_TOKEN=DEMO_ACCESS_TOKEN,
    ).stdout  # fmt: skip
    assert "completed" in out and " 0 failed" in out
    assert candle_count(db) == candle_count(demo_db) > 10_000
    status = run(bundle, home, "status", "--db", str(db)).stdout
    assert f"NIFTY        {expiry}" in status and "complete" in status


def test_frozen_secrets_fallback_end_to_end(bundle, collected, demo_server, tmp_path):
    """No keyring here: the frozen app stores the token Fernet-encrypted and uses it later."""
    from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN

    home = tmp_path / "home"
    secret_env = {"EXPIRYTRACK_PASSPHRASE": "frozen-passphrase-42"}
    api = ["--api-base", demo_server]
    out = run(bundle, home, "login", *api, "--token-stdin", stdin=DEMO_ACCESS_TOKEN, **secret_env)
    assert "Logged in" in out.stdout
    who = run(bundle, home, "whoami", *api, **secret_env).stdout
    assert "encrypted file" in who and "Upstox confirms" in who
    _, expiry = collected
    db = tmp_path / "stored-token.sqlite3"
    args = ["--instrument", "NIFTY", "--expiry", expiry, "--types", "FUT", "--db", str(db)]
    assert "completed" in run(bundle, home, "collect", *api, *args, **secret_env).stdout
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name == "secrets.enc" for p in files)
    for path in files:
        assert DEMO_ACCESS_TOKEN.encode() not in path.read_bytes(), path


def test_frozen_exports_read_back(bundle, home, collected, tmp_path):
    """CSV and Parquet written by the frozen app (pyarrow and pandas bundled) hold every row."""
    import pyarrow.parquet as pq

    db, expiry = collected
    expected = candle_count(db)
    common = ["--instrument", "NIFTY", "--expiry", expiry, "--db", str(db), "--quiet"]
    out_csv, out_parquet = tmp_path / "all.csv", tmp_path / "all.parquet"
    run(bundle, home, "export", "--format", "csv", "--out", str(out_csv), *common)
    run(bundle, home, "export", "--format", "parquet", "--out", str(out_parquet), *common)
    with out_csv.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0][:3] == ["openalgo_symbol", "date", "time"]
    assert len(rows) - 1 == expected
    table = pq.read_table(out_parquet)
    assert table.num_rows == expected
    assert set(r[0] for r in rows[1:]) == set(table.column("openalgo_symbol").to_pylist())
