"""Token lifecycle: the 03:30 IST rule, save/load, pasted tokens, whoami, logout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest

from expirytrack_desktop.auth.secrets import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_EXPIRY,
    SecretStore,
)
from expirytrack_desktop.auth.token import (
    TokenError,
    TokenInfo,
    TokenManager,
    check_token_shape,
    load_access_token,
    token_expiry,
)
from expirytrack_desktop.timeutil import IST
from expirytrack_desktop.upstox.errors import AuthError, ServerError
from expirytrack_desktop.upstox.models import Profile, TokenGrant

TOKEN = "eyJhbGciOiJIUzI1NiJ9.payload-part.signature_part"


def ist(y, mo, d, h, mi, s=0, us=0):
    return datetime(y, mo, d, h, mi, s, us, tzinfo=IST)


@pytest.mark.parametrize(
    ("issued", "expires"),
    [
        (ist(2025, 4, 17, 2, 30), ist(2025, 4, 17, 3, 30)),  # the documented example
        (ist(2025, 4, 17, 3, 29, 59, 999999), ist(2025, 4, 17, 3, 30)),
        (ist(2025, 4, 17, 3, 30), ist(2025, 4, 18, 3, 30)),  # exactly at the cut-off: new day
        (ist(2025, 4, 17, 3, 30, 0, 1), ist(2025, 4, 18, 3, 30)),
        (ist(2025, 4, 17, 0, 0), ist(2025, 4, 17, 3, 30)),
        (ist(2025, 4, 17, 9, 15), ist(2025, 4, 18, 3, 30)),
        (ist(2025, 4, 17, 23, 59, 59), ist(2025, 4, 18, 3, 30)),
        (ist(2025, 12, 31, 22, 0), ist(2026, 1, 1, 3, 30)),  # year end
        (ist(2024, 2, 28, 12, 0), ist(2024, 2, 29, 3, 30)),  # leap day
    ],
)
def test_0330_rule(issued, expires):
    got = token_expiry(issued)
    assert got == expires
    assert got.utcoffset() == timedelta(hours=5, minutes=30)


def test_0330_rule_converts_other_zones():
    # 21:59 UTC = 03:29 IST next day -> expires 22:00 UTC the same UTC day.
    assert token_expiry(datetime(2025, 4, 16, 21, 59, tzinfo=UTC)) == ist(2025, 4, 17, 3, 30)
    assert token_expiry(datetime(2025, 4, 16, 22, 0, tzinfo=UTC)) == ist(2025, 4, 18, 3, 30)
    ny = timezone(timedelta(hours=-5))
    # 16:00 at -05:00 = 21:00 UTC = 02:30 IST on the 17th.
    assert token_expiry(datetime(2025, 4, 16, 16, 0, tzinfo=ny)) == ist(2025, 4, 17, 3, 30)


def test_naive_time_refused():
    with pytest.raises(ValueError, match="aware"):
        token_expiry(datetime(2025, 4, 17, 2, 30))


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store(memory_keyring):
    return SecretStore(memory_keyring)


def grant(token: str = TOKEN) -> TokenGrant:
    return TokenGrant(access_token=token, user_id="AB1234", user_name="Asha", email="a@x.in")


def test_save_grant_then_load_until_0330(store):
    clock = Clock(ist(2025, 4, 17, 9, 0))
    tm = TokenManager(store, clock=clock)
    assert tm.access_token() is None and tm.info() is None
    info = tm.save_grant(grant())
    assert info == TokenInfo("AB1234", "Asha", ist(2025, 4, 18, 3, 30), "a@x.in")
    assert tm.access_token() == TOKEN
    assert load_access_token(store, ist(2025, 4, 18, 3, 29, 59)) == TOKEN
    assert load_access_token(store, ist(2025, 4, 18, 3, 30)) is None
    clock.now = ist(2025, 4, 18, 3, 30)
    assert tm.access_token() is None
    assert tm.info() == info  # still described (as expired)
    assert "EXPIRED" in info.describe(clock.now)
    assert "valid until 2025-04-18 03:30 IST" in info.describe(ist(2025, 4, 17, 10, 0))
    with pytest.raises(TokenError, match="expired at 2025-04-18 03:30"):
        tm.require_access_token()
    assert TOKEN not in repr(info)


def test_require_token_when_never_logged_in(store):
    with pytest.raises(TokenError, match="not logged in"):
        TokenManager(store).require_access_token()


def test_damaged_expiry_counts_as_expired(store, memory_keyring):
    tm = TokenManager(store, clock=Clock(ist(2025, 4, 17, 9, 0)))
    tm.save_grant(grant())
    store.set(ACCESS_TOKEN_EXPIRY, "garbage")
    assert tm.access_token() is None


def test_prefix_keeps_demo_and_real_tokens_apart(store):
    clock = Clock(ist(2025, 4, 17, 9, 0))
    TokenManager(store, clock=clock).save_grant(grant())
    demo = TokenManager(store, clock=clock, prefix="demo.")
    assert demo.access_token() is None
    demo.save_grant(grant("demo-token-0123456789"))
    assert TokenManager(store, clock=clock).access_token() == TOKEN


@pytest.mark.parametrize("bad", ["", "   ", "short", "abc def ghi jkl mno pqr", "tok\nen" * 5])
def test_token_shape(bad):
    with pytest.raises(TokenError):
        check_token_shape(bad)


def test_token_shape_strips_bearer():
    assert check_token_shape(f"  Bearer {TOKEN}\n") == TOKEN


async def test_pasted_token_verified_with_profile(store):
    seen = []

    async def fetch(token: str) -> Profile:
        seen.append(token)
        return Profile(user_id="AB1234", user_name="Asha", email="a@x.in", broker="UPSTOX")

    tm = TokenManager(store, clock=Clock(ist(2025, 4, 17, 1, 0)))
    info = await tm.save_pasted_token(f" {TOKEN} ", fetch)
    assert seen == [TOKEN]
    assert info.user_id == "AB1234" and info.expires_at == ist(2025, 4, 17, 3, 30)
    assert tm.access_token() == TOKEN


async def test_pasted_token_rejected_is_not_stored(store):
    async def fetch(token: str) -> Profile:
        raise AuthError("401", code="UDAPI100050", status=401)

    tm = TokenManager(store)
    with pytest.raises(TokenError, match="rejected the pasted access token") as info:
        await tm.save_pasted_token(TOKEN, fetch)
    assert TOKEN not in str(info.value)
    assert tm.info() is None


async def test_whoami(store):
    tm = TokenManager(store, clock=Clock(ist(2025, 4, 17, 9, 0)))
    profile = Profile(user_id="AB1234", user_name="Asha", email="a@x.in", broker="UPSTOX")

    async def fetch(token: str) -> Profile:
        assert token == TOKEN
        return profile

    with pytest.raises(TokenError, match="not logged in"):
        await tm.whoami(fetch)
    tm.save_grant(grant())
    got, info = await tm.whoami(fetch)
    assert got == profile and info.expires_at == ist(2025, 4, 18, 3, 30)

    async def reject(token: str) -> Profile:
        raise AuthError("401", code="UDAPI100050", status=401)

    with pytest.raises(TokenError, match="rejected the stored access token"):
        await tm.whoami(reject)
    assert tm.access_token() == TOKEN  # kept: the user decides


async def test_logout_revokes_and_deletes(store):
    tm = TokenManager(store, clock=Clock(ist(2025, 4, 17, 9, 0)))
    tm.save_grant(grant())
    revoked = []

    async def revoke(token: str) -> None:
        revoked.append(token)

    result = await tm.logout(revoke)
    assert revoked == [TOKEN]
    assert result.revoked and result.deleted and "revoked" in result.message
    assert tm.info() is None and store.get(ACCESS_TOKEN) is None


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (ServerError("HTTP 503 after 5 attempts", status=503), "Could not revoke"),
        (httpx.ConnectError("connection refused"), "Could not reach Upstox"),
        (AuthError("401", code="UDAPI100050", status=401), "no longer accepted"),
    ],
)
async def test_logout_deletes_locally_when_revoke_fails(store, error, words):
    tm = TokenManager(store, clock=Clock(ist(2025, 4, 17, 9, 0)))
    tm.save_grant(grant())

    async def revoke(token: str) -> None:
        raise error

    result = await tm.logout(revoke)
    assert not result.revoked and result.deleted
    assert words in result.message and "removed it from this computer" in result.message
    assert TOKEN not in result.message
    assert tm.info() is None


async def test_logout_of_expired_token_skips_revoke(store):
    clock = Clock(ist(2025, 4, 17, 9, 0))
    tm = TokenManager(store, clock=clock)
    tm.save_grant(grant())
    clock.now = ist(2025, 4, 19, 9, 0)

    async def revoke(token: str) -> None:
        raise AssertionError("must not call the API with an expired token")

    result = await tm.logout(revoke)
    assert not result.revoked and result.deleted and "already expired" in result.message
    assert tm.info() is None


async def test_logout_when_not_logged_in(store):
    async def revoke(token: str) -> None:
        raise AssertionError

    result = await TokenManager(store).logout(revoke)
    assert not result.revoked and not result.deleted and "Not logged in" in result.message


async def test_profile_via_puts_the_previous_token_back_when_verification_fails(store):
    from expirytrack_desktop.auth.token import profile_via
    from expirytrack_desktop.upstox.client import UpstoxClient
    from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec

    good = "previous-token-" + "g" * 20
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bearer = request.headers["Authorization"].removeprefix("Bearer ")
        seen.append(bearer)
        if bearer != TOKEN:
            return httpx.Response(
                401, json={"status": "error", "errors": [{"errorCode": "UDAPI100050"}]}
            )
        profile = {"user_id": "AB1234", "user_name": "Asha", "email": "a@x.in", "broker": "U"}
        return httpx.Response(200, json={"status": "success", "data": profile})

    client = UpstoxClient(
        "http://upstox.test",
        access_token=good,
        limiter=RateLimiter(RateLimitSpec.parse("1000/1")),
        transport=httpx.MockTransport(answer),
        max_attempts=1,
    )
    try:
        tm = TokenManager(store, clock=Clock(ist(2025, 4, 17, 1, 0)))
        with pytest.raises(TokenError, match="rejected"):
            await tm.save_pasted_token("rejected-token-" + "x" * 20, profile_via(client))
        assert client.access_token == good  # the rejected paste did not replace it
        assert tm.info() is None
        info = await tm.save_pasted_token(TOKEN, profile_via(client))
        assert info.user_id == "AB1234" and client.access_token == TOKEN
        assert seen == ["rejected-token-" + "x" * 20, TOKEN]
    finally:
        await client.aclose()
