"""Test isolation: no real keyring, no real home folder, no network but loopback."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import keyring
import keyring.backend
import pytest


class MemoryKeyring(keyring.backend.KeyringBackend):
    """In-memory keyring for tests; priority is irrelevant because it is set explicitly."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        import keyring.errors

        if (service, username) not in self.store:
            raise keyring.errors.PasswordDeleteError(username)
        del self.store[(service, username)]


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """Every test gets its own home, app folders and in-memory keyring."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local/share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("EXPIRYTRACK_HOME", str(home / "expirytrack"))
    # Never Upstox's real instrument master: a test that wants one names the simulator's.
    monkeypatch.setenv("EXPIRYTRACK_INSTRUMENTS_URL", str(home / "no-instrument-master.json.gz"))
    for var in (
        "EXPIRYTRACK_DB",
        "EXPIRYTRACK_API_BASE",
        "EXPIRYTRACK_RATE_LIMIT",
        "EXPIRYTRACK_ACCESS_TOKEN",
        "EXPIRYTRACK_PASSPHRASE",
    ):
        monkeypatch.delenv(var, raising=False)
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield home
    keyring.set_keyring(previous)


@pytest.fixture
def memory_keyring() -> MemoryKeyring:
    ring = keyring.get_keyring()
    assert isinstance(ring, MemoryKeyring)
    return ring


@pytest.fixture(autouse=True)
def no_event_loop_left_running():
    """A test that leaves a running loop behind breaks every later ``asyncio.run``."""
    yield
    assert asyncio.events._get_running_loop() is None, "an asyncio event loop was left running"


_GUI_GC = pytest.StashKey["object"]()


@pytest.fixture(autouse=True)
def gui_thread_gc(request):
    """A test with a QApplication collects reference cycles on the GUI thread only, as the
    app does (ui/gui_gc.py): left to Python, a candle loader thread's allocation collected a
    closed window's widgets there and crashed a full run with SIGSEGV. Python's collector
    comes back only after the last teardown (``pytest_runtest_protocol`` below)."""
    if "qapp" in request.fixturenames:
        request.getfixturevalue("qapp")
        from expirytrack_desktop.ui.gui_gc import GuiThreadCollector

        collector = GuiThreadCollector()
        collector.start()
        request.node.stash[_GUI_GC] = collector
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """pytest drops a test's fixture values (a window, its controller) only after the last
    teardown, and a worker thread the window left may still be finishing: collect them here,
    on the GUI thread, before Python's own collector may run in any thread again."""
    yield
    collector = item.stash.get(_GUI_GC, None)
    if collector is not None:
        del item.stash[_GUI_GC]
        collector.stop()


@pytest.fixture(scope="session")
def _qasync_loop(qapp):
    """One qasync loop on the QApplication for the whole session, running only inside
    tests that ask for ``qloop`` (never ``loop.stop()``: it quits the QApplication)."""
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.events._set_running_loop(None)
    yield loop
    asyncio.set_event_loop(None)


@pytest.fixture
def qloop(_qasync_loop, qtbot):
    """The qasync loop, running for this test only; afterwards no task of it may be left."""
    loop = _qasync_loop
    asyncio.events._set_running_loop(loop)
    asyncio.set_event_loop(loop)
    try:
        yield loop
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for t in pending:
            t.cancel()
        qtbot.waitUntil(lambda: all(t.done() for t in pending), timeout=10000)
        left = [t for t in asyncio.all_tasks(loop) if not t.done()]
    finally:
        asyncio.events._set_running_loop(None)
        asyncio.set_event_loop(None)
    assert not left, f"tasks left pending on the window's loop: {left}"


@pytest.fixture
async def opened():
    """Databases and clients an engine test opens, closed after it (tests/collect_helpers.py)."""
    from tests.collect_helpers import Opened

    async with contextlib.AsyncExitStack() as stack:
        yield Opened(stack)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Shut pyarrow's S3 (the AWS SDK) down while the interpreter is whole. Left to pyarrow's
    own exit handler, with the S3 tests' filesystems still referenced somewhere, one full
    run aborted after every test had passed ("free(): invalid pointer", exit code 134;
    apache/arrow#41087 is that kind of crash)."""
    import sys

    fs = sys.modules.get("pyarrow.fs")
    if fs is not None:
        gc.collect()
        with contextlib.suppress(Exception):
            fs.finalize_s3()
