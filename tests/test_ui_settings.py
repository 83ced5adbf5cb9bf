"""Settings: validation, saving, credentials through the secret store (keyring or the
passphrase-encrypted fallback, with its dialog)."""

from __future__ import annotations

import os
import re

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import pytest
from PySide6 import QtCore, QtWidgets

from expirytrack_desktop.auth.credentials import load_credentials
from expirytrack_desktop.settings import Settings
from tests.test_ui_support import TEST_RATE, close_app, make_window, small_simulator

Qt = QtCore.Qt
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
KEY = "a1b2c3d4-e5f6-4711-9abc-def012345678"
SECRET = "s3cr3tValue42"


def open_window(qtbot, tmp_path, keyring_backend=None):
    window, controller = make_window(tmp_path, small_simulator(), demo=False)
    if keyring_backend is not None:
        from expirytrack_desktop.ui.runtime_adapter import build_runtime

        paths = controller.services.paths

        def factory():  # type: ignore[no-untyped-def]
            return build_runtime(
                db_path=controller.services.db_path,
                api_base="http://sandbox.local",
                rate_limit=TEST_RATE,
                ledger_path=None,
                secrets_fallback=paths.secrets_fallback_path,
                demo=False,
                concurrency=2,
                keyring_backend=keyring_backend,
            )

        controller.host.runtime_factory = factory
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    return window, controller


def test_settings_validate_and_save(qtbot, qloop, tmp_path):
    window, controller = open_window(qtbot, tmp_path)
    # Started without a --rate-limit flag: the saved settings decide the limiter (a flag wins).
    controller.services.options.rate_limit = None
    try:
        assert controller.runtime.limiter.spec.windows == ((2000, 1.0),)  # TEST_RATE, at start
        window.act_settings.trigger()
        dlg = window.settings_dialog
        qtbot.waitUntil(dlg.loaded.is_set, timeout=5000)
        dlg.rate_limit.setText("50/1,oops")
        dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Save).click()
        qtbot.waitUntil(lambda: "Rate limits" in dlg.message.text(), timeout=5000)
        assert dlg.isVisible()
        dlg.rate_limit.setText("40/1,400/60,1800/1800")
        dlg.months.setValue(2)
        assert dlg.keep_days.text() == "keep them all" and dlg.keep_mb.text() == "no limit"
        dlg.keep_days.setValue(30)
        dlg.keep_mb.setValue(5000)
        dlg.api_key.setText(KEY)
        dlg.api_secret.setText(SECRET)
        with qtbot.waitSignal(dlg.accepted, timeout=5000):
            dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Save).click()
        saved = Settings.load(controller.services.paths.settings_path)
        assert saved.rate_limit == "40/1,400/60,1800/1800" and saved.history_months == 2
        assert (saved.export_keep_days, saved.export_keep_mb) == (30.0, 5000.0)
        creds = load_credentials(controller.runtime.secrets)
        assert creds is not None and creds.api_key == KEY and creds.api_secret == SECRET
        # Applied at once: one new limiter for the shared client, shown in the status bar.
        limiter = controller.runtime.limiter
        assert limiter.spec.windows == ((40, 1.0), (400, 60.0), (1800, 1800.0))
        assert controller.runtime.client.limiter is limiter
        qtbot.waitUntil(lambda: "/40 per 1s" in window.lbl_rate.text(), timeout=5000)
        assert re.fullmatch(
            r"API budget: [\d,]+/40 per 1s, [\d,]+/400 per 1min, [\d,]+/1,800 per 30min",
            window.lbl_rate.text(),
        )
    finally:
        close_app(qtbot, qloop, window, controller)


def test_encrypted_fallback_is_shown_and_asks_a_passphrase(qtbot, qloop, tmp_path):
    import keyring.backends.fail

    window, controller = open_window(qtbot, tmp_path, keyring.backends.fail.Keyring())
    try:
        assert controller.runtime.secrets.is_fallback
        window.act_settings.trigger()
        dlg = window.settings_dialog
        qtbot.waitUntil(dlg.loaded.is_set, timeout=5000)
        assert "fallback" in dlg.store_label.text().lower()
        assert controller.auth.passphrase_dialog is None  # nothing stored yet: nothing to unlock
        dlg.api_key.setText(KEY)
        dlg.api_secret.setText(SECRET)
        dlg.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Save).click()
        # saving creates the encrypted file: a new passphrase, asked twice
        qtbot.waitUntil(lambda: controller.auth.passphrase_dialog is not None, timeout=5000)
        pdlg = controller.auth.passphrase_dialog
        qtbot.waitUntil(pdlg.isVisible, timeout=5000)
        pdlg.edit.setText("short")
        pdlg.repeat.setText("short")
        pdlg._accept()
        assert "at least 8" in pdlg.message.text() and pdlg.isVisible()
        pdlg.edit.setText("correct horse battery")
        pdlg.repeat.setText("correct horse battery")
        with qtbot.waitSignal(dlg.accepted, timeout=10000):
            pdlg._accept()
        enc = controller.services.paths.secrets_fallback_path
        assert enc.exists()
        raw = enc.read_bytes()
        assert SECRET.encode() not in raw and KEY.encode() not in raw
        assert load_credentials(controller.runtime.secrets).api_secret == SECRET
    finally:
        close_app(qtbot, qloop, window, controller)
