"""What the viewer pages read: stored underlyings, expiries, contracts, candles, chains, quality.

Every read runs on the database's own thread (``db.run``), never on the Qt thread. One cached
:class:`DbCandleSource` serves the option chain's minute steps (the day's candles in memory);
:meth:`refresh` drops it when the database changed (a collection finished).
The analysis engine, at-risk and schedule modules are imported by the first call that needs
them (the window's cold start does not pay for them).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING

from expirytrack_desktop.timeutil import IST
from expirytrack_desktop.ui.catalog import COVERAGE_STATE
from expirytrack_desktop.ui.choices import WizardSelection
from expirytrack_desktop.ui.coverage_view import ExpiryChip
from expirytrack_desktop.ui.engine_host import EngineHost
from expirytrack_desktop.ui.jobs_service import JobsService
from expirytrack_desktop.ui.services import Services

if TYPE_CHECKING:
    from expirytrack_desktop.analysis.candles import Candle, ContractInfo, DbCandleSource
    from expirytrack_desktop.analysis.chain import ChainSnapshot
    from expirytrack_desktop.analysis.quality import ContractQuality, GapRun, Timeline
    from expirytrack_desktop.analysis.series import StraddlePoint
    from expirytrack_desktop.collect.atrisk import AtRiskExpiry
    from expirytrack_desktop.store.findings import ScopedFinding, ScopedReport


class AnalysisService:
    def __init__(self, services: Services, host: EngineHost, jobs: JobsService) -> None:
        self.services = services
        self.host = host
        self.jobs = jobs
        self._source: DbCandleSource | None = None
        self.today: Callable[[], date] = lambda: datetime.now(IST).date()  # tests move it

    async def _db_source(self) -> DbCandleSource:
        from expirytrack_desktop.analysis.candles import DbCandleSource

        rt = await self.host.ready()
        if self._source is None or self._source.db is not rt.db:
            self._source = DbCandleSource(rt.db, cache=True)
        return self._source

    def refresh(self) -> None:
        if self._source is not None:
            self._source.clear_cache()

    async def coverage(self) -> tuple[dict[str, str], list[ExpiryChip]]:
        """Row labels (key -> symbol) and one chip per known expiry, default interval."""
        rt = await self.host.ready()
        interval = self.services.settings.default_interval
        rows = await rt.db.run(rt.db.coverage, None, interval)
        labels = {c.instrument_key: c.symbol or c.instrument_key for c in rows}
        chips = [
            ExpiryChip(
                c.instrument_key,
                c.expiry_date,
                COVERAGE_STATE.get(c.state, c.state),
                c.contracts_complete,
                c.contracts,
            )
            for c in rows
        ]
        return labels, chips

    async def at_risk(self) -> list[AtRiskExpiry]:
        """Chosen (jobs, schedules), incomplete expiries vanishing within ``at_risk_days``."""
        rt = await self.host.ready()
        paths, days = self.services.paths, self.services.settings.at_risk_days
        today = self.today()

        def find() -> list[AtRiskExpiry]:
            from expirytrack_desktop.collect.atrisk import at_risk
            from expirytrack_desktop.schedule.manage import chosen_everywhere

            return at_risk(rt.db, chosen_everywhere(rt.db, paths), today=today, within_days=days)

        return await rt.db.run(find)

    async def underlyings(self) -> list[tuple[str, str]]:
        """``(symbol or key, instrument key)`` of underlyings with stored contracts."""
        rt = await self.host.ready()
        rows = await rt.db.run(
            rt.db.execute,
            "SELECT DISTINCT u.instrument_key, COALESCE(u.symbol, u.instrument_key) "
            "FROM underlying u JOIN expiry e ON e.underlying_id = u.id "
            "JOIN contract c ON c.expiry_id = e.id ORDER BY 2",
        )
        return [(str(r[1]), str(r[0])) for r in rows]

    async def expiries(self, key: str) -> list[date]:
        rt = await self.host.ready()
        rows = await rt.db.run(
            rt.db.execute,
            "SELECT DISTINCT e.expiry_date FROM expiry e JOIN underlying u "
            "ON u.id = e.underlying_id JOIN contract c ON c.expiry_id = e.id "
            "WHERE u.instrument_key = ? ORDER BY 1 DESC",
            (key,),
        )
        return [date.fromisoformat(r[0]) for r in rows]

    async def contracts(self, key: str, expiry: date) -> list[ContractInfo]:
        source = await self._db_source()
        rt = await self.host.ready()
        return await rt.db.run(source.contracts, key, expiry) or []

    async def candles(self, contract_id: int, minutes: int = 1) -> list[Candle]:
        from expirytrack_desktop.analysis.series import aggregate

        source = await self._db_source()
        rt = await self.host.ready()
        one_minute = await rt.db.run(source.candles, contract_id)
        return aggregate(one_minute, minutes)

    async def chain(
        self,
        key: str,
        expiry: date,
        at: datetime,
        previous: ChainSnapshot | None = None,
    ) -> ChainSnapshot:
        from expirytrack_desktop.analysis.chain import build_chain

        source = await self._db_source()
        rt = await self.host.ready()
        rate = self.services.settings.risk_free_rate
        return await rt.db.run(build_chain, source, key, expiry, at, rate=rate, previous=previous)

    async def trading_days(self, key: str, expiry: date) -> list[date]:
        """Days on which any contract of the expiry traded (the chain's PgUp/PgDn steps)."""
        rt = await self.host.ready()
        rows = await rt.db.run(
            rt.db.execute,
            "SELECT DISTINCT (k.ts + 19800) / 86400 FROM candle k "
            "JOIN contract c ON c.id = k.contract_id JOIN expiry e ON e.id = c.expiry_id "
            "JOIN underlying u ON u.id = e.underlying_id "
            "WHERE u.instrument_key = ? AND e.expiry_date = ? AND k.interval = 1",
            (key, expiry.isoformat()),
        )
        return sorted(date.fromordinal(date(1970, 1, 1).toordinal() + int(r[0])) for r in rows)

    async def straddle(
        self,
        key: str,
        expiry: date,
        day: date,
        ce_strike: float | None = None,
        pe_strike: float | None = None,
    ) -> list[StraddlePoint]:
        from expirytrack_desktop.analysis.series import straddle_series

        source = await self._db_source()
        rt = await self.host.ready()
        rate = self.services.settings.risk_free_rate
        return await rt.db.run(
            straddle_series, source, key, expiry, day,
            ce_strike=ce_strike, pe_strike=pe_strike, rate=rate,
        )  # fmt: skip

    async def quality(self, key: str, expiry: date) -> list[ContractQuality]:
        from expirytrack_desktop.analysis.quality import expiry_quality

        rt = await self.host.ready()
        return await rt.db.run(expiry_quality, rt.db, key, expiry)

    async def gaps(self, contract_id: int) -> list[GapRun]:
        from expirytrack_desktop.analysis.quality import gap_runs

        rt = await self.host.ready()
        return await rt.db.run(gap_runs, rt.db, contract_id)

    async def timeline(self, contract_id: int) -> Timeline:
        from expirytrack_desktop.analysis.quality import contract_timeline

        rt = await self.host.ready()
        return await rt.db.run(contract_timeline, rt.db, contract_id)

    async def verify_scope(self, key: str, expiries: list[date]) -> ScopedReport:
        """verify's logical checks of ``key``'s ``expiries`` (all of them when empty), on the
        database's thread: the window stays responsive however long it takes."""
        from expirytrack_desktop.store.findings import scoped_verify

        rt = await self.host.ready()
        return await rt.db.run(scoped_verify, rt.db, key, expiries)

    async def collect_missing(self, findings: list[ScopedFinding]) -> list[int]:
        """ "Collect missing" of findings: one job per expiry and interval fetching exactly
        the date ranges they name (windows whose candles do not match their done mark lose
        it first, as ``verify --fix``). Returns the job ids."""
        from expirytrack_desktop.store.findings import repairs
        from expirytrack_desktop.store.intervals import interval_name
        from expirytrack_desktop.store.verify import VerifyReport, fix

        rt = await self.host.ready()
        jobs = []
        for r in repairs(findings):
            if r.unmark:
                stale = VerifyReport(str(rt.db.path), r.instrument_key, fixable=list(r.unmark))
                await rt.db.run(fix, rt.db, stale)
            selection = WizardSelection(
                expiries={r.instrument_key: [r.expiry]},
                interval=interval_name(r.interval),
                months=r.months,
                concurrency=self.services.settings.concurrency,
                windows=r.windows,
            )
            jobs.append(await self.jobs.start_collection(selection))
        return jobs

    async def collect_missing_of(self, key: str, expiry: date) -> list[int]:
        """ "Collect missing" of a coverage cell: what verify finds missing of the expiry,
        exactly; an expiry never collected (no target yet) is collected whole."""
        report = await self.verify_scope(key, [expiry])
        found = [f for f in report.findings if f.collectable]
        if found:
            return await self.collect_missing(found)
        rt = await self.host.ready()
        asked = await rt.db.run(
            rt.db.execute,
            "SELECT 1 FROM coverage_target t JOIN expiry e ON e.id = t.expiry_id "
            "JOIN underlying u ON u.id = e.underlying_id WHERE u.instrument_key = ? "
            "AND e.expiry_date = ? LIMIT 1",
            (key, expiry.isoformat()),
        )
        return [] if asked else [await self.collect(key, [expiry])]

    async def collect(self, key: str, expiries: list[date]) -> int:
        """ "Collect it" / "Collect missing": a job for these expiries with the default options.

        The planner fetches only what is missing, so this asks for exactly the missing windows.
        """
        settings = self.services.settings
        selection = WizardSelection(
            expiries={key: list(expiries)},
            interval=settings.default_interval,
            months=settings.history_months,
            concurrency=settings.concurrency,
        )
        return await self.jobs.start_collection(selection)
