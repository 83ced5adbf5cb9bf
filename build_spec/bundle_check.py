"""``<bundle>/expirytrack --bundle-check``: what a frozen build finds at run time.

PyInstaller only sees static imports; data files, entry-point plugins and modules imported by
name are easy to lose. Each check below loads one such thing the way the app does and prints
``ok``/``FAIL`` with a short detail; the exit status is 1 if anything failed. It writes only
into a temporary folder and never touches the user's keyring or data.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path

CHECKS: list[tuple[str, Callable[[Path], str]]] = []


def check(name: str) -> Callable[[Callable[[Path], str]], Callable[[Path], str]]:
    def register(fn: Callable[[Path], str]) -> Callable[[Path], str]:
        CHECKS.append((name, fn))
        return fn

    return register


@check("frozen")
def _frozen(tmp: Path) -> str:
    if not getattr(sys, "frozen", False):
        raise RuntimeError("not running from a PyInstaller bundle")
    return f"bundle at {sys._MEIPASS}"  # type: ignore[attr-defined]


@check("resources")
def _resources(tmp: Path) -> str:
    from expirytrack_desktop.ui import resources

    found = []
    for name in (resources.ICON_PNG, resources.ICON_SVG, "expirytrack-desktop.desktop"):
        p = resources.resource_path(name)
        if p is None:
            raise FileNotFoundError(f"resources/{name} not found in {resources.resource_dirs()}")
        found.append(str(p))
    return ", ".join(found)


@check("migrations")
def _migrations(tmp: Path) -> str:
    """Every migration, applied the way the app applies them (SQL files read through
    importlib.resources, plus the Python steps some of them need), to a new database."""
    from importlib.resources import files

    from expirytrack_desktop.store import latest_version, open_database

    folder = files("expirytrack_desktop.store") / "migrations"
    scripts = sorted(p for p in folder.iterdir() if p.name.endswith(".sql"))
    if not scripts:
        raise FileNotFoundError(f"no *.sql in {folder}")
    with open_database(tmp / "migrations.sqlite3") as db:
        version = db.schema_version
        tables = db.execute("SELECT count(*) FROM sqlite_master WHERE type IN ('table','view')")
    if version != latest_version():
        raise RuntimeError(f"schema {version}, expected {latest_version()}")
    return f"{len(scripts)} script(s) applied, schema {version}, {tables[0][0]} tables/views"


@check("keyring")
def _keyring(tmp: Path) -> str:
    from importlib.metadata import entry_points

    import keyring

    from expirytrack_desktop.auth.secrets import describe_backend, unusable_reason

    plugins = sorted(ep.name for ep in entry_points(group="keyring.backends"))
    if not plugins:
        raise RuntimeError("no keyring.backends entry points: keyring metadata not bundled")
    default = keyring.get_keyring()
    reason = unusable_reason(default) or "usable"
    return f"plugins {plugins}; default {describe_backend(default)} ({reason})"


@check("secrets-fallback")
def _secrets_fallback(tmp: Path) -> str:
    """The encrypted file store (Fernet + scrypt), forced on with keyring's fail backend."""
    from keyring.backends.fail import Keyring as FailKeyring

    from expirytrack_desktop.auth.secrets import SecretStore

    path = tmp / "secrets.enc"
    marker = "bundle-check-value-7f3a"
    store = SecretStore(FailKeyring(), path, lambda creating: "bundle-check-passphrase")
    store.set("access_token", marker)
    again = SecretStore(FailKeyring(), path, lambda creating: "bundle-check-passphrase")
    if again.get("access_token") != marker:
        raise RuntimeError("value read back differs")
    if marker.encode() in path.read_bytes():
        raise RuntimeError("value found in plain text in the file")
    return f"round trip through {path.name} ok, {path.stat().st_size} bytes"


@check("sandbox")
def _sandbox(tmp: Path) -> str:
    import pkgutil

    import expirytrack_desktop.sandbox as sandbox

    names = sorted(m.name for m in pkgutil.iter_modules(sandbox.__path__) if m.name != "__main__")
    for name in names:
        importlib.import_module(f"expirytrack_desktop.sandbox.{name}")
    if not names:
        raise RuntimeError("the simulator package has no modules")
    return f"modules {names}"


@check("cli-commands")
def _cli(tmp: Path) -> str:
    from expirytrack_desktop.cli.main import COMMAND_MODULES, build_parser

    missing = []
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            missing.append(f"{name} ({exc.name})")
    parser = build_parser()
    commands = sorted(
        c
        for a in parser._subparsers._group_actions
        for c in (a.choices or {})  # type: ignore[union-attr]
    )
    if missing:
        raise ModuleNotFoundError(f"not bundled: {missing}; commands found: {commands}")
    return f"commands {commands}"


@check("tls")
def _tls(tmp: Path) -> str:
    import ssl

    import certifi

    ctx = ssl.create_default_context(cafile=certifi.where())
    return f"{len(ctx.get_ca_certs())} CA certificates from {Path(certifi.where()).name}"


@check("parquet")
def _parquet(tmp: Path) -> str:
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp / "t.parquet"
    pq.write_table(pa.table({"close": [1.5, 2.5], "volume": [10, 20]}), path)
    frame = pd.read_parquet(path)
    if frame["volume"].tolist() != [10, 20]:
        raise RuntimeError("read back differs")
    return f"pyarrow {pa.__version__}, pandas {pd.__version__}"


@check("qt")
def _qt(tmp: Path) -> str:
    from PySide6 import QtCore, QtGui, QtSvg  # noqa: F401 - QtSvg renders the SVG icon

    plugins = Path(QtCore.QLibraryInfo.path(QtCore.QLibraryInfo.LibraryPath.PluginsPath))
    platforms = sorted(p.stem for p in (plugins / "platforms").glob("*") if p.is_file())
    if not any("offscreen" in p for p in platforms):
        raise RuntimeError(f"no offscreen platform plugin in {platforms}")
    formats = [bytes(f).decode() for f in QtGui.QImageReader.supportedImageFormats()]
    if "svg" not in formats:
        raise RuntimeError(f"no SVG image format plugin ({formats})")
    return f"Qt {QtCore.qVersion()}, platforms {platforms}"


def main(argv: list[str]) -> int:
    """Run every check (or those named in ``argv``); 0 when all pass."""
    wanted = [a for a in argv if not a.startswith("-")]
    failed = 0
    with tempfile.TemporaryDirectory(prefix="expirytrack-bundle-check-") as tmp:
        for name, fn in CHECKS:
            if wanted and name not in wanted:
                continue
            try:
                detail = fn(Path(tmp))
            except Exception as exc:
                failed += 1
                print(f"FAIL {name}: {type(exc).__name__}: {exc}", flush=True)
                if "-v" in argv:
                    traceback.print_exc()
            else:
                print(f"ok   {name}: {detail}", flush=True)
    return 1 if failed else 0
