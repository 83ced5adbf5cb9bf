"""Where API credentials and tokens live: the OS keyring, or a passphrase-encrypted file.

The OS keyring is used whenever a real backend works. Headless Linux (and a frozen build
whose keyring plugins were lost) only has keyring's *fail* backend, or keyrings.alt's
plaintext file; neither is acceptable, so :class:`SecretStore` then switches to the
project's own file, Fernet-encrypted under a key derived with scrypt from a passphrase the
user types (random salt in the file header, no key file anywhere), and says so through
:attr:`SecretStore.is_fallback` so the window and the CLI can show it.

Nothing in this module puts a secret value into a log line, a repr or an exception message.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets as _random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    import keyring.backend

    from expirytrack_desktop.paths import AppPaths

log = logging.getLogger(__name__)

SERVICE = "ExpiryTrack"

# Names of the stored values (the keyring "username" under SERVICE, or keys in the file).
API_KEY = "api_key"
API_SECRET = "api_secret"
REDIRECT_URI = "redirect_uri"
ACCESS_TOKEN = "access_token"
ACCESS_TOKEN_EXPIRY = "access_token_expiry"  # ISO 8601 with offset
ACCESS_TOKEN_USER = "access_token_user"  # JSON: user_id, user_name, email (not secret, handy)
KNOWN_NAMES: tuple[str, ...] = (
    API_KEY,
    API_SECRET,
    REDIRECT_URI,
    ACCESS_TOKEN,
    ACCESS_TOKEN_EXPIRY,
    ACCESS_TOKEN_USER,
)

PassphraseCallback = Callable[[bool], "str | None"]
"""Asks the user for the fallback file's passphrase.

