"""The window's one door to the engine: adapts engine calls and callbacks to Qt signals.

Pages never import the engine; they call the controller. Background work runs as named
asyncio tasks with strong references ("preemptive": scheduling a name again cancels the
previous task of that name). Database work goes through the store's own writer thread
(``db.run``); progress callbacks only record the latest event, a timer repaints.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.ui.models import CoverageCell, JobRow, JobsModel
from expirytrack_desktop.ui.qt import QtCore, Signal
from expirytrack_desktop.ui.services import Services

if TYPE_CHECKING:
    from expirytrack_desktop.ui.collect_wizard import ExpiryChoice, WizardSelection
    from expirytrack_desktop.ui.runtime_adapter import UiRuntime

log = logging.getLogger(__name__)

COVERAGE_STATE = {"no_data": "none"}  # store state -> UI cell state


class Controller(QtCore.QObject):
    authChanged = Signal()
    loginNeeded = Signal(str)
    databaseChanged = Signal()
    exportsChanged = Signal()
    jobLogChanged = Signal(int)
    jobFinished = Signal(int, str)
    engineReady = Signal()
    engineFailed = Signal(str)

    def __init__(
        self,
        services: Services,
        parent: QtCore.QObject | None = None,
        *,
        runtime_factory: Callable[[], UiRuntime] | None = None,
    ) -> None:
        super().__init__(parent)
        self.services = services
        self.jobs_model = JobsModel(self)
        self.runtime: UiRuntime | None = None
        self.engine_error: str | None = None
        self._runtime_factory = runtime_factory
        self._tasks: dict[str, asyncio.Task[Any]] = {}
        self._all: set[asyncio.Task[Any]] = set()
        self.handles: dict[int, Any] = {}  # job id -> CollectJob
        self._token_info: Any = None
        self._login: Any = None
        self._login_cancelled = False
        self._ready = asyncio.Event()
        self._paused_for_login: set[int] = set()
        self.dialog_parent: Any = None  # the main window, for dialogs the controller opens
        self.passphrase_dialog: Any = None
        self._executor: ThreadPoolExecutor | None = None
        self._export_executor: ThreadPoolExecutor | None = None
        from expirytrack_desktop.ui.engine_thread import EngineThread

        self.engine = EngineThread()
        self.api: Any = None  # ThreadEngineApi | ProcessEngineApi, set by start()
        self._gui_loop: asyncio.AbstractEventLoop | None = None

    # --- tasks -----------------------------------------------------------------------------
    def schedule(
        self, coro: Coroutine[Any, Any, Any], name: str | None = None
    ) -> asyncio.Task[Any]:
        """Run ``coro`` in the background, keeping a strong reference; log its failure."""
        if name is not None:
            old = self._tasks.get(name)
            if old is not None and not old.done():
                old.cancel()
        task = asyncio.ensure_future(coro)
        if name is not None:
            self._tasks[name] = task
        self._all.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._all.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("Background task failed: %s", self.describe_error(exc), exc_info=exc)

    async def run_blocking(self, fn: Any, *args: Any) -> Any:
        """Run blocking work (keyring, file reads) on the controller's worker threads."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="expirytrack-ui")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- engine lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        """Open the database, build client and collector (off the loop), load the token."""
        self._gui_loop = asyncio.get_running_loop()
        try:
            self.engine.start()
            self.runtime = await self.run_blocking(self._build_runtime)
        except Exception as exc:
            self.engine_error = self.describe_error(exc)
            log.error("Could not open the engine: %s", self.engine_error)
            self.engineFailed.emit(self.engine_error)
            self._ready.set()
            return
        try:
            self.api = await self._make_api(self.runtime)
        except Exception as exc:
            self.engine_error = "the collection engine did not start: " + self.describe_error(exc)
            log.error("%s", self.engine_error)
        await self._load_token()
        self._ready.set()
        self.engineReady.emit()
        await self.reload_jobs()
        self.databaseChanged.emit()
        self.exportsChanged.emit()

    async def ready(self) -> UiRuntime:
        await self._ready.wait()
        if self.runtime is None:
            raise RuntimeError(self.engine_error or "the engine is not available")
        return self.runtime

    def engine_mode(self) -> str:
        """'process' (the app) or 'thread' (tests with an injected runtime, or on request)."""
        if self._runtime_factory is not None:
            return "thread"
        return os.environ.get("EXPIRYTRACK_ENGINE", "process")

    async def _make_api(self, rt: UiRuntime) -> Any:
        from expirytrack_desktop.ui.engine_api import ProcessEngineApi, ThreadEngineApi

        if self.engine_mode() == "thread":
            return ThreadEngineApi(rt, self.engine, self._progress_from_engine)
        s = self.services
        rt_conf = s.runtime()
        config = {
            "paths": (str(s.paths.data_dir), str(s.paths.config_dir), str(s.paths.log_dir)),
            "db_path": str(rt_conf.db_path),
            "api_base": s.options.api_base,
            "rate_limit": rt_conf.rate_limit,
            "ledger_path": None if self._ledger_path() is None else str(self._ledger_path()),
            "demo": s.demo,
            "concurrency": s.settings.concurrency,
            "market": s.extra.get("demo_market"),
        }
        return ProcessEngineApi(config, self._on_progress)  # spawned on first use

    def _ledger_path(self) -> Path | None:
        return self.services.runtime().ledger_path

    def _push_token(self, token: str | None) -> None:
        """Give the collection engine the token (demo: the simulator's own demo token)."""
        if self.api is None:
            return
        if self.services.demo and token:
            from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN

            if self.engine_mode() == "process":
                token = DEMO_ACCESS_TOKEN  # the child's simulator does not know this process's
        self.api.set_token(token)

    def _build_runtime(self) -> UiRuntime:
        if self._runtime_factory is not None:
            return self._runtime_factory()
        from expirytrack_desktop.ui.runtime_adapter import build_runtime

        s = self.services
        rt = s.runtime()
        return build_runtime(
            db_path=rt.db_path,
            api_base=rt.api_base,
            rate_limit=rt.rate_limit,
            ledger_path=rt.ledger_path,
            secrets_fallback=s.paths.secrets_fallback_path,
            demo=s.demo,
            concurrency=s.settings.concurrency,
            passphrase=self._passphrase_callback,
            paths=s.paths,
        )

    def _passphrase_callback(self, creating: bool) -> str | None:
        # The store asks synchronously; the window unlocks it beforehand with a dialog
        # (ensure_unlocked), so a call here means "not unlocked": cancel.
        return None

    def _api(self) -> Any:
        if self.api is None:
            raise RuntimeError(self.engine_error or "the collection engine is not running")
        return self.api

    async def _e(self, coro: Coroutine[Any, Any, Any]) -> Any:
        """Run an engine coroutine on the engine thread's loop and await its result."""
        return await self.engine.call(coro)

    async def aclose(self) -> None:
        """Stop background work and close clients (called before the loop ends).

        Running jobs are cancelled: what they fetched is stored, and they show as resumable.
        """
        tasks = [t for t in self._all if not t.done()]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for h in list(self.handles.values()):
            if not h.done() and self.api is not None:
                self.api.cancel(h)
                with contextlib.suppress(BaseException):
                    async with asyncio.timeout(15):
                        await self.api.wait(h)
        if self.api is not None:
            with contextlib.suppress(Exception):
                await self.api.close()
        if self.runtime is not None and self.engine.running:
            with contextlib.suppress(Exception):
                await self._e(self.runtime.aclose())
        await self.run_blocking(self.engine.stop)
        for pool in (self._executor, self._export_executor):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
        self._executor = self._export_executor = None

    # --- errors --------------------------------------------------------------------------------
    @staticmethod
    def describe_error(exc: BaseException) -> str:
        msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        code = getattr(exc, "code", None)
        if code and code not in msg:
            msg = f"{msg} ({code})"
        return msg

    # --- auth --------------------------------------------------------------------------------
    async def _load_token(self) -> None:
        rt = self.runtime
        if rt is None:
            return
        if rt.demo and rt.simulator is not None:
            self._token_info = None
            self.authChanged.emit()
            return
        if rt.secrets.needs_passphrase:
            self.authChanged.emit()
            return
        try:
            token = await self.run_blocking(rt.tokens.access_token)
            info = await self.run_blocking(rt.tokens.info)
        except Exception as exc:
            log.warning("Could not read the stored token: %s", self.describe_error(exc))
            token, info = None, None
        rt.client.set_access_token(token)
        self._push_token(token)
        self._token_info = info if token else None
        self.authChanged.emit()

    def logged_in(self) -> bool:
        rt = self.runtime
        return rt is not None and bool(rt.client.has_token)

    def auth_summary(self) -> str:
        rt = self.runtime
        if rt is None:
            return "Starting…" if self.engine_error is None else "Engine not available"
        if rt.demo and self._token_info is None:
            return "Demo user (DEMO01), simulated login" if rt.client.has_token else "Logged out"
        if self._token_info is not None:
            from expirytrack_desktop.timeutil import now_utc

            return self._token_info.describe(now_utc())
        if rt.secrets.needs_passphrase:
            return "Secrets locked: log in or open Settings to unlock"
        return "Not logged in"

    def secret_store_description(self) -> str:
        rt = self.runtime
        if rt is None:
            return ""
        if rt.secrets.is_fallback:
            return "⚠ Encrypted-file fallback in use: " + rt.secrets.backend_name
        return "Secrets are kept in the " + rt.secrets.backend_name

    async def ensure_unlocked(self, *, for_write: bool = False) -> bool:
        """With the encrypted fallback, ask the passphrase (non-blocking dialog) once.

        Reading needs it only when the file exists; writing a new file asks for a new one.
        """
        rt = await self.ready()
        store = rt.secrets
        if not store.is_fallback or store._key is not None:  # unlocked already
            return True
        creating = not store.fallback_exists()
        if creating and not for_write:
            return True  # nothing stored yet: nothing to unlock
        from expirytrack_desktop.ui.dialogs import PassphraseDialog, run_dialog

        while True:
            dlg = PassphraseDialog(creating, store.fallback_reason or "", self.dialog_parent)
            self.passphrase_dialog = dlg
            if not await run_dialog(dlg):
                return False
            try:
                await self.run_blocking(store.unlock, dlg.passphrase())
            except Exception as exc:
                log.warning("Secrets: %s", self.describe_error(exc))
                dlg.deleteLater()
                continue
            dlg.deleteLater()
            await self._load_token()
            return True

    async def load_credentials(self) -> Any:
        rt = await self.ready()
        if not await self.ensure_unlocked():
            raise RuntimeError("the secrets file is locked (no passphrase given)")
        from expirytrack_desktop.auth.credentials import load_credentials

        return await self.run_blocking(load_credentials, rt.secrets)

    async def save_credentials(self, api_key: str, api_secret: str | None, redirect: str) -> None:
        rt = await self.ready()
        from expirytrack_desktop.auth.credentials import (
            load_credentials,
            save_credentials,
            validate_credentials,
        )

        if not await self.ensure_unlocked(for_write=True):
            raise RuntimeError("the secrets file is locked (no passphrase given)")
        if not api_secret:
            old = await self.run_blocking(load_credentials, rt.secrets)
            if old is None:
                raise ValueError("API secret: enter it (nothing is stored yet)")
            api_secret = old.api_secret
        creds = validate_credentials(api_key, api_secret, redirect)
        await self.run_blocking(save_credentials, rt.secrets, creds)
        log.info("Credentials saved (%s)", rt.secrets.backend_name)

    async def has_credentials(self) -> bool:
        rt = await self.ready()
        if rt.secrets.needs_passphrase:
            return True  # a fallback file exists: something is stored
        from expirytrack_desktop.auth.credentials import load_credentials

        try:
            return (await self.run_blocking(load_credentials, rt.secrets)) is not None
        except Exception:
            return False

    async def _after_login(self, info: Any) -> Any:
        rt = await self.ready()
        token = await self.run_blocking(rt.tokens.access_token)
        rt.client.set_access_token(token)
        self._push_token(token)
        self._token_info = info
        self.authChanged.emit()
        log.info("Logged in: %s", self.auth_summary())
        await self.resume_after_login()
        return info

    async def login_oauth(self, on_url: Callable[[str], None] | None = None) -> Any:
        self._login_cancelled = False
        rt = await self.ready()
        if rt.demo and rt.simulator is not None:
            return await self.paste_token(rt.simulator.issue_token())
        if not await self.ensure_unlocked():
            raise RuntimeError("the secrets file is locked (no passphrase given)")
        from expirytrack_desktop.auth.credentials import load_credentials
        from expirytrack_desktop.auth.oauth import OAuthLogin

        creds = await self.run_blocking(load_credentials, rt.secrets)
        if creds is None:
            raise RuntimeError("Enter your API key, secret and redirect URI in Settings first.")

        def show_url(url: str) -> None:  # called on the engine thread
            if on_url is not None and self._gui_loop is not None:
                self._gui_loop.call_soon_threadsafe(on_url, url)

        options: dict[str, Any] = {}
        if "browser_opener" in self.services.extra:  # tests play the browser
            options["opener"] = self.services.extra["browser_opener"]
        if rt.simulator is not None:  # tests: the login page's preflight stays in-process
            options["transport"] = rt.simulator.transport()
        self._login = OAuthLogin(
            creds, rt.client, rt.tokens, api_base=rt.api_base, on_url=show_url, **options
        )
        if self._login_cancelled:  # Cancel was pressed while the login was being prepared
            self._login.cancel()
        try:
            info = await self._e(self._login.run())
        finally:
            self._login = None
        return await self._after_login(info)

    def cancel_login(self) -> None:
        self._login_cancelled = True
        if self._login is not None:
            self.engine.call_soon(self._login.cancel)

    async def paste_token(self, token: str) -> Any:
        rt = await self.ready()
        if not await self.ensure_unlocked(for_write=True):
            raise RuntimeError("the secrets file is locked (no passphrase given)")
        from expirytrack_desktop.auth.token import profile_via

        info = await self._e(rt.tokens.save_pasted_token(token, profile_via(rt.client)))
        return await self._after_login(info)

    def logout(self) -> None:
        self.schedule(self._logout(), name="logout")

    async def _logout(self) -> None:
        rt = await self.ready()
        from expirytrack_desktop.auth.token import revoke_via

        result = await self._e(rt.tokens.logout(revoke_via(rt.client)))
        rt.client.set_access_token(None)
        self._push_token(None)
        self._token_info = None
        log.info("%s", result.message)
        self.authChanged.emit()

    # --- rate limits -----------------------------------------------------------------------------
    def rate_usage(self) -> list[tuple[float, int, int]]:
        rt = self.runtime
        if rt is None:
            return []
        try:
            return list(rt.limiter.usage())
        except Exception:
            return []

    def rate_summary(self) -> str:
        usage = self.rate_usage()
        if not usage:
            return "API budget: –"
        parts = [f"{used}/{limit} per {_span(sec)}" for sec, used, limit in usage]
        return "API budget: " + ", ".join(parts)

    def rate_tooltip(self) -> str:
        return (
            "Requests sent in each sliding window against its limit "
            f"({self.services.settings.resolved_rate_limit(self.services.options.rate_limit)}). "
            "Shared by every ExpiryTrack process of this user."
        )

    def usage_text(self) -> str:
        usage = self.rate_usage()
        lines = []
        for sec, used, limit in usage:
            pct = 100 * used / limit if limit else 0
            lines.append(f"{used:,} of {limit:,} requests in the last {_span(sec)} ({pct:.0f}%)")
        rt = self.runtime
        if rt is not None:
            lines.append(
                f"This session: {rt.client.requests_sent:,} requests, "
                f"{getattr(rt.client, 'retries', 0):,} retries"
            )
        return "\n".join(lines) if lines else "No API usage yet."

    def apply_settings(self) -> None:
        """Settings saved: new rate limit for the next clients, defaults for the wizard."""
        rt = self.runtime
        if rt is None:
            return
        try:
            from expirytrack_desktop.upstox.factory import process_limiter

            s = self.services
            ledger = self._ledger_path()
            spec = s.settings.resolved_rate_limit(s.options.rate_limit)
            limiter = process_limiter(spec, ledger)
            rt.limiter = limiter
            rt.client.limiter = limiter
            if self.api is not None:
                self.api.set_rate_limit(spec, None if ledger is None else str(ledger))
        except Exception as exc:
            log.warning("Rate limit not applied: %s", self.describe_error(exc))
        self.authChanged.emit()

    # --- wizard support ------------------------------------------------------------------------
    def known_underlyings(self) -> list[tuple[str, str]]:
        from expirytrack_desktop.collect import KNOWN_UNDERLYINGS

        return [(sym, key) for sym, (key, _) in KNOWN_UNDERLYINGS.items()]

    def instrument_key_error(self, text: str) -> str | None:
        from expirytrack_desktop.collect import InstrumentError, resolve_instrument

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

    def symbol_for_key(self, key: str) -> str:
        from expirytrack_desktop.collect import display_name

        return display_name(key)

    async def list_expiries(self, key: str) -> list[ExpiryChoice]:
        """Expiries offered by the API now, with the local coverage state of each."""
        from expirytrack_desktop.ui.collect_wizard import ExpiryChoice

        rt = await self.ready()
        available = await self._api().expiries(key)
        await rt.db.run(rt.db.upsert_underlying, key, symbol=_symbol(key))
        await rt.db.run(rt.db.upsert_expiries, key, available)
        known = {d: w for d, _, w in await rt.db.run(rt.db.known_expiries, key)}
        states: dict[date, str] = {}
        interval = self.services.settings.default_interval
        for cov in await rt.db.run(rt.db.coverage, key, interval):
            states[cov.expiry_date] = COVERAGE_STATE.get(cov.state, cov.state)
        return [
            ExpiryChoice(d, known.get(d), states.get(d, "none")) for d in sorted(set(available))
        ]

    async def estimate(self, sel: WizardSelection) -> list[Any]:
        rt = await self.ready()
        del rt
        out = []
        for key, expiries in sel.expiries.items():
            params = self._selection(key, expiries, sel).to_params()
            out.append(await self._api().estimate(params, sel.concurrency))
        return out

    @staticmethod
    def _selection(key: str, expiries: list[date], sel: WizardSelection) -> Any:
        from expirytrack_desktop.collect import Selection

        return Selection([key], expiries, sel.interval, sel.months)

    def describe_estimate(self, estimates: list[Any]) -> str:
        if not estimates:
            return "<p>Nothing to do.</p>"
        req = sum(e.requests for e in estimates)
        secs = sum(e.seconds for e in estimates)
        contracts = sum(e.contracts for e in estimates)
        windows = sum(e.windows for e in estimates)
        approx = any(e.is_estimate for e in estimates)
        from expirytrack_desktop.ui.models import fmt_duration

        notes = [n for e in estimates for n in e.notes]
        html = (
            f"<p>{'About ' if approx else ''}<b>{req:,}</b> API requests "
            f"({contracts:,} contracts, {windows:,} candle windows still missing), "
            f"about <b>{fmt_duration(secs) or '0s'}</b> at the configured rate limits.</p>"
        )
        if notes:
            html += "<ul>" + "".join(f"<li>{_esc(n)}</li>" for n in dict.fromkeys(notes)) + "</ul>"
        html += "<p>One job is created per underlying; they share one rate limiter.</p>"
        return html

    async def start_collection(self, sel: WizardSelection) -> int:
        """One job per underlying (their expiry dates differ); returns the first job id."""
        rt = await self.ready()
        if not rt.client.has_token:
            raise RuntimeError("Not logged in: use Login first.")
        first: int | None = None
        for key, expiries in sel.expiries.items():
            params = self._selection(key, expiries, sel).to_params()
            job = await self._api().start(params, sel.concurrency)
            self._track(job)
            first = job.id if first is None else first
            self.jobs_model.upsert(
                JobRow(
                    id=job.id,
                    underlyings=self.symbol_for_key(key),
                    expiries=", ".join(d.isoformat() for d in sorted(expiries)),
                    status="running",
                    started_at=_utc_now_text(),
                )
            )
        assert first is not None
        return first

    # --- jobs ------------------------------------------------------------------------------------
    def _track(self, job: Any) -> None:
        self.handles[job.id] = job
        self.schedule(self._watch(job))

    async def _watch(self, job: Any) -> None:
        try:
            result = await self._api().wait(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.error("Job %s stopped: %s", job.id, self.describe_error(exc))
            await self.reload_jobs()
            return
        state = str(result.state)
        if result.message:
            level = logging.INFO if state == "completed" else logging.WARNING
            log.log(level, "Job %s %s: %s", job.id, state, result.message)
        else:
            log.info("Job %s %s", job.id, state)
        if self.handles.get(job.id) is job:
            del self.handles[job.id]
        await self.reload_jobs()
        self.jobLogChanged.emit(job.id)
        self.databaseChanged.emit()
        self.jobFinished.emit(job.id, state)
        if state == "needs_login":
            self._paused_for_login.add(job.id)
            self.loginNeeded.emit(
                "The Upstox access token was rejected or has expired. Log in again."
            )

    def _progress_from_engine(self, p: Any) -> None:
        """Engine thread: hand the event to the window's loop (at most ~10/s per job)."""
        loop = self._gui_loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._on_progress, p)

    def _on_progress(self, p: Any) -> None:
        """Engine callback (event-loop thread): record only; the jobs page timer repaints."""

        def apply(row: JobRow) -> None:
            row.status = str(p.state)
            row.total = p.items_total
            row.done = p.items_done
            row.failed = p.items_failed
            row.requests = p.requests
            row.candles = p.candles
            row.rate = p.rate
            row.eta = p.eta_seconds
            row.error = p.last_error
            row.extra["current"] = p.current
            row.extra["phase"] = str(p.phase)
            if row.started_at is None:
                row.started_at = _utc_now_text()

        self.jobs_model.post(p.job_id, apply)

    async def wait_job(self, job_id: int) -> Any:
        """Wait for a running job to end; returns its engine result (None if not running)."""
        h = self.handles.get(job_id)
        if h is None:
            return None
        return await self._api().wait(h)

    def is_running(self, job_id: int) -> bool:
        h = self.handles.get(job_id)
        return h is not None and not h.done()

    async def reload_jobs(self) -> None:
        rt = self.runtime
        if rt is None:
            return  # the database could not be opened: the status bar and log say why
        records = await rt.db.run(rt.db.list_jobs, 200, "collect")
        rows = []
        for rec in records:
            row = job_row_from_record(rec.__dict__ if hasattr(rec, "__dict__") else _asdict(rec))
            h = self.handles.get(rec.id)
            if h is not None and not h.done() and h.last_progress is not None:
                p = h.last_progress
                row.status = str(h.state)
                row.total, row.done, row.failed = p.items_total, p.items_done, p.items_failed
                row.requests, row.candles = p.requests, p.candles
                row.rate, row.eta = p.rate, p.eta_seconds
            rows.append(row)
        self.jobs_model.set_rows(rows)

    async def job_log(self, job_id: int) -> list[str]:
        rt = self.runtime
        if rt is None:
            return []
        entries = await rt.db.run(rt.db.job_logs, job_id, 500)
        lines = [f"{at} {level:<7} {msg}" for at, level, msg in entries]
        h = self.handles.get(job_id)
        if h is not None and h.last_progress is not None:
            p = h.last_progress
            lines.append(f"(live) {p.phase}: {p.current}")
        row = self.jobs_model.job(job_id)
        if row is not None:
            lines.insert(
                0,
                f"Job {job_id} ({row.underlyings}; expiries {row.expiries}): {row.status} — "
                f"{row.done + row.failed}/{row.total} items, {row.failed} failed, "
                f"{row.requests:,} requests, {row.candles:,} candles; started "
                f"{row.started_at or '–'}, finished {row.completed_at or '–'} (UTC)",
            )
            if row.error:
                lines.append(f"Last error: {row.error}")
        return lines

    async def cancel_job(self, job_id: int) -> None:
        h = self.handles.get(job_id)
        if h is not None and not h.done():
            self._api().cancel(h)
            with contextlib.suppress(BaseException):
                await self._api().wait(h)
        else:
            rt = await self.ready()
            await rt.db.run(rt.db.update_job, job_id, status="cancelled")
            await rt.db.run(rt.db.add_job_log, job_id, "info", "cancelled from the window")
        self._paused_for_login.discard(job_id)
        await self.reload_jobs()

    async def pause_job(self, job_id: int) -> None:
        h = self.handles.get(job_id)
        if h is not None and not h.done():
            self._api().pause(h)
            self.jobs_model.post(job_id, lambda r: setattr(r, "status", "paused"))
            self.jobs_model.flush()

    async def resume_job(self, job_id: int) -> None:
        h = self.handles.get(job_id)
        if h is not None and not h.done():
            self._api().unpause(h)
            self.jobs_model.post(job_id, lambda r: setattr(r, "status", "running"))
            self.jobs_model.flush()
            return
        rt = await self.ready()
        if not rt.client.has_token:
            self.loginNeeded.emit("Log in to resume this collection.")
            return
        job = await self._api().resume(job_id)
        self._paused_for_login.discard(job_id)
        self._track(job)
        self.jobs_model.post(job_id, lambda r: setattr(r, "status", "running"))
        self.jobs_model.flush()

    async def retry_job(self, job_id: int) -> None:
        await self.ready()
        if self.is_running(job_id):
            return
        job = await self._api().retry(job_id)
        self._track(job)
        self.jobs_model.post(job_id, lambda r: setattr(r, "status", "running"))
        self.jobs_model.flush()

    async def resume_after_login(self) -> None:
        """Jobs stopped for an expired token continue (they re-plan what is missing)."""
        rt = await self.ready()
        records = await rt.db.run(rt.db.list_jobs, 200, "collect")
        waiting = [r.id for r in records if r.status == "needs_login"]
        for job_id in waiting:
            if not self.is_running(job_id):
                log.info("Resuming job %s after login", job_id)
                await self.resume_job(job_id)
        self._paused_for_login.clear()

    # --- dashboard -------------------------------------------------------------------------------
    async def database_stats(self) -> dict[str, int]:
        rt = self.runtime
        if rt is None:
            return {}
        c = await rt.db.run(rt.db.counts)
        return {
            "underlyings": c.underlyings,
            "expiries": c.expiries,
            "contracts": c.contracts,
            "candles": c.candles,
            "db_bytes": c.db_bytes,
        }

    async def coverage_cells(self) -> dict[tuple[str, str], CoverageCell]:
        rt = self.runtime
        if rt is None:
            return {}
        cov = await rt.db.run(rt.db.coverage, None, None)
        cells: dict[tuple[str, str], CoverageCell] = {}
        for c in cov:
            label = c.symbol or c.instrument_key
            if c.interval != "1minute":
                label = f"{label} ({c.interval})"
            cells[(label, c.expiry_date.isoformat())] = CoverageCell(
                state=COVERAGE_STATE.get(c.state, c.state),
                done=c.contracts_complete,
                total=c.contracts,
                candles=c.candles,
                failed=c.failed_windows,
            )
        return cells

    # --- exports ----------------------------------------------------------------------------------
    async def export_underlyings(self) -> list[Any]:
        from expirytrack_desktop.export.api import available_underlyings

        await self.ready()
        return await self.run_blocking(available_underlyings, str(self.services.db_path))

    async def export_expiries(self, keys: list[str]) -> list[Any]:
        from expirytrack_desktop.export.api import available_expiries

        await self.ready()

        def read() -> list[Any]:
            return available_expiries(str(self.services.db_path), keys, with_candle_counts=True)

        return await self.run_blocking(read)

    async def export_preview(self, options: Any) -> Any:
        from expirytrack_desktop.export.api import preview

        return await self.run_blocking(preview, str(self.services.db_path), options)

    async def run_export(
        self,
        options: Any,
        out_path: Any,
        *,
        overwrite: bool = False,
        progress: Callable[[Any], None] | None = None,
        cancel: Any = None,
    ) -> Any:
        """The export engine in a worker thread (it is blocking); returns its result."""
        from expirytrack_desktop.export.api import run_export

        def work() -> Any:
            return run_export(
                str(self.services.db_path),
                options,
                out_path,
                overwrite=overwrite,
                progress=progress,
                cancel=cancel,
            )

        result = await asyncio.get_running_loop().run_in_executor(self._export_pool(), work)
        log.info("Exported %s rows to %s", f"{result.rows:,}", result.path)
        return result

    def _export_pool(self) -> ThreadPoolExecutor:
        if self._export_executor is None:
            self._export_executor = ThreadPoolExecutor(1, thread_name_prefix="expirytrack-export")
        return self._export_executor

    async def export_history(self) -> list[dict[str, Any]]:
        """The export engine's history (what, when, where, rows, size), newest first."""
        if not self.services.db_path.exists():
            return []
        from expirytrack_desktop.export.api import list_export_history

        entries = await self.run_blocking(list_export_history, str(self.services.db_path))
        return [
            {
                "created_at": e.created_at,
                "what": _what(e.selection),
                "format": e.format,
                "rows": e.rows,
                "bytes": e.bytes,
                "path": e.path,
            }
            for e in entries
        ]


