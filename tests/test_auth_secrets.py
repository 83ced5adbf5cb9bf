"""SecretStore: OS keyring when a real one works, else the passphrase-encrypted file."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys

import keyring.backend
import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.null
import pytest

from expirytrack_desktop.auth.secrets import (
    ACCESS_TOKEN,
    API_KEY,
    API_SECRET,
    SERVICE,
    SecretStore,
    SecretStoreError,
    unusable_reason,
)
from expirytrack_desktop.paths import AppPaths

PASS = "correct horse battery"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.tok3n-VALUE_xyz"
SECRET = "s3cr3tValue99"


class Asker:
    """A passphrase callback that records how it was called."""

    def __init__(self, *answers: str | None) -> None:
        self.answers = list(answers)
        self.calls: list[bool] = []

    def __call__(self, creating: bool) -> str | None:
        self.calls.append(creating)
        return self.answers.pop(0) if self.answers else None


def fallback_store(path, asker, **kw) -> SecretStore:
    return SecretStore(keyring.backends.fail.Keyring(), path, asker, scrypt_n=2**12, **kw)


class PlaintextKeyring(keyring.backend.KeyringBackend):
    """Stands in for keyrings.alt.file.PlaintextKeyring (not installed here)."""

    priority = 1  # type: ignore[assignment]

    def get_password(self, service, username):  # pragma: no cover - never reached
        return None

    def set_password(self, service, username, password):  # pragma: no cover
        raise AssertionError("must never store in a plaintext keyring")

    def delete_password(self, service, username):  # pragma: no cover
        pass


class BrokenKeyring(PlaintextKeyring):
    """A backend that exists but raises on use (e.g. Secret Service without D-Bus)."""

    def get_password(self, service, username):
        raise RuntimeError("no D-Bus session")


# -- the OS keyring ------------------------------------------------------------------------


def test_keyring_backend_is_used_and_round_trips(memory_keyring, tmp_path):
    store = SecretStore(memory_keyring, tmp_path / "secrets.enc")
    assert not store.is_fallback
    assert store.fallback_reason is None
    assert "OS keyring" in store.backend_name
    assert store.get(API_KEY) is None
    store.set(API_KEY, "key-123")
    store.set_many({API_SECRET: SECRET, ACCESS_TOKEN: TOKEN})
    assert memory_keyring.store[(SERVICE, API_SECRET)] == SECRET
    assert store.get(API_SECRET) == SECRET
    assert store.get_many([API_KEY, ACCESS_TOKEN]) == {API_KEY: "key-123", ACCESS_TOKEN: TOKEN}
    store.delete(API_SECRET)
    store.delete(API_SECRET)  # absent: fine
    assert store.get(API_SECRET) is None
    assert not (tmp_path / "secrets.enc").exists()  # no file when the keyring works
    assert SECRET not in repr(store) and TOKEN not in repr(store)


def test_default_backend_is_the_installed_keyring(memory_keyring):
    store = SecretStore.for_paths(AppPaths.default())
    assert not store.is_fallback
    store.set(API_KEY, "abc-def")
    assert memory_keyring.store[(SERVICE, API_KEY)] == "abc-def"


def test_empty_value_refused(memory_keyring):
    store = SecretStore(memory_keyring)
    with pytest.raises(SecretStoreError, match="empty"):
        store.set(API_KEY, "")


def test_keyring_write_error_is_wrapped_without_the_value(tmp_path):
    class Failing(keyring.backend.KeyringBackend):
        priority = 1  # type: ignore[assignment]

        def get_password(self, service, username):
            return None

        def set_password(self, service, username, password):
            raise keyring.errors.PasswordSetError(f"cannot store {password}")

        def delete_password(self, service, username):
            pass

    store = SecretStore(Failing(), tmp_path / "s.enc")
    with pytest.raises(SecretStoreError) as info:
        store.set(API_SECRET, SECRET)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


# -- which backends count as unusable ----------------------------------------------------------


@pytest.mark.parametrize(
    "backend",
    [
        keyring.backends.fail.Keyring(),
        keyring.backends.null.Keyring(),
        PlaintextKeyring(),
        BrokenKeyring(),
    ],
    ids=["fail", "null", "plaintext", "broken"],
)
def test_unusable_backends_select_the_fallback(backend, tmp_path):
    assert unusable_reason(backend)
    store = SecretStore(backend, tmp_path / "s.enc", Asker(PASS))
    assert store.is_fallback
    assert "encrypted file" in store.backend_name and "fallback" in store.backend_name


def test_chainer_of_only_unusable_backends_is_unusable(monkeypatch, memory_keyring):
    chain = keyring.backends.chainer.ChainerBackend()
    monkeypatch.setattr(
        type(chain), "backends", [keyring.backends.fail.Keyring(), PlaintextKeyring()]
    )
    assert unusable_reason(chain)
    monkeypatch.setattr(type(chain), "backends", [keyring.backends.fail.Keyring()])
    assert unusable_reason(chain) == "no usable OS keyring (fail Keyring)"  # said once
    monkeypatch.setattr(type(chain), "backends", [])
    assert unusable_reason(chain)
    monkeypatch.setattr(type(chain), "backends", [PlaintextKeyring(), memory_keyring])
    assert unusable_reason(chain) is None


def test_fallback_without_a_path_is_an_error():
    with pytest.raises(SecretStoreError, match="no path"):
        SecretStore(keyring.backends.fail.Keyring(), None)


# -- the encrypted fallback ----------------------------------------------------------------


def test_fallback_round_trip_encrypted_0600_and_passphrase_asked_once(tmp_path):
    path = tmp_path / "cfg" / "secrets.enc"
    asker = Asker(PASS)
    store = fallback_store(path, asker)
    assert store.get(API_KEY) is None  # no file yet: nothing to unlock, nobody asked
    assert asker.calls == []
    store.set_many({API_KEY: "the-api-key", API_SECRET: SECRET, ACCESS_TOKEN: TOKEN})
    store.set(API_KEY, "the-api-key-2")
    store.delete(ACCESS_TOKEN)
    assert asker.calls == [True]  # asked once, to create
    raw = path.read_bytes()
    for value in (b"the-api-key", SECRET.encode(), TOKEN.encode()):
        assert value not in raw
        assert base64.b64encode(value) not in raw
    header = json.loads(raw)
    assert header["format"] == "expirytrack-secrets" and header["kdf"]["name"] == "scrypt"
    assert len(base64.b64decode(header["kdf"]["salt"])) == 16
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(os.listdir(path.parent)) == ["secrets.enc"]  # no temp file left behind

    again = Asker(PASS)
    reopened = fallback_store(path, again)
    assert reopened.needs_passphrase
    assert reopened.get(API_SECRET) == SECRET
    assert reopened.get(API_KEY) == "the-api-key-2"
    assert reopened.get(ACCESS_TOKEN) is None
    assert again.calls == [False]
    assert not reopened.needs_passphrase


def test_default_kdf_parameters_round_trip(tmp_path):
    path = tmp_path / "secrets.enc"
    SecretStore(keyring.backends.fail.Keyring(), path, Asker(PASS)).set(API_SECRET, SECRET)
    assert json.loads(path.read_bytes())["kdf"]["n"] == 2**15
    assert SecretStore(keyring.backends.fail.Keyring(), path, Asker(PASS)).get(API_SECRET) == SECRET


def test_salt_is_random_per_file(tmp_path):
    a, b = tmp_path / "a.enc", tmp_path / "b.enc"
    fallback_store(a, Asker(PASS)).set(API_KEY, "same")
    fallback_store(b, Asker(PASS)).set(API_KEY, "same")
    assert json.loads(a.read_bytes())["kdf"]["salt"] != json.loads(b.read_bytes())["kdf"]["salt"]


def test_wrong_passphrase_is_clear_and_leaves_the_file_untouched(tmp_path):
    path = tmp_path / "secrets.enc"
    fallback_store(path, Asker(PASS)).set_many({API_SECRET: SECRET, ACCESS_TOKEN: TOKEN})
    before = path.read_bytes()
    wrong = fallback_store(path, Asker("not the passphrase", "still wrong", "nope"))
    with pytest.raises(SecretStoreError, match="wrong passphrase") as info:
        wrong.get(API_SECRET)
    assert "not the passphrase" not in str(info.value)
    with pytest.raises(SecretStoreError, match="wrong passphrase"):
        wrong.set(API_SECRET, "overwrite-attempt")
    with pytest.raises(SecretStoreError, match="wrong passphrase"):
        wrong.delete(ACCESS_TOKEN)
    assert path.read_bytes() == before
    with pytest.raises(SecretStoreError, match="wrong passphrase"):
        wrong.unlock("bad-bad-bad")
    assert path.read_bytes() == before
    assert fallback_store(path, Asker(PASS)).get(ACCESS_TOKEN) == TOKEN


def test_unlock_up_front_then_no_prompt(tmp_path):
    path = tmp_path / "secrets.enc"
    fallback_store(path, Asker(PASS)).set(API_SECRET, SECRET)
    asker = Asker()
    store = fallback_store(path, asker)
    store.unlock(PASS)
    assert store.get(API_SECRET) == SECRET
    assert asker.calls == []
    store.lock()
    with pytest.raises(SecretStoreError, match="no passphrase given"):
        store.get(API_SECRET)


def test_unlock_for_a_new_file_sets_its_passphrase(tmp_path):
    path = tmp_path / "secrets.enc"
    store = fallback_store(path, None)
    assert not store.is_unlocked
    with pytest.raises(SecretStoreError, match="too short"):
        store.unlock("short")
    store.unlock(PASS)
    assert store.is_unlocked
    store.set(API_KEY, "k-1")
    assert fallback_store(path, Asker(PASS)).get(API_KEY) == "k-1"


def test_no_callback_and_cancel_are_clear(tmp_path):
    path = tmp_path / "secrets.enc"
    with pytest.raises(SecretStoreError, match="EXPIRYTRACK_PASSPHRASE"):
        fallback_store(path, None).set(API_KEY, "k")
    with pytest.raises(SecretStoreError, match="no passphrase given"):
        fallback_store(path, Asker(None)).set(API_KEY, "k")
    with pytest.raises(SecretStoreError, match="too short"):
        fallback_store(path, Asker("short")).set(API_KEY, "k")
    assert not path.exists()


def test_damaged_file_is_reported_not_overwritten(tmp_path):
    path = tmp_path / "secrets.enc"
    path.write_bytes(b"this is not json")
    store = fallback_store(path, Asker(PASS))
    with pytest.raises(SecretStoreError, match="damaged"):
        store.get(API_KEY)
    with pytest.raises(SecretStoreError, match="damaged"):
        store.set(API_KEY, "x")
    assert path.read_bytes() == b"this is not json"


def test_absurd_kdf_parameters_are_refused(tmp_path):
    path = tmp_path / "secrets.enc"
    fallback_store(path, Asker(PASS)).set(API_KEY, "k")
    doc = json.loads(path.read_bytes())
    doc["kdf"]["n"] = 2**30
    path.write_text(json.dumps(doc))
    with pytest.raises(SecretStoreError, match="damaged"):
        fallback_store(path, Asker(PASS)).get(API_KEY)


def test_two_stores_on_one_file_see_each_others_writes(tmp_path):
    """GUI and CLI side by side: each write re-reads the file, nothing is lost."""
    path = tmp_path / "secrets.enc"
    a = fallback_store(path, Asker(PASS))
    a.set(API_KEY, "k-1")
    b = fallback_store(path, Asker(PASS))
    b.set(API_SECRET, SECRET)
    a.set(ACCESS_TOKEN, TOKEN)
    c = fallback_store(path, Asker(PASS))
    assert c.get_many([API_KEY, API_SECRET, ACCESS_TOKEN]) == {
        API_KEY: "k-1",
        API_SECRET: SECRET,
        ACCESS_TOKEN: TOKEN,
    }


def test_repr_and_errors_never_show_secrets(tmp_path):
    path = tmp_path / "secrets.enc"
    store = fallback_store(path, Asker(PASS))
    store.set_many({API_SECRET: SECRET, ACCESS_TOKEN: TOKEN})
    text = repr(store) + store.backend_name + str(vars(store).get("fallback_reason"))
    for value in (SECRET, TOKEN, PASS):
        assert value not in text
