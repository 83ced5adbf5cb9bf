"""One place that wires settings, paths, secrets, limiter, client and database.

Both faces use it: the CLI builds a :class:`Runtime` from its flags, the window from its
settings dialog. Normal mode talks to ``Settings.resolved_api_base(flag)`` with the user's token;
demo mode (``demo=True``) talks to the in-process simulator with ``DEMO_ACCESS_TOKEN``, its own
database (``AppPaths.demo_db_path``) and its own rate-limit ledger, so demo runs never touch the
user's real data or budget.

Tests inject side effects with :func:`override` (transport, client options, busy timeout, a
page cap that simulates a full disk); everything else comes from the arguments.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.settings import DEFAULT_RATE_LIMIT, Settings

# Progress of a long migration when a database is opened (the CLI sets its bar here).
_migrate_progress: Any = None


def report_migrations(on_migrate: Any) -> None:
    """``on_migrate(done, total)`` for every database this process opens through a Runtime."""
    global _migrate_progress
    _migrate_progress = on_migrate


TOKEN_ENV = "EXPIRYTRACK_ACCESS_TOKEN"
DEMO_API_BASE = "http://demo.expirytrack.invalid"
DEMO_SEED = 7


@dataclass(slots=True)
class Overrides:
    """Injected side effects (tests, benchmarks). Empty in production."""

    transport: Any = None  # httpx.AsyncBaseTransport for every client built
    client_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. sleep, max_attempts
    busy_timeout_ms: int | None = None
    max_page_count: int | None = None  # caps the database size: simulates a full disk
    ledger_path: Path | bool | None = None  # False = in-memory limiter ledger
    demo_app: Any = None  # a SimulatorApp to use in demo mode


_overrides: contextvars.ContextVar[Overrides | None] = contextvars.ContextVar(
    "expirytrack_runtime_overrides", default=None
)
_demo_app: Any = None


@contextlib.contextmanager
def override(**kwargs: Any) -> Iterator[Overrides]:
    """``with runtime.override(transport=app.transport()): cli.main([...])``."""
    token = _overrides.set(Overrides(**kwargs))
    try:
        yield _overrides.get()  # type: ignore[misc]
    finally:
        _overrides.reset(token)


def current_overrides() -> Overrides:
    return _overrides.get() or Overrides()


def demo_app() -> Any:
    """The process's demo simulator (deterministic market ending yesterday, IST)."""
    global _demo_app
    ov = current_overrides()
    if ov.demo_app is not None:
        return ov.demo_app
    if _demo_app is None:
        from expirytrack_desktop.sandbox import Market, SimulatorApp
        from expirytrack_desktop.timeutil import IST

        market = Market(seed=DEMO_SEED, today=datetime.now(IST).date(), stocks=True)
        _demo_app = SimulatorApp(market)
    return _demo_app