def _utc_now_text() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _what(sel: dict[str, Any]) -> str:
    from expirytrack_desktop.collect import display_name

    unds = ", ".join(display_name(u) for u in sel.get("underlyings", []))
    exp = sel.get("expiries")
    exp_text = "all expiries" if exp is None else f"{len(exp)} expiries"
    types = "/".join(sel.get("contract_types") or [])
    return f"{unds} · {exp_text}" + (f" · {types}" if types else "")


def _symbol(key: str) -> str | None:
    from expirytrack_desktop.collect import symbol_for_key

    return symbol_for_key(key)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _asdict(rec: Any) -> dict[str, Any]:
    return {k: getattr(rec, k) for k in rec.__slots__}


def _span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:g}s"
    if seconds < 3600:
        return f"{seconds / 60:g}min"
    return f"{seconds / 3600:g}h"


def job_row_from_record(r: dict[str, Any]) -> JobRow:
    return JobRow(
        id=int(r["id"]),
        underlyings=r.get("underlyings") or "",
        expiries=r.get("expiries") or "",
        status=r.get("status") or "",
        total=int(r.get("total_items") or 0),
        done=int(r.get("done_items") or 0),
        failed=int(r.get("failed_items") or 0),
        requests=int(r.get("requests") or 0),
        candles=int(r.get("candles") or 0),
        started_at=r.get("started_at"),
        completed_at=r.get("completed_at"),
        error=r.get("error_message"),
    )
