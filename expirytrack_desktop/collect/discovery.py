"""Discovery: the expiries of each underlying, then the contracts of each expiry.

:func:`check_selection` checks a selection against the live expiry lists before a job exists;
:class:`Discovery` (part of :class:`CollectJob`) lists expiries and stores contracts in a run.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.collect.api_calls import _Stop
from expirytrack_desktop.collect.events import Phase, StopReason
from expirytrack_desktop.collect.instruments import display_name, symbol_for_key
from expirytrack_desktop.collect.selection import Selection, SelectionError
from expirytrack_desktop.upstox.errors import (
    AuthError,
    BadInputError,
    PlanRequiredError,
    ServerError,
    UpstoxError,
)
from expirytrack_desktop.upstox.span import SpanPolicy

if TYPE_CHECKING:
    from expirytrack_desktop.collect.collector import Collector

log = logging.getLogger(__name__)


async def _given(value: Any) -> Any:
    if isinstance(value, BaseException):
        raise value
    return value


class OfferedExpiries(dict[str, list[date]]):
    """Live expiry list per underlying, as checked before a job; ``requests``: HTTP requests
    the check sent (they count as the job's, like the discovery they replace); ``errors``: the
    failures left to the job (it reports them instead of asking again)."""

    requests: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.errors: dict[str, Exception] = {}


@dataclass(slots=True)
class _ExpiryWork:
    key: str
    expiry: date
    expiry_id: int
    contracts_fetched: bool


async def check_selection(collector: Collector, selection: Selection) -> OfferedExpiries:
    """Behind :meth:`Collector.check_selection`."""
    offered = OfferedExpiries()
    sent0 = int(getattr(collector.client, "requests_sent", 0))
    bad: list[str] = []
    for key in selection.underlyings:
        try:
            available = list(await collector.client.get_expiries(key))
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
            near = ", ".join(d.isoformat() for d in available[-3:])
            bad.append(
                f"{display_name(key)}: expiry {', '.join(d.isoformat() for d in missing)}"
                f" is not offered by the API (latest offered: {near})"
            )
    if bad:
        raise SelectionError("; ".join(bad))
    offered.requests = int(getattr(collector.client, "requests_sent", 0)) - sent0
    return offered


class Discovery:
    """Expiry and contract discovery of a run; a part of :class:`CollectJob` (uses its state)."""

    async def _discover(self) -> list[_ExpiryWork]:
        self._phase = Phase.DISCOVERY
        work: list[_ExpiryWork] = []
        bad: list[str] = []
        for key in self.selection.underlyings:
            self._current = f"expiries of {display_name(key)}"
            self._emit()
            await self.db.run(self.db.upsert_underlying, key, symbol=symbol_for_key(key))
            try:
                cached = self._offered.pop(key, None)
                aw = _given(cached) if cached is not None else self.client.get_expiries(key)
                available = await self._call(aw, self._current)
            except BadInputError as exc:
                bad.append(f"{key}: {exc.message}")
                self._error(bad[-1])
                continue
            except ServerError as exc:
                if exc.status is None and exc.code is None and self._consecutive_net_failures:
                    raise _Stop(
                        StopReason.NETWORK,
                        f"the Upstox API cannot be reached ({exc.message}); check the network "
                        "and rerun",
                    ) from None
                self._failed += 1
                self._error(f"expiries of {key}: {exc.message}")
                continue
            finally:
                self._count(expiry_requests=1)
            if not available:
                bad.append(f"{key}: the API lists no expired contracts for this instrument")
                self._error(bad[-1])
                continue
            ids = await self.db.run(self.db.upsert_expiries, key, available)
            chosen = list(available)
            if self.selection.expiries is not None:
                missing = [d for d in self.selection.expiries if d not in ids]
                if missing:
                    near = ", ".join(d.isoformat() for d in available[-3:])
                    bad.append(
                        f"{display_name(key)}: expiry {', '.join(d.isoformat() for d in missing)}"
                        f" is not offered by the API (latest offered: {near})"
                    )
                    self._error(bad[-1])
                chosen = [d for d in self.selection.expiries if d in ids]
            known = {d: f for d, f, _ in await self.db.run(self.db.known_expiries, key)}
            work.extend(_ExpiryWork(key, d, ids[d], known.get(d, False)) for d in chosen)
        if bad:
            raise _Stop(StopReason.BAD_INPUT, "; ".join(bad))
        return work

    async def _fetch_contracts(self, work: list[_ExpiryWork], policy: SpanPolicy) -> None:
        self._phase = Phase.CONTRACTS
        todo = [w for w in work if not w.contracts_fetched]
        self._total += len(todo)
        self._emit(force=True)
        sem = asyncio.Semaphore(self.collector.concurrency)

        async def one(w: _ExpiryWork) -> None:
            async with sem:
                self._current = f"contracts of {display_name(w.key)} {w.expiry.isoformat()}"
                self._emit()
                try:
                    options = await self._call(
                        self.client.get_option_contracts(w.key, w.expiry), self._current
                    )
                    self._count(contract_requests=1)
                    futures = await self._call(
                        self.client.get_future_contracts(w.key, w.expiry), self._current
                    )
                    self._count(contract_requests=1)
                except (BadInputError, ServerError, UpstoxError) as exc:
                    if isinstance(exc, AuthError | PlanRequiredError):
                        raise
                    self._failed += 1
                    self._error(f"{self._current}: {getattr(exc, 'message', exc)}")
                    self._emit()
                    return
                await self.db.run(
                    self.db.store_contracts,
                    w.key,
                    w.expiry,
                    list(options) + list(futures),
                    openalgo=self.collector.openalgo,
                    mark_fetched=True,
                )
                w.contracts_fetched = True
                self._done += 1
                self._emit()
                await self._persist()

        await self._gather([one(w) for w in todo])
