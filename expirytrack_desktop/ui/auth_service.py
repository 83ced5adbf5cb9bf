"""Login, logout, credentials and the secrets store's passphrase, for the window.

The OAuth listener and the token calls run on the engine thread; keyring and file access
run on the task manager's worker threads. Who is logged in is shown by :meth:`summary`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from expirytrack_desktop import sandbox
from expirytrack_desktop.auth.credentials import (
    Credentials,
    load_credentials,
    save_credentials,
    validate_credentials,
)
from expirytrack_desktop.auth.oauth import OAuthLogin
from expirytrack_desktop.auth.token import TokenInfo, profile_via, revoke_via, token_expiry
from expirytrack_desktop.timeutil import now_utc
from expirytrack_desktop.ui.dialogs import PassphraseDialog, run_dialog
from expirytrack_desktop.ui.engine_host import EngineHost
from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.services import Services
from expirytrack_desktop.ui.signals import ControllerSignals
from expirytrack_desktop.ui.tasks import TaskManager
from expirytrack_desktop.upstox.models import Profile

log = logging.getLogger(__name__)

LOCKED = "the secrets file is locked (no passphrase given)"


class AuthService:
    def __init__(
        self,
        services: Services,
        host: EngineHost,
        tasks: TaskManager,
        signals: ControllerSignals,
        on_login: Callable[[], Awaitable[None]],
    ) -> None:
        self.services = services
        self.host = host
        self.tasks = tasks
        self.signals = signals
        self._on_login = on_login
        self.token_info: TokenInfo | None = None
        self._login: OAuthLogin | None = None
        self._login_cancelled = False
        self.dialog_parent: Any = None  # the main window, parent of the passphrase dialog
        self.passphrase_dialog: PassphraseDialog | None = None

    # --- state -------------------------------------------------------------------------------
    async def load_token(self) -> None:
        rt = self.host.runtime
        if rt is None:
            return
        if rt.demo and rt.simulator is not None:
            self.token_info = None
            self.signals.authChanged.emit()
            return
        if rt.secrets.needs_passphrase:
            self.signals.authChanged.emit()
            return
        try:
            token = await self.tasks.run_blocking(rt.tokens.access_token)
            info = await self.tasks.run_blocking(rt.tokens.info)
        except Exception as exc:
            log.warning("Could not read the stored token: %s", describe_error(exc))
            token, info = None, None
        rt.client.set_access_token(token)
        self.host.push_token(token)
        self.token_info = info if token else None
        self.signals.authChanged.emit()

    def logged_in(self) -> bool:
        rt = self.host.runtime
        return rt is not None and bool(rt.client.has_token)

    def token_expiry(self) -> datetime | None:
        """When the token in use stops working (the 03:30 IST rule); None when logged out."""
        if not self.logged_in():
            return None
        if self.token_info is not None:
            return self.token_info.expires_at
        return token_expiry(now_utc())  # a demo login: issued now

    def summary(self) -> str:
        rt = self.host.runtime
        if rt is None:
            return "Starting…" if self.host.engine_error is None else "Engine not available"
        if rt.demo and self.token_info is None:
            if not rt.client.has_token:
                return "Logged out"
            return f"{sandbox.DEMO_USER_NAME} ({sandbox.DEMO_USER_ID}), simulated login"
        if self.token_info is not None and rt.client.has_token:
            return self.token_info.describe(now_utc())
        if rt.secrets.needs_passphrase:
            return "Secrets locked: log in or open Settings to unlock"
        return "Not logged in"

    def secret_store_description(self) -> str:
        rt = self.host.runtime
        if rt is None:
            return ""
        if rt.secrets.is_fallback:
            return "⚠ Encrypted-file fallback in use: " + rt.secrets.backend_name
        return "Secrets are kept in the " + rt.secrets.backend_name

    # --- secrets -----------------------------------------------------------------------------
    async def ensure_unlocked(self, *, for_write: bool = False) -> bool:
        """With the encrypted fallback, ask the passphrase (non-blocking dialog) once.

        Reading needs it only when the file exists; writing a new file asks for a new one.
        """
        rt = await self.host.ready()
        store = rt.secrets
        if store.is_unlocked:
            return True
        creating = not store.fallback_exists()
        if creating and not for_write:
            return True  # nothing stored yet: nothing to unlock
        while True:
            dlg = PassphraseDialog(creating, store.fallback_reason or "", self.dialog_parent)
            self.passphrase_dialog = dlg
            if not await run_dialog(dlg):
                return False
            try:
                await self.tasks.run_blocking(store.unlock, dlg.passphrase())
            except Exception as exc:
                log.warning("Secrets: %s", describe_error(exc))
                dlg.deleteLater()
                continue
            dlg.deleteLater()
            await self.load_token()
            return True

    async def load_credentials(self) -> Credentials | None:
        rt = await self.host.ready()
        if not await self.ensure_unlocked():
            raise RuntimeError(LOCKED)
        return await self.tasks.run_blocking(load_credentials, rt.secrets)

    async def save_credentials(self, api_key: str, api_secret: str | None, redirect: str) -> None:
        rt = await self.host.ready()
        if not await self.ensure_unlocked(for_write=True):
            raise RuntimeError(LOCKED)
        if not api_secret:
            old = await self.tasks.run_blocking(load_credentials, rt.secrets)
            if old is None:
                raise ValueError("API secret: enter it (nothing is stored yet)")
            api_secret = old.api_secret
        creds = validate_credentials(api_key, api_secret, redirect)
        await self.tasks.run_blocking(save_credentials, rt.secrets, creds)
        log.info("Credentials saved (%s)", rt.secrets.backend_name)

    async def read_secrets(self, names: tuple[str, ...]) -> dict[str, str | None]:
        """Other secrets the settings show (S3, SMTP); unlocks the fallback file first."""
        rt = await self.host.ready()
        if not await self.ensure_unlocked():
            raise RuntimeError(LOCKED)
        return dict(await self.tasks.run_blocking(rt.secrets.get_many, names))

    async def write_secrets(self, entries: dict[str, str], delete: tuple[str, ...] = ()) -> None:
        """Store ``entries`` and delete ``delete`` (names only ever reach the log)."""
        rt = await self.host.ready()
        if not await self.ensure_unlocked(for_write=True):
            raise RuntimeError(LOCKED)
        if entries:
            await self.tasks.run_blocking(rt.secrets.set_many, entries)
        if delete:
            await self.tasks.run_blocking(rt.secrets.delete_many, delete)
        log.info("Secrets saved: %s (%s)", ", ".join([*entries, *delete]), rt.secrets.backend_name)

    async def has_credentials(self) -> bool:
        rt = await self.host.ready()
        if rt.secrets.needs_passphrase:
            return True  # a fallback file exists: something is stored
        try:
            return (await self.tasks.run_blocking(load_credentials, rt.secrets)) is not None
        except Exception:
            return False

    # --- login / logout ----------------------------------------------------------------------
    async def _after_login(self, info: TokenInfo) -> TokenInfo:
        rt = await self.host.ready()
        token = await self.tasks.run_blocking(rt.tokens.access_token)
        rt.client.set_access_token(token)
        self.host.push_token(token)
        self.token_info = info
        self.signals.authChanged.emit()
        log.info("Logged in: %s", self.summary())
        await self._on_login()
        return info

    async def login_oauth(self, on_url: Callable[[str], None] | None = None) -> TokenInfo:
        self._login_cancelled = False
        rt = await self.host.ready()
        if rt.demo and rt.simulator is not None:
            return await self._demo_login(rt.simulator.issue_token())
        if not await self.ensure_unlocked():
            raise RuntimeError(LOCKED)
        creds = await self.tasks.run_blocking(load_credentials, rt.secrets)
        if creds is None:
            raise RuntimeError("Enter your API key, secret and redirect URI in Settings first.")

        def show_url(url: str) -> None:  # called on the engine thread
            if on_url is not None:
                self.host.to_gui(on_url, url)

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
            info = await self.host.call(self._login.run())
        finally:
            self._login = None
        return await self._after_login(info)

    async def _demo_login(self, token: str) -> TokenInfo:
        """The simulator's token: verified like a real one, kept only in memory (it is worth
        nothing outside this session, so no secrets file and no passphrase for it)."""
        rt = await self.host.ready()
        verify = profile_via(rt.client)

        async def fetch() -> Profile:
            return await verify(token)

        profile = await self.host.call(fetch())
        info = TokenInfo(
            user_id=profile.user_id,
            user_name=profile.user_name,
            email=profile.email,
            expires_at=token_expiry(now_utc()),
        )
        self.host.push_token(token)
        self.token_info = info
        self.signals.authChanged.emit()
        log.info("Logged in: %s", self.summary())
        await self._on_login()
        return info

    def cancel_login(self) -> None:
        self._login_cancelled = True
        if self._login is not None:
            self.host.call_soon(self._login.cancel)

    async def paste_token(self, token: str) -> TokenInfo:
        rt = await self.host.ready()
        if not await self.ensure_unlocked(for_write=True):
            raise RuntimeError(LOCKED)
        info = await self.host.call(rt.tokens.save_pasted_token(token, profile_via(rt.client)))
        return await self._after_login(info)

    def logout(self) -> None:
        self.tasks.schedule(self._logout(), name="logout")

    async def _logout(self) -> None:
        rt = await self.host.ready()
        result = await self.host.call(rt.tokens.logout(revoke_via(rt.client)))
        rt.client.set_access_token(None)
        self.host.push_token(None)
        self.token_info = None
        log.info("%s", result.message)
        self.signals.authChanged.emit()
