"""Settings' "Cloud and e-mail" tab: the S3 key and endpoint, the SMTP server and password,
set in the window as ``s3 configure`` / ``notify configure`` set them (the test's in-memory
keyring; a real SMTP server on 127.0.0.1)."""

from __future__ import annotations

import logging
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import keyring
import pytest
from PySide6 import QtWidgets

from expirytrack_desktop.notify import SMTP_PASSWORD
from expirytrack_desktop.settings import Settings
from tests.smtp_helper import SmtpServer
from tests.test_ui_settings import open_window
from tests.test_ui_support import close_app

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
KEY_ID, SECRET, TOKEN = "AKIDWINDOW000042", "s3-Secret-from-the-window-77", "token-Tt-99"
SMTP_PW = "smtp-Window-Pw-5521"
SAVE = QtWidgets.QDialogButtonBox.StandardButton.Save


def stored(name: str) -> str | None:
    return keyring.get_password("ExpiryTrack", name)


def open_remote(qtbot, window):  # type: ignore[no-untyped-def]
    window.act_settings.trigger()
    dlg = window.settings_dialog
    qtbot.waitUntil(dlg.loaded.is_set, timeout=5000)
    assert "Secrets are kept" in dlg.store_label.text()
    dlg.tabs.setCurrentWidget(dlg.remote)
    return dlg, dlg.remote


