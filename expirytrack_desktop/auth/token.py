"""Access-token lifecycle: the 03:30 IST expiry rule, saving, loading, whoami, logout.

Upstox sends no ``expires_in``: a token is valid until 03:30 IST the next morning (one
generated at 02:30 IST expires at 03:30 the same day). The expiry is computed once when
the token is saved and stored beside it, so loading a token needs no network call.

The API calls (profile, logout) are passed in as small async callables taking the token,
so this module needs no HTTP client and tests need no server.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol

from expirytrack_desktop.auth.secrets import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_EXPIRY,
    ACCESS_TOKEN_USER,
    SecretStore,
)
from expirytrack_desktop.timeutil import IST, now_utc
from expirytrack_desktop.upstox.errors import AuthError, UpstoxError
from expirytrack_desktop.upstox.models import Profile, TokenGrant

log = logging.getLogger(__name__)

EXPIRY_TIME_IST = time(3, 30)
TOKEN_NAMES: tuple[str, ...] = (ACCESS_TOKEN, ACCESS_TOKEN_EXPIRY, ACCESS_TOKEN_USER)

Clock = Callable[[], datetime]
ProfileFetcher = Callable[[str], Awaitable[Profile]]
"""``await fetch(token)`` -> the profile of the token's user (``GET /v2/user/profile``)."""
Revoker = Callable[[str], Awaitable[object]]
"""``await revoke(token)``: ``DELETE /v2/logout`` with that token."""


class TokenError(Exception):
    """No usable token (missing, expired, rejected, malformed). Never carries the token."""


def token_expiry(issued_at: datetime) -> datetime:
    """When a token issued at ``issued_at`` stops working: the next 03:30 IST (in IST).

    Issued before 03:30 IST -> 03:30 the same IST day; at or after 03:30 -> 03:30 the next.
    ``issued_at`` must be timezone-aware (a naive time is ambiguous and raises ValueError).
    """
    if issued_at.tzinfo is None or issued_at.utcoffset() is None:
        raise ValueError("issued_at must be timezone-aware")
    local = issued_at.astimezone(IST)
    cutoff = datetime.combine(local.date(), EXPIRY_TIME_IST, tzinfo=IST)
    return cutoff if local < cutoff else cutoff + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """Who a stored token belongs to and until when (no token inside: safe to show/log)."""

    user_id: str
    user_name: str
    expires_at: datetime  # aware, IST
    email: str = ""

    def is_valid(self, now: datetime) -> bool:
        return now < self.expires_at

    def remaining(self, now: datetime) -> timedelta:
        return max(self.expires_at - now, timedelta(0))

    def describe(self, now: datetime) -> str:
        """One line for the CLI / status bar, e.g. ``"Asha (AB1234), valid until ..."``."""
        who = f"{self.user_name} ({self.user_id})" if self.user_name else self.user_id or "?"
        until = self.expires_at.astimezone(IST).strftime("%Y-%m-%d %H:%M IST")
        if self.is_valid(now):
            return f"{who}, token valid until {until}"
        return f"{who}, token EXPIRED at {until}: log in again"


@dataclass(frozen=True, slots=True)
class LogoutResult:
    """``revoked``: Upstox confirmed the revoke; ``deleted``: a token was removed locally."""

    revoked: bool
    deleted: bool
    message: str


def check_token_shape(token: str | None) -> str:
    """The stripped token, or :class:`TokenError` for an obviously broken paste."""
    text = (token or "").strip()
    if text.lower().startswith("bearer "):
        text = text[7:].strip()
    if not text:
        raise TokenError("the access token is empty")
    if len(text) < 16 or len(text) > 8192 or any(c.isspace() or ord(c) < 33 for c in text):
        raise TokenError(
            "that does not look like an Upstox access token (spaces, line breaks or too short)"
        )
    return text


def load_access_token(store: SecretStore, now: datetime | None = None) -> str | None:
    """The stored token, or ``None`` when there is none or it is past its expiry."""
    return TokenManager(store, clock=(lambda: now) if now is not None else now_utc).access_token()


