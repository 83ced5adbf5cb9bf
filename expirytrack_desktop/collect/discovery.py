"""Discovery: the expiries of each underlying, then the contracts of each expiry.

:func:`check_selection` checks a selection against the live expiry lists before a job exists;
:class:`Discovery` lists expiries and stores contracts in a run.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from expirytrack_desktop.collect.api_gate import ApiGate, RunStopped, given, network_stop
from expirytrack_desktop.collect.events import Phase, StopReason
from expirytrack_desktop.collect.instruments import display_name, symbol_for_key
from expirytrack_desktop.collect.progress import JobProgress
from expirytrack_desktop.collect.selection import Selection, SelectionError
from expirytrack_desktop.store import Database
from expirytrack_desktop.upstox.errors import (
    AuthError,
    BadInputError,
    PlanRequiredError,
    ServerError,
    UpstoxError,
)
from expirytrack_desktop.upstox.limiter import SendWithheld
from expirytrack_desktop.upstox.models import Contract

log = logging.getLogger(__name__)


class OfferedExpiries(dict[str, list[date]]):
    """Live expiry list per underlying, as checked before a job; ``requests``: HTTP requests
    the check sent (they count as the job's, like the discovery they replace); ``errors``: the
    failures left to the job (it reports them instead of asking again)."""

    requests: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, Exception] = {}

    def known(self) -> dict[str, Any]:
        """Expiry list or error per underlying, for the job's discovery."""
        return {**self, **self.errors}


@dataclass(slots=True)
class ExpiryWork:
    """One expiry of the selection and whether its contracts are stored."""

    key: str
    expiry: date
    expiry_id: int
    contracts_fetched: bool


def _not_offered(
    key: str, missing: list[date], available: list[date], names: dict[str, str] | None = None
) -> str:
    near = ", ".join(d.isoformat() for d in available[-3:])
    return (
        f"{display_name(key, names)}: expiry {', '.join(d.isoformat() for d in missing)}"
        f" is not offered by the API (latest offered: {near})"
    )


async def check_selection(
    client: Any, selection: Selection, names: dict[str, str] | None = None
) -> OfferedExpiries:
    """The live expiry list of each underlying; :class:`SelectionError` (one line, all
    problems) when an instrument key is refused or a chosen expiry is not offered.
    ``names``: trading symbols to name underlyings by (``db.underlying_names``)."""
    offered = OfferedExpiries()
    sent0 = int(getattr(client, "requests_sent", 0))
    bad: list[str] = []
    for key in selection.underlyings:
        try:
            available = list(await client.get_expiries(key))
        except BadInputError as exc:
            bad.append(f"{key}: {exc.message}")
            continue
        except Exception as exc:  # the job reports it and stops with its reason
            log.debug("expiry list of %s not checked: %s", key, type(exc).__name__)
            offered.errors[key] = exc
            continue
        if not available:
            bad.append(f"{key}: the API lists no expired contracts for this instrument")
            continue
        offered[key] = available
        missing = [d for d in selection.expiries or () if d not in set(available)]
        if missing:
            bad.append(_not_offered(key, missing, available, names))
    if bad:
        raise SelectionError("; ".join(bad))
    offered.requests = int(getattr(client, "requests_sent", 0)) - sent0
    return offered


class Discovery:
    """Expiry and contract discovery of one run.

    ``offered``: expiry lists (or their errors) already fetched before the job started;
    ``openalgo``: the symbol of a contract; ``concurrency``: contract lists in flight at once.
    """

    def __init__(
        self,
        db: Database,
        client: Any,
        selection: Selection,
        gate: ApiGate,
        progress: JobProgress,
        *,
        offered: dict[str, Any],
        openalgo: Callable[[Contract], str | None],
        concurrency: int,
    ) -> None:
        self._db = db
        self._client = client
        self._selection = selection
        self._gate = gate
        self._progress = progress
        self._offered = dict(offered)
        self._openalgo = openalgo
        self._concurrency = concurrency
        self._names: dict[str, str] = {}

    def name(self, key: str) -> str:
        """The underlying's trading symbol (the store's), else its key."""
        return display_name(key, self._names)

    async def expiries(self) -> list[ExpiryWork]:
        """The chosen expiries of each underlying (stored), oldest first across underlyings;
        RunStopped(BAD_INPUT) when an underlying or a chosen expiry is not offered."""
        prog = self._progress
        prog.phase = Phase.DISCOVERY
        work: list[ExpiryWork] = []
        bad: list[str] = []
        self._names = await self._db.run(self._db.underlying_names, self._selection.underlyings)
        for key in self._selection.underlyings:
            what = f"expiries of {self.name(key)}"
            prog.doing(what)
            await self._db.run(self._db.upsert_underlying, key, symbol=symbol_for_key(key))
            try:
                cached = self._offered.pop(key, None)
                if cached is not None:
                    available: list[date] = await self._gate.call(given(cached))
                else:
                    available = await self._gate.request(
                        functools.partial(self._client.get_expiries, key)
                    )
            except BadInputError as exc:
                bad.append(f"{key}: {exc.message}")
                prog.error(bad[-1])
                continue
            except ServerError as exc:
                transport = exc.status is None and exc.code is None
                if transport and self._gate.net_failures and not self._gate.waits_for_network:
                    raise network_stop(exc.message) from None
                prog.failed += 1
                prog.error(f"{what}: {exc.message}")
                continue
            finally:
                prog.count(expiry_requests=1)
            if not available:
                bad.append(f"{key}: the API lists no expired contracts for this instrument")
                prog.error(bad[-1])
                continue
            ids = await self._db.run(self._db.upsert_expiries, key, available)
            chosen = list(available)
            if self._selection.expiries is not None:
                missing = [d for d in self._selection.expiries if d not in ids]
                if missing:
                    bad.append(_not_offered(key, missing, available, self._names))
                    prog.error(bad[-1])
                chosen = [d for d in self._selection.expiries if d in ids]
            known = {d: f for d, f, _ in await self._db.run(self._db.known_expiries, key)}
            work.extend(ExpiryWork(key, d, ids[d], known.get(d, False)) for d in chosen)
        if bad:
            raise RunStopped(StopReason.BAD_INPUT, "; ".join(bad))
        return sorted(work, key=lambda w: w.expiry)

    async def contracts(self, work: list[ExpiryWork], *, counted: bool = False) -> None:
        """Fetch and store the contracts of each expiry not stored yet, oldest first;
        ``counted``: they are already in the progress total."""
        prog = self._progress
        prog.phase = Phase.CONTRACTS
        todo = [w for w in work if not w.contracts_fetched]
        if not counted:
            prog.total += len(todo)
        prog.emit(force=True)
        sem = asyncio.Semaphore(self._concurrency)

        async def one(w: ExpiryWork) -> None:
            async with sem:
                if self._gate.halted:
                    return
                self._gate.enter_scope(w.expiry.toordinal())
                what = f"contracts of {self.name(w.key)} {w.expiry.isoformat()}"
                prog.doing(what)
                try:
                    options = await self._gate.request(
                        lambda: self._client.get_option_contracts(w.key, w.expiry)
                    )
                    prog.count(contract_requests=1)
                    futures = await self._gate.request(
                        lambda: self._client.get_future_contracts(w.key, w.expiry)
                    )
                    prog.count(contract_requests=1)
                except SendWithheld:
                    return
                except (BadInputError, ServerError, UpstoxError) as exc:
                    if isinstance(exc, AuthError | PlanRequiredError):
                        raise
                    prog.fail_item(f"{what}: {getattr(exc, 'message', exc)}")
                    return
                async with self._gate.committing():
                    await self._db.run(
                        self._db.store_contracts,
                        w.key,
                        w.expiry,
                        list(options) + list(futures),
                        openalgo=self._openalgo,
                        mark_fetched=True,
                    )
                w.contracts_fetched = True
                prog.done += 1
                prog.emit()
                await prog.persist()

        await self._gate.gather([one(w) for w in todo])