def test_s3_key_and_endpoint_are_saved_kept_and_forgotten(qtbot, qloop, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    window, controller = open_window(qtbot, tmp_path)
    try:
        dlg, r = open_remote(qtbot, window)
        assert r.key_id.text() == "" and r.secret.placeholderText() == ""
        r.endpoint.setText("ftp://minio:9000")
        r.region.setText("Mumbai")
        dlg.buttons.button(SAVE).click()
        qtbot.waitUntil(
            lambda: "S3 endpoint: not an S3 endpoint" in dlg.message.text(), timeout=5000
        )
        assert "S3 region: not an S3 region: 'Mumbai'" in dlg.message.text() and dlg.isVisible()
        r.endpoint.setText("minio.lan:9000")
        r.region.setText("ap-south-1")
        r.key_id.setText(KEY_ID)
        dlg.buttons.button(SAVE).click()  # a new key without its secret
        qtbot.waitUntil(
            lambda: "enter the secret access key of" in r.s3_message.text(), timeout=5000
        )
        assert dlg.isVisible() and stored("s3_access_key_id") is None
        r.secret.setText(SECRET)
        r.token.setText(TOKEN)
        with qtbot.waitSignal(dlg.accepted, timeout=5000):
            dlg.buttons.button(SAVE).click()
        saved = Settings.load(controller.services.paths.settings_path)
        assert (saved.s3_endpoint, saved.s3_region) == ("https://minio.lan:9000", "ap-south-1")
        assert (stored("s3_access_key_id"), stored("s3_secret_access_key")) == (KEY_ID, SECRET)
        assert stored("s3_session_token") == TOKEN

        # opened again: the key id shown, the secrets only said to be stored; saved untouched
        dlg, r = open_remote(qtbot, window)
        qtbot.waitUntil(lambda: r.key_id.text() == KEY_ID, timeout=5000)
        assert r.secret.text() == "" and r.secret.placeholderText().startswith("stored")
        assert r.token.placeholderText().startswith("stored")
        with qtbot.waitSignal(dlg.accepted, timeout=5000):
            dlg.buttons.button(SAVE).click()
        assert stored("s3_secret_access_key") == SECRET and stored("s3_session_token") == TOKEN

        # a new key with its secret and no token: the old token goes (it would not fit)
        dlg, r = open_remote(qtbot, window)
        qtbot.waitUntil(lambda: r.key_id.text() == KEY_ID, timeout=5000)
        r.key_id.setText("AKIDOTHER0000001")
        r.secret.setText("other-secret-000")
        with qtbot.waitSignal(dlg.accepted, timeout=5000):
            dlg.buttons.button(SAVE).click()
        assert stored("s3_access_key_id") == "AKIDOTHER0000001"
        assert stored("s3_session_token") is None

        dlg, r = open_remote(qtbot, window)
        qtbot.waitUntil(lambda: r.key_id.text() == "AKIDOTHER0000001", timeout=5000)
        MB = QtWidgets.QMessageBox
        r.forget.click()  # asks first: Cancel keeps the key
        qtbot.waitUntil(lambda: r.forget_box is not None and r.forget_box.isVisible(),
                        timeout=5000)  # fmt: skip
        assert "Delete the S3 access key AKID…0001 and its secret" in r.forget_box.text()
        r.forget_box.button(MB.StandardButton.Cancel).click()
        qtbot.waitUntil(lambda: not r.forget_box.isVisible(), timeout=5000)
        assert stored("s3_access_key_id") == "AKIDOTHER0000001"
        r.forget.click()
        qtbot.waitUntil(lambda: r.forget_box.isVisible(), timeout=5000)
        r.forget_box.button(MB.StandardButton.Yes).click()
        qtbot.waitUntil(lambda: "S3 key deleted" in r.s3_message.text(), timeout=5000)
        assert stored("s3_access_key_id") is None and stored("s3_secret_access_key") is None
        assert r.key_id.text() == "" and r.secret.placeholderText() == ""
        dlg.reject()
        logged = caplog.text
        assert "Secrets saved: s3_access_key_id" in logged  # names only, never a value
        assert SECRET not in logged and TOKEN not in logged and "other-secret-000" not in logged
    finally:
        close_app(qtbot, qloop, window, controller)


def test_email_settings_test_message_and_password(qtbot, qloop, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    window, controller = open_window(qtbot, tmp_path)
    try:
        with SmtpServer() as server:
            dlg, r = open_remote(qtbot, window)
            r.test.click()
            qtbot.waitUntil(lambda: "Not sent: give the SMTP server first" in r.mail_message.text(),
                            timeout=5000)  # fmt: skip
            r.smtp_host.setText("127.0.0.1")
            r.security.setCurrentIndex(r.security.findData("none"))
            assert r.port.value() == 25  # the security's port, while none of the user's own
            r.port.setValue(server.port)
            r.smtp_user.setText("mailer")
            r.to.setText("me@example.com, ops@example.com")
            r.test.click()
            qtbot.waitUntil(lambda: "enter the password of the login" in r.mail_message.text(),
                            timeout=5000)  # fmt: skip
            r.smtp_password.setText(SMTP_PW)
            r.test.click()
            qtbot.waitUntil(lambda: "Test message sent to me@example.com, ops@example.com"
                            in r.mail_message.text(), timeout=10000)  # fmt: skip
            assert server.got.auth == [("mailer", SMTP_PW)]
            (msg,) = server.got.messages
            assert msg["To"] == "me@example.com, ops@example.com"
            with qtbot.waitSignal(dlg.accepted, timeout=5000):
                dlg.buttons.button(SAVE).click()
        saved = Settings.load(controller.services.paths.settings_path)
        assert (saved.smtp_host, saved.smtp_port, saved.smtp_security) == (
            "127.0.0.1",
            server.port,
            "none",
        )
        assert (saved.smtp_user, saved.notify_to) == ("mailer", "me@example.com,ops@example.com")
        assert stored(SMTP_PASSWORD) == SMTP_PW
        dlg, r = open_remote(qtbot, window)
        qtbot.waitUntil(
            lambda: r.smtp_password.placeholderText().startswith("stored"), timeout=5000
        )
        assert r.smtp_password.text() == ""
        r.smtp_host.setText("mail.example.com")  # off loopback, a login, no encryption
        dlg.buttons.button(SAVE).click()
        qtbot.waitUntil(
            lambda: "a login needs STARTTLS or SSL/TLS" in dlg.message.text(), timeout=5000
        )
        dlg.reject()
        assert SMTP_PW not in caplog.text
    finally:
        close_app(qtbot, qloop, window, controller)


def test_secret_fields_and_save_wait_for_a_slow_secret_store(qtbot, qloop, tmp_path):
    """Typed into before the stored key arrives, a field was overwritten by it (a slow
    keyring or a passphrase prompt): until the store answers, those fields and Save wait."""
    import threading

    from tests.conftest import MemoryKeyring

    class SlowKeyring(MemoryKeyring):
        def __init__(self) -> None:
            super().__init__()
            self.gate = threading.Event()

        def get_password(self, service: str, username: str) -> str | None:
            self.gate.wait(10)
            return super().get_password(service, username)

    ring = SlowKeyring()
    ring.store[("ExpiryTrack", "s3_access_key_id")] = KEY_ID
    ring.gate.set()  # the window's start reads the store freely
    window, controller = open_window(qtbot, tmp_path, ring)
    try:
        ring.gate.clear()
        window.act_settings.trigger()
        dlg = window.settings_dialog
        r = dlg.remote
        qtbot.wait(200)
        assert not dlg.loaded.is_set()
        assert not dlg.buttons.button(SAVE).isEnabled()
        assert not any(w.isEnabled() for w in (dlg.api_key, dlg.api_secret, *r.secret_edits()))
        assert r.endpoint.isEnabled()  # settings not kept in the secret store stay open
        ring.gate.set()
        qtbot.waitUntil(dlg.loaded.is_set, timeout=10000)
        assert r.key_id.text() == KEY_ID and r.key_id.isEnabled() and dlg.api_key.isEnabled()
        assert dlg.buttons.button(SAVE).isEnabled()
        dlg.reject()
    finally:
        ring.gate.set()
        close_app(qtbot, qloop, window, controller)