@dataclass(slots=True)
class Runtime:
    """Resolved configuration of one CLI command or window session.

    Precedence for values a flag can name: flag > environment > settings file > default.
    """

    paths: AppPaths
    settings: Settings
    demo: bool = False
    db_flag: str | None = None
    api_base_flag: str | None = None
    rate_limit_flag: str | None = None
    instruments_url_flag: str | None = None

    @classmethod
    def create(
        cls,
        *,
        db: str | None = None,
        api_base: str | None = None,
        rate_limit: str | None = None,
        demo: bool = False,
        paths: AppPaths | None = None,
        instruments_url: str | None = None,
    ) -> Runtime:
        paths = paths or AppPaths.default()
        settings = Settings.load(paths.settings_path)
        return cls(paths, settings, demo, db, api_base, rate_limit, instruments_url)

    # ---- resolved values ----------------------------------------------------------------------

    @property
    def db_path(self) -> Path:
        if self.db_flag:
            return Path(self.db_flag).expanduser()
        if self.demo:
            return self.paths.demo_db_path
        if os.environ.get("EXPIRYTRACK_DB"):
            return Path(os.environ["EXPIRYTRACK_DB"]).expanduser()
        if self.settings.db_path:
            return Path(self.settings.db_path).expanduser()
        return self.paths.db_path

    @property
    def api_base(self) -> str:
        return DEMO_API_BASE if self.demo else self.settings.resolved_api_base(self.api_base_flag)

    @property
    def instruments_url(self) -> str:
        """Where the instrument master comes from (the simulator's copy in demo mode)."""
        if self.demo:
            from expirytrack_desktop.settings import INSTRUMENT_MASTER_PATH

            return DEMO_API_BASE + INSTRUMENT_MASTER_PATH
        return self.settings.resolved_instruments_url(self.instruments_url_flag)

    @property
    def rate_limit(self) -> str:
        return self.settings.resolved_rate_limit(self.rate_limit_flag)

    @property
    def ledger_path(self) -> Path | None:
        ov = current_overrides().ledger_path
        if ov is False:
            return None
        if isinstance(ov, Path):
            return ov
        name = "ratelimit-demo.sqlite3" if self.demo else self.paths.ratelimit_path.name
        return self.paths.data_dir / name

    # ---- builders -----------------------------------------------------------------------------

    @property
    def rate_limit_source(self) -> str:
        """Where :attr:`rate_limit` came from, for messages."""
        if self.rate_limit_flag:
            return "--rate-limit"
        if os.environ.get("EXPIRYTRACK_RATE_LIMIT"):
            return "EXPIRYTRACK_RATE_LIMIT"
        if self.settings.rate_limit != DEFAULT_RATE_LIMIT:
            return f"rate_limit in {self.paths.settings_path}"
        return "the default"

    def check_rate_limit(self) -> str:
        """The spec text, validated (ValueError with a one-line message naming where the
        spec came from otherwise)."""
        from expirytrack_desktop.upstox.limiter import RateLimitSpec, RateLimitSpecError

        try:
            return str(RateLimitSpec.parse(self.rate_limit))
        except RateLimitSpecError as exc:
            raise RateLimitSpecError(f"{exc} (from {self.rate_limit_source})") from None

    def open_db(
        self, *, create: bool = True, check_writable: bool = True, check_pages: bool = False
    ) -> Any:
        """The database (raises a StoreError subclass with a one-line message).

        ``check_pages``: before a collection writes into it, look for damaged pages
        (``store.health``: full below 64 MB, sampled above; StoreCorruptError if found)."""
        from expirytrack_desktop.store import open_database
        from expirytrack_desktop.store.database import DEFAULT_BUSY_TIMEOUT_MS

        ov = current_overrides()
        db = open_database(
            self.db_path,
            create=create,
            check_writable=check_writable,
            busy_timeout_ms=ov.busy_timeout_ms or DEFAULT_BUSY_TIMEOUT_MS,
            max_page_count=ov.max_page_count,
            on_migrate=_migrate_progress,
        )
        if check_pages:
            from expirytrack_desktop.store.health import check_database

            try:
                check_database(db)
            except BaseException:
                db.close()
                raise
        return db

    def limiter(self) -> Any:
        """The process-wide limiter for this mode (shared ledger file; separate for demo).
        Raises ``LedgerError`` (one line naming the file) when the ledger cannot be used and
        ``RateLimitSpecError`` for a spec out of bounds."""
        from expirytrack_desktop.store.processes import pid_alive
        from expirytrack_desktop.upstox.factory import process_limiter

        return process_limiter(self.check_rate_limit(), self.ledger_path, pid_alive=pid_alive)

    def secret_store(self, passphrase: Any = None) -> Any:
        from expirytrack_desktop.auth.secrets import SecretStore

        return SecretStore.for_paths(self.paths, passphrase)

    def access_token(self, passphrase: Any = None) -> str | None:
        """Demo token in demo mode; else ``EXPIRYTRACK_ACCESS_TOKEN``; else the secret store
        (``None`` when there is no valid token)."""
        if self.demo:
            from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN

            return DEMO_ACCESS_TOKEN
        env = os.environ.get(TOKEN_ENV, "").strip()
        if env:
            return env
        from expirytrack_desktop.auth.token import load_access_token

        return load_access_token(self.secret_store(passphrase))

    def transport(self) -> Any:
        ov = current_overrides()
        if ov.transport is not None:
            return ov.transport
        if self.demo:
            return demo_app().transport()
        return None

    def make_client(self, access_token: str | None) -> Any:
        """An UpstoxClient on this mode's base URL, drawing on :meth:`limiter`."""
        from expirytrack_desktop.upstox.client import UpstoxClient

        options: dict[str, Any] = {
            "deadline": float(self.settings.request_deadline_s),
            "max_body_bytes": int(self.settings.max_response_mb) * 1024 * 1024,
        }
        options.update(current_overrides().client_kwargs)
        return UpstoxClient(
            self.api_base,
            access_token=access_token,
            limiter=self.limiter(),
            transport=self.transport(),
            **options,
        )

    def make_collector(
        self, db: Any, client: Any, *, concurrency: int | None = None, **waiting: Any
    ) -> Any:
        """A Collector on ``db``/``client``; ``waiting``: its long-run keywords
        (``network_wait``, ``token_source``, ...: ``collect/config.py``)."""
        from expirytrack_desktop.collect import Collector

        return Collector(
            db, client, concurrency=concurrency or self.settings.concurrency, **waiting
        )
