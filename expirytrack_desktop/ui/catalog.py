"""What the collection wizard offers: underlyings, their expiries (API and database), estimates."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from typing import Any

from expirytrack_desktop.collect import (
    KNOWN_UNDERLYINGS,
    Estimate,
    InstrumentError,
    display_name,
    resolve_instrument,
    symbol_for_key,
)
from expirytrack_desktop.ui.choices import ExpiryChoice, WizardSelection
from expirytrack_desktop.ui.engine_host import EngineHost
from expirytrack_desktop.ui.services import Services

COVERAGE_STATE = {"no_data": "none"}  # store state -> UI cell state


class Catalog:
    def __init__(self, services: Services, host: EngineHost) -> None:
        self.services = services
        self.host = host

    @staticmethod
    def known_underlyings() -> list[tuple[str, str]]:
        return [(sym, key) for sym, (key, _) in KNOWN_UNDERLYINGS.items()]

    @staticmethod
    def instrument_key_error(text: str) -> str | None:
        if "|" not in (text or ""):
            return (
                f"{text!r} is not an instrument key: use SEGMENT|name, e.g. NSE_EQ|INE002A01018"
                if text
                else "Type an instrument key first, e.g. NSE_EQ|INE002A01018."
            )
        try:
            resolve_instrument(text)
        except InstrumentError as exc:
            return str(exc)
        return None

    @staticmethod
    def symbol_for_key(key: str) -> str:
        return display_name(key)

    async def universe_loader(self) -> Callable[[], tuple[list[Any], str]]:
        """A blocking call for a worker thread (the master's parse must not hold the window's
        thread): every F&O underlying of the instrument master, downloaded at most once a day,
        and one line on where the list comes from."""
        from expirytrack_desktop.collect.universe import load_universe
        from expirytrack_desktop.settings import INSTRUMENT_MASTER_PATH

        rt = await self.host.ready()
        if rt.demo and rt.simulator is not None:
            url, transport = rt.api_base + INSTRUMENT_MASTER_PATH, rt.simulator.transport()
        else:
            url, transport = self.services.settings.resolved_instruments_url(), None

        def work() -> tuple[list[Any], str]:
            return asyncio.run(load_universe(rt.db, url, transport=transport))

        return work

    async def _states(self, key: str) -> dict[date, str]:
        rt = await self.host.ready()
        interval = self.services.settings.default_interval
        return {
            cov.expiry_date: COVERAGE_STATE.get(cov.state, cov.state)
            for cov in await rt.db.run(rt.db.coverage, key, interval)
        }

    async def stored_expiries(self, key: str) -> list[ExpiryChoice]:
        """Expiries of ``key`` already in the database (no request), marked as stored."""
        rt = await self.host.ready()
        known = await rt.db.run(rt.db.known_expiries, key)
        states = await self._states(key)
        return [
            ExpiryChoice(d, weekly, states.get(d, "none"), stored=True)
            for d, _, weekly in sorted(known)
        ]

    async def list_expiries(self, key: str) -> list[ExpiryChoice]:
        """Expiries offered by the API now, with the local coverage state of each."""
        rt = await self.host.ready()
        available = await self.host.require_api().expiries(key)
        await rt.db.run(rt.db.upsert_underlying, key, symbol=symbol_for_key(key))
        await rt.db.run(rt.db.upsert_expiries, key, available)
        known = {d: w for d, _, w in await rt.db.run(rt.db.known_expiries, key)}
        states = await self._states(key)
        return [
            ExpiryChoice(d, known.get(d), states.get(d, "none")) for d in sorted(set(available))
        ]

    async def estimate(self, sel: WizardSelection) -> Estimate | None:
        """One estimate for the jobs of the selection together (None: nothing chosen)."""
        await self.host.ready()
        params = [sel.params_for(key, expiries) for key, expiries in sel.expiries.items()]
        if not params:
            return None
        return await self.host.require_api().estimate(params, sel.concurrency)
