"""Minimal engine wiring for the window until/unless ``expirytrack_desktop.runtime`` exists.

ADAPTER (see the final report): it only *assembles* engine pieces — ``open_database``,
``process_limiter``, ``make_client``, ``Collector``, ``SecretStore``, ``TokenManager`` and, in
demo mode, the simulator's in-process transport. No engine logic lives here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
) -> UiRuntime:
    """Blocking (opens SQLite, maybe migrates): call it in a worker thread."""
    from expirytrack_desktop.auth.secrets import SecretStore
    from expirytrack_desktop.auth.token import TokenManager
    from expirytrack_desktop.collect import Collector
    from expirytrack_desktop.store.database import open_database
    from expirytrack_desktop.upstox.factory import make_client, process_limiter

    db = open_database(db_path)
    limiter = process_limiter(rate_limit, ledger_path)
    transport = None
    token: str | None = None
    if demo and simulator is None:
        from expirytrack_desktop.sandbox import Market, SimulatorApp

        simulator = SimulatorApp(Market(), rate_limit=rate_limit)
    if simulator is not None:
        transport = simulator.transport()
        api_base = "http://sandbox.local"
    secrets = SecretStore(keyring_backend, secrets_fallback, passphrase)
    tokens = TokenManager(secrets, prefix="demo." if demo else "")
    if demo and simulator is not None:
        from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN

        token = DEMO_ACCESS_TOKEN
    client = make_client(api_base, token, limiter=limiter, transport=transport)
    collector = Collector(db, client, concurrency=concurrency)
    return UiRuntime(
        db=db,
        client=client,
        limiter=limiter,
        collector=collector,
        secrets=secrets,
        tokens=tokens,
        api_base=api_base,
        demo=demo,
        simulator=simulator,
    )