Called with ``creating=True`` when a new file is about to be made (ask twice, explain that
the passphrase cannot be recovered), ``False`` to unlock an existing one. Return ``None``
or ``""`` to cancel. The CLI reads ``EXPIRYTRACK_PASSPHRASE`` or prompts with getpass; the
window shows a dialog (or calls :meth:`SecretStore.unlock` itself beforehand).
"""

FILE_FORMAT = "expirytrack-secrets"
FILE_VERSION = 1
MIN_NEW_PASSPHRASE = 8
_SCRYPT_N = 2**15
_SCRYPT_R = 8
_SCRYPT_P = 1
_MAX_SCRYPT_N = 2**20  # refuse absurd header values (memory exhaustion)


class SecretStoreError(Exception):
    """The secrets cannot be read or written (wrong passphrase, damaged file, keyring error).

    The message is for the user and never contains a secret value.
    """


def describe_backend(backend: keyring.backend.KeyringBackend) -> str:
    """Human name of a keyring backend, e.g. ``"SecretService Keyring"``."""
    try:
        return str(backend.name)
    except Exception:  # a third-party backend with a broken name property
        return type(backend).__name__


def unusable_reason(backend: keyring.backend.KeyringBackend) -> str | None:
    """Why ``backend`` must not hold our secrets, or ``None`` when it is a real keyring.

    Rejected: keyring's fail and null backends, keyrings.alt's file backends (plaintext, or
    prompting on the terminal), and a chainer whose members are all rejected. A backend that
    raises on a harmless read is rejected too (e.g. Secret Service without a D-Bus session).
    """
    cls = type(backend)
    module = cls.__module__
    if module == "keyring.backends.fail" or module == "keyring.backends.null":
        return f"no usable OS keyring ({describe_backend(backend)})"
    if "plaintext" in cls.__name__.lower() or module.startswith("keyrings.alt.file"):
        return f"the only keyring stores secrets in plain text ({describe_backend(backend)})"
    members = getattr(backend, "backends", None)
    if module == "keyring.backends.chainer" or (
        isinstance(members, list | tuple) and cls.__name__ == "ChainerBackend"
    ):
        members = list(members or [])
        reasons = [unusable_reason(m) for m in members]
        if not members or all(reasons):
            # a member's own "no usable OS keyring (...)" is said once, by its name
            parts = [
                describe_backend(m) if r.startswith("no usable OS keyring") else r
                for m, r in zip(members, reasons, strict=True)
                if r
            ]
            return "no usable OS keyring (" + ("; ".join(parts) or "no backend found") + ")"
        return None
    try:
        backend.get_password(SERVICE, "__probe__")
    except Exception as exc:
        return f"the OS keyring does not answer ({describe_backend(backend)}: {type(exc).__name__})"
    return None


class SecretStore:
    """``get``/``set``/``delete`` of named secrets in the keyring or the encrypted fallback.

    Inject everything: ``backend`` (default: ``keyring.get_keyring()`` at construction),
    ``fallback_path`` (``AppPaths.secrets_fallback_path``) and ``passphrase`` (the callback,
    asked at most once per process for an existing file: the derived key is kept in memory).
    """

    def __init__(
        self,
        backend: keyring.backend.KeyringBackend | None = None,
        fallback_path: Path | None = None,
        passphrase: PassphraseCallback | None = None,
        *,
        service: str = SERVICE,
        scrypt_n: int = _SCRYPT_N,
    ) -> None:
        if backend is None:
            import keyring

            backend = keyring.get_keyring()
        self._backend = backend
        self._service = service
        self._passphrase_cb = passphrase
        self._path = Path(fallback_path) if fallback_path is not None else None
        self._scrypt_n = scrypt_n
        self._lock = threading.RLock()
        self._key: bytes | None = None  # Fernet key derived from the passphrase
        self._salt: bytes | None = None
        self._kdf: dict[str, Any] | None = None
        self.fallback_reason: str | None = unusable_reason(backend)
        """Why the fallback is active (for the UI / CLI), ``None`` when the keyring is used."""
        if self.fallback_reason is not None:
            if self._path is None:
                raise SecretStoreError(
                    f"{self.fallback_reason}, and no path was given for the encrypted file"
                )
            log.info("Secrets: %s; using the encrypted file %s", self.fallback_reason, self._path)

    @classmethod
    def for_paths(
        cls,
        paths: AppPaths,
        passphrase: PassphraseCallback | None = None,
        backend: keyring.backend.KeyringBackend | None = None,
    ) -> SecretStore:
        """The store the app uses: keyring, else ``paths.secrets_fallback_path``."""
        return cls(backend, paths.secrets_fallback_path, passphrase)

    # -- what is in use -------------------------------------------------------------------

    @property
    def is_fallback(self) -> bool:
        """True when the encrypted file is used because no real OS keyring works."""
        return self.fallback_reason is not None

    @property
    def backend_name(self) -> str:
        """Shown to the user: which store holds the secrets."""
        if self.is_fallback:
            return f"encrypted file {self._path} (fallback: {self.fallback_reason})"
        return f"OS keyring ({describe_backend(self._backend)})"

    @property
    def fallback_path(self) -> Path | None:
        return self._path if self.is_fallback else None

    @property
    def needs_passphrase(self) -> bool:
        """True when the next read would ask for a passphrase (fallback file exists, locked)."""
        return self.is_fallback and self._key is None and self._file_exists()

    @property
    def is_unlocked(self) -> bool:
        """True when reads need no passphrase (OS keyring, or the fallback key is in memory)."""
        return not self.is_fallback or self._key is not None

    def fallback_exists(self) -> bool:
        return self.is_fallback and self._file_exists()

    def __repr__(self) -> str:
        state = "fallback" if self.is_fallback else "keyring"
        return f"<SecretStore {state} {self.backend_name!r}>"

    # -- passphrase -----------------------------------------------------------------------

    def unlock(self, passphrase: str) -> None:
        """Check ``passphrase`` against the existing file (or remember it for a new file).

        Raises :class:`SecretStoreError` ("wrong passphrase ...") and keeps nothing when it
        does not decrypt the file. A no-op with the OS keyring.
        """
        if not self.is_fallback:
            return
        with self._lock:
            if not passphrase:
                raise SecretStoreError("an empty passphrase cannot unlock the secrets file")
            if self._file_exists():
                header, token = self._read_file()
                key = self._derive(passphrase, header)
                self._decrypt(key, token)  # raises on a wrong passphrase
                self._key, self._salt, self._kdf = key, _b64d(header["kdf"]["salt"]), header["kdf"]
            else:
                self._new_key(_check_new_passphrase(passphrase))

    def lock(self) -> None:
        """Forget the derived key (the next access asks for the passphrase again)."""
        with self._lock:
            self._key = self._salt = self._kdf = None

    # -- get / set / delete ---------------------------------------------------------------

    def get(self, name: str) -> str | None:
        """The stored value, or ``None`` when absent."""
        _check_name(name)
        with self._lock:
            if not self.is_fallback:
                try:
                    return self._backend.get_password(self._service, name)
                except Exception as exc:
                    raise SecretStoreError(
                        f"the OS keyring could not read {name!r} ({type(exc).__name__})"
                    ) from None
            if not self._file_exists():
                return None
            return self._load_unlocked().get(name)

    def get_many(self, names: tuple[str, ...] | list[str]) -> dict[str, str | None]:
        """Several values with one decryption (one passphrase prompt at most)."""
        with self._lock:
            return {n: self.get(n) for n in names}

    def set(self, name: str, value: str) -> None:
        """Store ``value`` (a non-empty string) under ``name``, replacing any previous one."""
        self.set_many({name: value})

    def set_many(self, values: dict[str, str]) -> None:
        """Store several values at once (one file write with the fallback)."""
        for name, value in values.items():
            _check_name(name)
            if not isinstance(value, str) or not value:
                raise SecretStoreError(f"refusing to store an empty value for {name!r}")
        with self._lock:
            if not self.is_fallback:
                for name, value in values.items():
                    try:
                        self._backend.set_password(self._service, name, value)
                    except Exception as exc:
                        raise SecretStoreError(
                            f"the OS keyring could not store {name!r} ({type(exc).__name__})"
                        ) from None
                return
            data = self._load_unlocked() if self._file_exists() else self._fresh()
            data.update(values)
            self._write(data)

    def delete(self, name: str) -> None:
        """Remove ``name``; absent is fine."""
        self.delete_many([name])

    def delete_many(self, names: tuple[str, ...] | list[str]) -> None:
        for name in names:
            _check_name(name)
        with self._lock:
            if not self.is_fallback:
                import keyring.errors

                for name in names:
                    try:
                        self._backend.delete_password(self._service, name)
                    except keyring.errors.PasswordDeleteError:
                        pass
                    except Exception as exc:
                        raise SecretStoreError(
                            f"the OS keyring could not delete {name!r} ({type(exc).__name__})"
                        ) from None
                return
            if not self._file_exists():
                return
            data = self._load_unlocked()
            if not any(n in data for n in names):
                return
            for name in names:
                data.pop(name, None)
            self._write(data)

    # -- the encrypted file -----------------------------------------------------------------

    def _file_exists(self) -> bool:
        return self._path is not None and self._path.exists()

    def _ask(self, creating: bool) -> str:
        if self._passphrase_cb is None:
            raise SecretStoreError(
                "the secrets are in the encrypted fallback file and no passphrase was given "
                "(set EXPIRYTRACK_PASSPHRASE or run interactively)"
            )
        value = self._passphrase_cb(creating)
        if not value:
            raise SecretStoreError("no passphrase given: the encrypted secrets stay locked")
        return _check_new_passphrase(value) if creating else value

    def _fresh(self) -> dict[str, str]:
        """Data of a file about to be created: make sure there is a key for it."""
        if self._key is None:
            self._new_key(self._ask(creating=True))
        return {}

    def _new_key(self, passphrase: str) -> None:
        salt = _random.token_bytes(16)
        kdf = {"name": "scrypt", "n": self._scrypt_n, "r": _SCRYPT_R, "p": _SCRYPT_P}
        kdf["salt"] = _b64e(salt)
        self._kdf, self._salt = kdf, salt
        self._key = self._derive(passphrase, {"kdf": kdf})

    def _read_file(self) -> tuple[dict[str, Any], bytes]:
        assert self._path is not None
        try:
            raw = self._path.read_bytes()
        except OSError as exc:
            raise SecretStoreError(
                f"cannot read the secrets file {self._path}: {exc.strerror}"
            ) from None
        try:
            header = json.loads(raw)
            if header.get("format") != FILE_FORMAT:
                raise ValueError("format")
            if header.get("version") != FILE_VERSION:
                raise ValueError("version")
            kdf = header["kdf"]
            n = int(kdf["n"])
            if kdf.get("name") != "scrypt" or not (2 <= n <= _MAX_SCRYPT_N) or n & (n - 1):
                raise ValueError("kdf")
            _b64d(kdf["salt"])
            if not (1 <= int(kdf["r"]) <= 32 and 1 <= int(kdf["p"]) <= 16):
                raise ValueError("kdf")
            token = header["data"].encode("ascii")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SecretStoreError(
                f"the secrets file {self._path} is damaged or not an ExpiryTrack secrets file"
            ) from None
        return header, token

    def _derive(self, passphrase: str, header: dict[str, Any]) -> bytes:
        from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

        kdf = header["kdf"]
        raw = Scrypt(
            salt=_b64d(kdf["salt"]), length=32, n=int(kdf["n"]), r=int(kdf["r"]), p=int(kdf["p"])
        ).derive(passphrase.encode("utf-8"))
        return base64.urlsafe_b64encode(raw)

    def _decrypt(self, key: bytes, token: bytes) -> dict[str, str]:
        from cryptography.fernet import Fernet, InvalidToken

        try:
            plain = Fernet(key).decrypt(token)
        except InvalidToken:
            raise SecretStoreError(
                f"wrong passphrase for the encrypted secrets file {self._path} "
                "(nothing was changed; try again)"
            ) from None
        try:
            data = json.loads(plain)
            if not isinstance(data, dict):
                raise ValueError
        except ValueError:
            raise SecretStoreError(f"the secrets file {self._path} is damaged") from None
        return {str(k): str(v) for k, v in data.items()}

    def _load_unlocked(self) -> dict[str, str]:
        """Decrypt the file, asking for the passphrase when no key is cached."""
        header, token = self._read_file()
        if self._key is not None and self._kdf is not None and header["kdf"] == self._kdf:
            return self._decrypt(self._key, token)
        # Locked, or the file was re-keyed by another process: ask (again).
        key = self._derive(self._ask(creating=False), header)
        data = self._decrypt(key, token)
        self._key, self._salt, self._kdf = key, _b64d(header["kdf"]["salt"]), header["kdf"]
        return data

    def _write(self, data: dict[str, str]) -> None:
        from cryptography.fernet import Fernet

        assert self._path is not None and self._key is not None and self._kdf is not None
        token = Fernet(self._key).encrypt(json.dumps(data, sort_keys=True).encode("utf-8"))
        doc = {
            "format": FILE_FORMAT,
            "version": FILE_VERSION,
            "kdf": self._kdf,
            "data": token.decode("ascii"),
        }
        _atomic_write(self._path, (json.dumps(doc, indent=1) + "\n").encode("ascii"))


def _atomic_write(path: Path, content: bytes) -> None:
    """Replace the secrets file all at once, mode 0600 from its creation (see ``fsutil``)."""
    try:
        atomic_write_bytes(path, content, mode=0o600)
    except OSError as exc:
        raise SecretStoreError(f"cannot write the secrets file {path}: {exc.strerror}") from None


def _check_new_passphrase(passphrase: str) -> str:
    if len(passphrase) < MIN_NEW_PASSPHRASE:
        raise SecretStoreError(
            f"the new passphrase is too short (at least {MIN_NEW_PASSPHRASE} characters)"
        )
    return passphrase


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name or len(name) > 100:
        raise SecretStoreError("a secret name must be a non-empty string")


def _b64e(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)
