"""No secret on disk: after a login, a collection and an export, scan every file's bytes.

Run twice: with an (in-memory) OS keyring, and with the passphrase-encrypted fallback.
The token, the API secret and the API key (and the fallback's passphrase) must appear in no
file under the data, config, log and export folders -- raw, base64 (any alignment, standard
and URL-safe), URL-encoded, hex or UTF-16.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import io
import logging
import socket
import threading
import webbrowser
from pathlib import Path
from urllib.parse import quote

import httpx
import keyring
import keyring.backends.fail
import pytest

from expirytrack_desktop.auth.secrets import ACCESS_TOKEN, SecretStore
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.sandbox import Market, SimulatorApp, serve

UNDERLYING = "NSE_INDEX|Nifty 50"
# Characters that change under URL- and base64-encoding, to exercise every encoding.
API_KEY = "Key+Scan/0001=abcd"
API_SECRET = "Sec+Scan/0002=wxyz"
PASSPHRASE = "scan passphrase 0003"
BROWSER_THREAD = "test-browser"


def needles(value: str) -> dict[str, bytes]:
    """Byte patterns any usual encoding of ``value`` would contain."""
    raw = value.encode()
    out = {
        "raw": raw,
        "url": quote(value, safe="").encode(),
        "url-plus": quote(value, safe="").replace("%20", "+").encode(),
        "hex": binascii.hexlify(raw),
        "HEX": binascii.hexlify(raw).upper(),
        "utf16": value.encode("utf-16-le"),
    }
    # A base64 stream holds ``value`` at one of three alignments; the part of it that starts
    # on a 3-byte boundary encodes to a fixed string whatever surrounds it.
    for shift in range(3):
        part = raw[shift:]
        part = part[: len(part) - len(part) % 3]
        if len(part) >= 9:
            out[f"b64+{shift}"] = base64.b64encode(part)
            out[f"b64url+{shift}"] = base64.urlsafe_b64encode(part)
    return out


def scan(folders: list[Path], secrets: dict[str, str]) -> tuple[list[str], int]:
    """(hits as "file: secret/encoding", number of files scanned)."""
    patterns = {(name, enc): pat for name, v in secrets.items() for enc, pat in needles(v).items()}
    hits: list[str] = []
    seen: set[Path] = set()
    for folder in folders:
        if not folder.exists():
            continue
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path in seen:
                continue
            seen.add(path)
            data = path.read_bytes()
            hits += [f"{path}: {n}/{e}" for (n, e), p in patterns.items() if p in data]
    return hits, len(seen)


def test_scanner_finds_every_encoding(tmp_path):
    """The scan itself must be able to fail."""
    value = "sim-token-0123456789abcdef+/="
    blobs = [
        b"x" + value.encode() + b"y",
        base64.b64encode(b"ab" + value.encode() + b"cd"),
        base64.urlsafe_b64encode(b"a" + value.encode()),
        base64.b64encode(value.encode()),
        quote(value, safe="").encode(),
        binascii.hexlify(value.encode()),
        ("{" + value + "}").encode("utf-16-le"),
    ]
    for i, blob in enumerate(blobs):
        (tmp_path / f"f{i}").write_bytes(b"\x00prefix" + blob + b"suffix\n")
    hits, n = scan([tmp_path], {"token": value})
    assert n == len(blobs)
    assert {h.split(":")[0] for h in hits} == {str(tmp_path / f"f{i}") for i in range(len(blobs))}
    (tmp_path / "clean").write_bytes(b"nothing here")
    assert not [h for h in scan([tmp_path], {"token": value})[0] if "clean" in h]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class NotFromBrowser(logging.Filter):
    """The test's browser is the user's browser, not the app: its requests are not ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != BROWSER_THREAD


@pytest.fixture
def app_log():
    """An app log file at DEBUG (everything the app and its libraries log goes to disk)."""
    path = AppPaths.default().ensure().log_dir / "expirytrack.log"
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setLevel(logging.DEBUG)
    handler.addFilter(NotFromBrowser())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield path
    root.removeHandler(handler)
    root.setLevel(old_level)
    handler.close()