class TokenManager:
    """Saves, loads and forgets the access token in a :class:`SecretStore`.

    ``prefix`` namespaces the stored names (the demo login uses ``"demo."`` so it never
    overwrites a real login). ``clock`` returns an aware ``datetime`` (default: UTC now).
    """

    def __init__(self, store: SecretStore, *, clock: Clock = now_utc, prefix: str = "") -> None:
        self.store = store
        self.clock = clock
        self.prefix = prefix

    def _n(self, name: str) -> str:
        return self.prefix + name

    # -- save -------------------------------------------------------------------------------

    def save_grant(self, grant: TokenGrant, issued_at: datetime | None = None) -> TokenInfo:
        """Store the token of a completed OAuth login; expiry by the 03:30 IST rule."""
        token = check_token_shape(grant.access_token)
        info = TokenInfo(
            user_id=grant.user_id,
            user_name=grant.user_name,
            email=grant.email,
            expires_at=token_expiry(issued_at or self.clock()),
        )
        self._save(token, info)
        return info

    async def save_pasted_token(self, token: str, fetch_profile: ProfileFetcher) -> TokenInfo:
        """Verify a token generated on Upstox's developer console, then store it.

        Its issue time is unknown, but every token dies at the next 03:30 IST, so that is
        its expiry. Raises :class:`TokenError` when Upstox rejects it; nothing is stored then.
        """
        text = check_token_shape(token)
        now = self.clock()
        try:
            profile = await fetch_profile(text)
        except AuthError:
            raise TokenError(
                "Upstox rejected the pasted access token (invalid or expired): generate a new "
                "one, or log in with `expirytrack login`"
            ) from None
        info = TokenInfo(
            user_id=profile.user_id,
            user_name=profile.user_name,
            email=profile.email,
            expires_at=token_expiry(now),
        )
        self._save(text, info)
        return info

    def _save(self, token: str, info: TokenInfo) -> None:
        user = json.dumps(
            {"user_id": info.user_id, "user_name": info.user_name, "email": info.email}
        )
        self.store.set_many(
            {
                self._n(ACCESS_TOKEN): token,
                self._n(ACCESS_TOKEN_EXPIRY): info.expires_at.isoformat(),
                self._n(ACCESS_TOKEN_USER): user,
            }
        )
        log.info("Access token saved for %s, valid until %s", info.user_id, info.expires_at)

    # -- load -------------------------------------------------------------------------------

    def info(self) -> TokenInfo | None:
        """What is stored (even when expired: check :meth:`TokenInfo.is_valid`), or ``None``."""
        values = self.store.get_many(
            [self._n(ACCESS_TOKEN), self._n(ACCESS_TOKEN_EXPIRY), self._n(ACCESS_TOKEN_USER)]
        )
        if not values[self._n(ACCESS_TOKEN)]:
            return None
        return self._info_from(
            values[self._n(ACCESS_TOKEN_EXPIRY)], values[self._n(ACCESS_TOKEN_USER)]
        )

    def _info_from(self, expiry: str | None, user: str | None) -> TokenInfo:
        try:
            expires_at = datetime.fromisoformat(expiry or "")
            if expires_at.tzinfo is None:
                raise ValueError
        except ValueError:
            # Unknown expiry (damaged entry): treat as already expired, never as eternal.
            expires_at = datetime(1970, 1, 1, tzinfo=IST)
        try:
            u = json.loads(user or "{}")
            if not isinstance(u, dict):
                u = {}
        except ValueError:
            u = {}
        return TokenInfo(
            user_id=str(u.get("user_id", "")),
            user_name=str(u.get("user_name", "")),
            email=str(u.get("email", "")),
            expires_at=expires_at.astimezone(IST),
        )

    def access_token(self) -> str | None:
        """The stored token if it has not expired by the 03:30 rule, else ``None``."""
        values = self.store.get_many(
            [self._n(ACCESS_TOKEN), self._n(ACCESS_TOKEN_EXPIRY), self._n(ACCESS_TOKEN_USER)]
        )
        token = values[self._n(ACCESS_TOKEN)]
        if not token:
            return None
        info = self._info_from(
            values[self._n(ACCESS_TOKEN_EXPIRY)], values[self._n(ACCESS_TOKEN_USER)]
        )
        return token if info.is_valid(self.clock()) else None

    def require_access_token(self) -> str:
        """Like :meth:`access_token`, but raises :class:`TokenError` saying why there is none."""
        token = self.access_token()
        if token is not None:
            return token
        info = self.info()
        if info is None:
            raise TokenError("not logged in: run `expirytrack login` (or Login in the window)")
        raise TokenError(
            f"the access token expired at {info.expires_at:%Y-%m-%d %H:%M} IST: log in again"
        )

    # -- whoami / logout ----------------------------------------------------------------------

    async def whoami(self, fetch_profile: ProfileFetcher) -> tuple[Profile, TokenInfo]:
        """Ask Upstox who the stored token belongs to (cheap validity check).

        Raises :class:`TokenError` when there is no valid token or Upstox rejects it (the
        token is kept: a 401 can be transient; the user decides to log in again).
        """
        token = self.require_access_token()
        info = self.info()
        assert info is not None
        try:
            profile = await fetch_profile(token)
        except AuthError:
            raise TokenError(
                "Upstox rejected the stored access token (revoked or expired): log in again"
            ) from None
        return profile, info

    async def logout(self, revoke: Revoker) -> LogoutResult:
        """Revoke the token at Upstox (``DELETE /v2/logout``), then delete it locally.

        The local copy is deleted even when the revoke fails (network down, token already
        invalid); the result says so.
        """
        values = self.store.get_many([self._n(ACCESS_TOKEN), self._n(ACCESS_TOKEN_EXPIRY)])
        token = values[self._n(ACCESS_TOKEN)]
        if not token:
            self.store.delete_many([self._n(n) for n in TOKEN_NAMES])
            return LogoutResult(False, False, "Not logged in: there was no token to remove.")
        info = self._info_from(values[self._n(ACCESS_TOKEN_EXPIRY)], None)
        revoked = False
        if not info.is_valid(self.clock()):
            message = "The token had already expired; removed it from this computer."
        else:
            try:
                await revoke(token)
            except AuthError:
                message = (
                    "Upstox no longer accepted the token (already revoked or expired); "
                    "removed it from this computer."
                )
            except UpstoxError as exc:
                message = (
                    f"Could not revoke the token at Upstox ({exc.message}); removed it from this "
                    "computer anyway. It stops working at 03:30 IST at the latest."
                )
            except Exception as exc:  # network trouble: httpx errors, OSError, timeouts
                message = (
                    f"Could not reach Upstox to revoke the token ({type(exc).__name__}); removed "
                    "it from this computer anyway. It stops working at 03:30 IST at the latest."
                )
            else:
                revoked = True
                message = (
                    "Logged out: the token was revoked at Upstox and removed from this computer."
                )
        self.store.delete_many([self._n(n) for n in TOKEN_NAMES])
        return LogoutResult(revoked, True, message)


class _TokenClient(Protocol):
    @property
    def access_token(self) -> str | None: ...
    def set_access_token(self, token: str | None) -> None: ...
    def get_profile(self) -> Awaitable[Profile]: ...
    def logout(self) -> Awaitable[None]: ...


def profile_via(client: _TokenClient) -> ProfileFetcher:
    """A :data:`ProfileFetcher` that uses ``client`` (an ``UpstoxClient``) with the token.

    A verified token stays set on the client; when verification fails (rejected, network,
    cancelled) the client's previous token is put back, so a bad paste cannot log it out.
    """

    async def fetch(token: str) -> Profile:
        previous = client.access_token
        client.set_access_token(token)
        try:
            return await client.get_profile()
        except BaseException:
            client.set_access_token(previous)
            raise

    return fetch


def revoke_via(client: _TokenClient) -> Revoker:
    """A :data:`Revoker` that calls ``DELETE /v2/logout`` through ``client`` with the token."""

    async def revoke(token: str) -> None:
        client.set_access_token(token)
        try:
            await client.logout()
        finally:
            client.set_access_token(None)

    return revoke
