"""Credential shape checks and storage."""

from __future__ import annotations

import pytest

from expirytrack_desktop.auth.credentials import (
    DEFAULT_REDIRECT_URI,
    Credentials,
    CredentialsError,
    LoopbackRedirect,
    delete_credentials,
    load_credentials,
    parse_redirect_uri,
    save_credentials,
    validate_api_key,
    validate_api_secret,
    validate_credentials,
)
from expirytrack_desktop.auth.secrets import API_SECRET, SERVICE, SecretStore

KEY = "1f2e3d4c-5b6a-7980-abcd-ef0123456789"
SECRET = "a1b2c3d4e5"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("http://127.0.0.1:8765/callback", LoopbackRedirect(
            "http://127.0.0.1:8765/callback", "127.0.0.1", 8765, "/callback")),
        ("  http://localhost:5000/auth/upstox \n", LoopbackRedirect(
            "http://localhost:5000/auth/upstox", "localhost", 5000, "/auth/upstox")),
        ("http://127.0.0.1:8765", LoopbackRedirect(
            "http://127.0.0.1:8765", "127.0.0.1", 8765, "/")),
    ],
)  # fmt: skip
def test_good_redirect_uris(uri, expected):
    assert parse_redirect_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "words"),
    [
        ("", "empty"),
        ("https://127.0.0.1:8765/callback", "http://"),
        ("http://example.com:8765/callback", "127.0.0.1 or localhost"),
        ("http://0.0.0.0:8765/callback", "127.0.0.1 or localhost"),
        ("http://127.0.0.1/callback", "explicit port"),
        ("http://127.0.0.1:0/callback", "not a valid port"),
        ("http://127.0.0.1:99999/callback", "not a valid URL"),
        ("http://127.0.0.1:8765/callback?x=1", "query"),
        ("http://127.0.0.1:8765/callback#frag", "fragment"),
        ("http://user@127.0.0.1:8765/callback", "user name"),
        ("127.0.0.1:8765/callback", "http://"),
    ],
)
def test_bad_redirect_uris(uri, words):
    with pytest.raises(CredentialsError, match=words) as info:
        parse_redirect_uri(uri)
    assert info.value.field == "redirect_uri"


@pytest.mark.parametrize("bad", ["", "  ", "abc", "has space inside", 'quoted"key', "x" * 300])
def test_bad_key_and_secret(bad):
    with pytest.raises(CredentialsError) as info:
        validate_api_key(bad)
    assert info.value.field == "api_key"
    with pytest.raises(CredentialsError) as info:
        validate_api_secret(bad)
    assert info.value.field == "api_secret"
    if len(bad.strip()) > 3:
        assert bad.strip() not in str(info.value)  # the secret is never echoed


def test_validate_and_store(memory_keyring):
    creds = validate_credentials(f" {KEY} ", f"{SECRET}\n", None or DEFAULT_REDIRECT_URI)
    assert creds == Credentials(KEY, SECRET, DEFAULT_REDIRECT_URI)
    assert SECRET not in repr(creds)
    store = SecretStore(memory_keyring)
    assert load_credentials(store) is None
    save_credentials(store, creds)
    assert memory_keyring.store[(SERVICE, API_SECRET)] == SECRET
    assert load_credentials(store) == creds
    assert creds.redirect.port == 8765
    delete_credentials(store)
    assert load_credentials(store) is None
