"""The Upstox app's API key, API secret and redirect URI: shape checks and storage.

They are entered once (settings dialog, ``expirytrack configure``) and must match the app
registered on Upstox's developer console exactly, so values are only stripped of
surrounding whitespace, never otherwise rewritten. Validation catches the usual paste
mistakes early, with a message naming the field (never echoing a secret).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from expirytrack_desktop.auth.secrets import API_KEY, API_SECRET, REDIRECT_URI, SecretStore

DEFAULT_REDIRECT_URI = "http://127.0.0.1:8765/callback"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")

# Upstox keys are UUID-like, secrets short alphanumerics; allow a little more, but not
# spaces, quotes or other paste debris.
_TOKENISH = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-.~+/=]*")


class CredentialsError(ValueError):
    """A credential has the wrong shape; ``field`` names it ("api_key", ...)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class LoopbackRedirect:
    """A parsed loopback redirect URI: where the login listener must listen."""

    uri: str
    host: str  # as written: "127.0.0.1" or "localhost"; the listener binds 127.0.0.1 anyway
    port: int
    path: str  # "/callback"; "/" when the URI has no path


@dataclass(frozen=True, slots=True)
class Credentials:
    """The user's Upstox app. ``api_secret`` is excluded from the repr."""

    api_key: str
    api_secret: str = field(repr=False)
    redirect_uri: str = DEFAULT_REDIRECT_URI

    @property
    def redirect(self) -> LoopbackRedirect:
        return parse_redirect_uri(self.redirect_uri)


def mask(value: str) -> str:
    """A secret or key shown by its ends only ("AKID…0001"; "…" when short): what the CLI
    prints and the window shows of a stored key."""
    return f"{value[:4]}…{value[-4:]}" if len(value) > 12 else "…"


def validate_api_key(value: str | None) -> str:
    """The stripped API key, or :class:`CredentialsError` saying what is wrong."""
    return _validate_tokenish("api_key", "API key", value)


def validate_api_secret(value: str | None) -> str:
    """The stripped API secret; the message never contains the value."""
    return _validate_tokenish("api_secret", "API secret", value)


def _validate_tokenish(name: str, label: str, value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        raise CredentialsError(name, f"The {label} is empty: copy it from your Upstox app.")
    if len(text) < 4 or len(text) > 256:
        raise CredentialsError(
            name, f"The {label} has {len(text)} characters, which cannot be right (4-256 expected)."
        )
    if not _TOKENISH.fullmatch(text):
        raise CredentialsError(
            name,
            f"The {label} contains spaces, quotes or other characters Upstox never uses: "
            "paste it again without surrounding text.",
        )
    return text


def parse_redirect_uri(value: str | None) -> LoopbackRedirect:
    """Check the loopback shape ``http://127.0.0.1:PORT/path`` (or ``localhost``).

    The desktop login listens on that port itself, so the URI must be plain http on a
    loopback host with an explicit port, and carry no query or fragment.
    """
    text = (value or "").strip()
    if not text:
        raise CredentialsError("redirect_uri", "The redirect URI is empty.")
    example = f"e.g. {DEFAULT_REDIRECT_URI}"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise CredentialsError(
            "redirect_uri", f"The redirect URI is not a valid URL ({example})."
        ) from None
    if parts.scheme != "http":
        raise CredentialsError(
            "redirect_uri",
            "The redirect URI must start with http:// (the login page comes back to this "
            f"computer, not to a web site; {example}).",
        )
    host = (parts.hostname or "").lower()
    if host not in LOOPBACK_HOSTS:
        raise CredentialsError(
            "redirect_uri",
            f"The redirect URI must point to 127.0.0.1 or localhost, not {host or '(nothing)'!r} "
            f"({example}); register the same URI in your Upstox app.",
        )
    if parts.username or parts.password:
        raise CredentialsError("redirect_uri", "The redirect URI must not contain a user name.")
    if port is None:
        raise CredentialsError(
            "redirect_uri", f"The redirect URI needs an explicit port ({example})."
        )
    if not 1 <= port <= 65535:
        raise CredentialsError("redirect_uri", f"Port {port} is not a valid port number.")
    if parts.query or parts.fragment or "?" in text or "#" in text:
        raise CredentialsError(
            "redirect_uri", "The redirect URI must not have a query (?...) or fragment (#...)."
        )
    return LoopbackRedirect(uri=text, host=host, port=port, path=parts.path or "/")


def validate_redirect_uri(value: str | None) -> str:
    """The stripped redirect URI, or :class:`CredentialsError`."""
    return parse_redirect_uri(value).uri


def validate_credentials(
    api_key: str | None, api_secret: str | None, redirect_uri: str | None
) -> Credentials:
    """All three checked; the first problem raises :class:`CredentialsError`."""
    return Credentials(
        api_key=validate_api_key(api_key),
        api_secret=validate_api_secret(api_secret),
        redirect_uri=validate_redirect_uri(redirect_uri),
    )


def save_credentials(store: SecretStore, credentials: Credentials) -> None:
    """Store the (already validated) credentials in one write."""
    store.set_many(
        {
            API_KEY: credentials.api_key,
            API_SECRET: credentials.api_secret,
            REDIRECT_URI: credentials.redirect_uri,
        }
    )


def load_credentials(store: SecretStore) -> Credentials | None:
    """The stored credentials, or ``None`` when the key or the secret is missing.

    A missing redirect URI means the default (:data:`DEFAULT_REDIRECT_URI`).
    """
    values = store.get_many([API_KEY, API_SECRET, REDIRECT_URI])
    if not values[API_KEY] or not values[API_SECRET]:
        return None
    return Credentials(
        api_key=values[API_KEY] or "",
        api_secret=values[API_SECRET] or "",
        redirect_uri=values[REDIRECT_URI] or DEFAULT_REDIRECT_URI,
    )


def delete_credentials(store: SecretStore) -> None:
    store.delete_many([API_KEY, API_SECRET, REDIRECT_URI])