@pytest.fixture
def browser(monkeypatch):
    threads: list[threading.Thread] = []

    def open_(url: str) -> bool:
        def run() -> None:
            with httpx.Client(trust_env=False, follow_redirects=True, timeout=10) as b:
                b.get(url)

        t = threading.Thread(target=run, name=BROWSER_THREAD)
        t.start()
        threads.append(t)
        return True

    monkeypatch.setattr(webbrowser, "open", open_)
    yield
    for t in threads:
        t.join(10)


@pytest.mark.parametrize("backend", ["keyring", "fallback"])
def test_no_secret_in_any_file(backend, monkeypatch, memory_keyring, app_log, browser, capsys):
    paths = AppPaths.default().ensure()
    if backend == "fallback":
        keyring.set_keyring(keyring.backends.fail.Keyring())  # conftest restores it
        monkeypatch.setenv("EXPIRYTRACK_PASSPHRASE", PASSPHRASE)

    market = Market(underlyings=(UNDERLYING,), strikes_per_side=2, history_days=60)
    sim = SimulatorApp(market, rate_limit=None)
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    sim.register_client(API_KEY, API_SECRET, redirect)
    expiry = next(
        e for e in reversed(market.expiries(UNDERLYING)) if market.future_contracts(UNDERLYING, e)
    )

    with serve(sim) as api:
        # configure + login
        monkeypatch.setattr("sys.stdin", io.StringIO(API_SECRET + "\n"))
        rc = main(
            ["configure", "--api-key", API_KEY, "--api-secret-stdin", "--redirect-uri", redirect]
        )
        assert rc == exitcodes.OK
        assert main(["login", "--api-base", api, "--timeout", "20"]) == exitcodes.OK
        store = SecretStore.for_paths(paths, lambda creating: PASSPHRASE)
        token = store.get(ACCESS_TOKEN)
        assert token and token.startswith("sim-token-")
        assert store.is_fallback == (backend == "fallback")
        if backend == "keyring":
            assert not paths.secrets_fallback_path.exists()
        else:
            assert paths.secrets_fallback_path.exists()

        # a collection (the real CLI command)
        rc = main(
            ["collect", "--api-base", api, "-i", UNDERLYING, "-e", expiry.isoformat(),
             "--types", "FUT", "--months", "1"]
        )  # fmt: skip
        assert rc == exitcodes.OK, capsys.readouterr()

        # an export: the CLI command when it is there, else the engine it wraps
        export_dir = paths.export_dir
        export_dir.mkdir(parents=True, exist_ok=True)
        for fmt in ("csv", "zip"):
            out = export_dir / f"scan.{fmt}"
            if not _export_cli(fmt, out):
                from expirytrack_desktop.export.api import ExportOptions, run_export
                from expirytrack_desktop.runtime import Runtime

                options = ExportOptions(
                    underlyings=(UNDERLYING,), format=fmt, include_metadata=True
                )
                run_export(Runtime.create().db_path, options, out, overwrite=True)
            assert out.exists() and out.stat().st_size > 0
        assert main(["whoami", "--api-base", api]) == exitcodes.OK
        capsys.readouterr()

        secrets = {"token": token, "api_secret": API_SECRET, "api_key": API_KEY}
        if backend == "fallback":
            secrets["passphrase"] = PASSPHRASE
        folders = [paths.data_dir, paths.config_dir, paths.log_dir, export_dir]
        hits, scanned = scan(folders, secrets)
        assert hits == []
        # The scan looked at real output: database, export files, log lines.
        assert scanned >= 4
        assert Runtime_db_exists(paths)
        assert any(export_dir.iterdir())
        assert "login/authorization/token" in app_log.read_text(encoding="utf-8")

        # and after a logout
        assert main(["logout", "--api-base", api]) == exitcodes.OK
        hits, _ = scan(folders, secrets)
        assert hits == []


def _export_cli(fmt: str, out: Path) -> bool:
    if importlib.util.find_spec("expirytrack_desktop.cli.export_cmd") is None:
        return False
    args = ["export", "-i", UNDERLYING, "--format", fmt, "--metadata", "-o", str(out), "-q"]
    try:
        return main(args) == exitcodes.OK
    except SystemExit:  # the command's options changed
        return False


def Runtime_db_exists(paths: AppPaths) -> bool:
    from expirytrack_desktop.runtime import Runtime

    db = Runtime.create(paths=paths).db_path
    return db.exists() and db.stat().st_size > 0
