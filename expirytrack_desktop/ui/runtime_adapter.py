"""The window's engine objects, built with the shared :class:`expirytrack_desktop.runtime.Runtime`
(the same wiring as the CLI: paths, settings, demo mode, ledger, client, database).

Only two things are added for the window: a :class:`SecretStore` whose keyring backend and
passphrase callback can be injected (the settings dialog's passphrase dialog; tests), and an
optional simulator injected by tests. No engine logic lives here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expirytrack_desktop.auth.secrets import SecretStore
from expirytrack_desktop.auth.token import TokenManager
from expirytrack_desktop.collect import Collector
from expirytrack_desktop.collect.waiting import window_waits
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.runtime import Runtime, demo_app
from expirytrack_desktop.store.database import open_database
from expirytrack_desktop.upstox.factory import make_client, process_limiter

log = logging.getLogger(__name__)


@dataclass(slots=True)
class UiRuntime:
    db: Any
    client: Any
    limiter: Any
    collector: Any
    secrets: Any
    tokens: Any
    api_base: str
    demo: bool
    simulator: Any = None  # demo / tests: the SimulatorApp behind the transport
    extra: dict[str, Any] = field(default_factory=dict)

    async def aclose(self) -> None:
        try:
            await self.client.aclose()
        finally:
            self.db.close()


def make_runtime(
    paths: AppPaths,
    *,
    demo: bool,
    db: str | Path | None = None,
    api_base: str | None = None,
    rate_limit: str | None = None,
) -> Any:
    """The shared Runtime for this window session (flags > environment > settings)."""
    return Runtime.create(
        db=None if db is None else str(db),
        api_base=api_base,
        rate_limit=rate_limit,
        demo=demo,
        paths=paths,
    )


def build_runtime(
    *,
    db_path: Path,
    api_base: str,
    rate_limit: str,
    ledger_path: Path | None,
    secrets_fallback: Path,
    demo: bool,
    concurrency: int,
    passphrase: Any = None,
    simulator: Any = None,
    keyring_backend: Any = None,
    paths: AppPaths | None = None,
    wrap_transport: Any = None,
    client_options: dict[str, Any] | None = None,
) -> UiRuntime:
    """Blocking (opens SQLite, maybe migrates): call it in a worker thread.

    Without an injected ``simulator`` the shared Runtime builds everything (demo mode: its
    process-wide demo simulator). With one (tests), the client talks to it in-process,
    through ``wrap_transport(transport)`` if given, with ``client_options`` (e.g. no back-off).
    """
    secrets = SecretStore(keyring_backend, secrets_fallback, passphrase)
    tokens = TokenManager(secrets, prefix="demo." if demo else "")
    if simulator is None and paths is not None:
        rt = make_runtime(paths, demo=demo, db=db_path, api_base=api_base, rate_limit=rate_limit)
        database = rt.open_db()
        demo_token = rt.access_token() if demo else None  # the window loads real tokens itself
        client = rt.make_client(demo_token)
        collector = rt.make_collector(
            database, client, concurrency=concurrency, **window_waits(client)
        )
        sim = None
        if demo:
            sim = demo_app()
        return UiRuntime(
            db=database,
            client=client,
            limiter=client.limiter,
            collector=collector,
            secrets=secrets,
            tokens=tokens,
            api_base=rt.api_base,
            demo=demo,
            simulator=sim,
        )
    # tests: an injected simulator, explicit limiter ledger
    database = open_database(db_path)
    limiter = process_limiter(rate_limit, ledger_path)
    transport = None
    token: str | None = None
    if simulator is not None:
        transport = simulator.transport()
        if wrap_transport is not None:
            transport = wrap_transport(transport)
        api_base = "http://sandbox.local"
        if demo:
            # lazy: the simulator package pulls in numpy, which only demo mode needs
            from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN

            token = DEMO_ACCESS_TOKEN
    client = make_client(
        api_base, token, limiter=limiter, transport=transport, **(client_options or {})
    )
    collector = Collector(database, client, concurrency=concurrency, **window_waits(client))
    return UiRuntime(
        db=database,
        client=client,
        limiter=limiter,
        collector=collector,
        secrets=secrets,
        tokens=tokens,
        api_base=api_base,
        demo=demo,
        simulator=simulator,
    )
