"""Settings: credentials (through the secret store), folders, rate limits, defaults; the
second tab (S3, e-mail) is :mod:`.settings_remote`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.qt import QtWidgets, asyncSlot
from expirytrack_desktop.ui.settings_remote import RemoteSettings
from expirytrack_desktop.ui.widgets import MessageLabel
from expirytrack_desktop.upstox.limiter import RateLimitSpec
from expirytrack_desktop.upstox.models import INTERVALS

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

log = logging.getLogger(__name__)


class PathField(QtWidgets.QWidget):
    """A line edit with a Browse… button (non-blocking file dialog)."""

    def __init__(self, placeholder: str, folder: bool, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.folder = folder
        self.edit = QtWidgets.QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.setClearButtonEnabled(True)
        btn = QtWidgets.QPushButton("Browse…")
        btn.clicked.connect(self._browse)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.edit, 1)
        lay.addWidget(btn)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        self.edit.setText(text)

    def _browse(self) -> None:
        dlg = QtWidgets.QFileDialog(self, "Choose a folder" if self.folder else "Database file")
        if self.folder:
            dlg.setFileMode(QtWidgets.QFileDialog.FileMode.Directory)
            dlg.setOption(QtWidgets.QFileDialog.Option.ShowDirsOnly, True)
        else:
            dlg.setFileMode(QtWidgets.QFileDialog.FileMode.AnyFile)
            dlg.setNameFilter("SQLite database (*.sqlite3 *.sqlite *.db);;All files (*)")
        start = self.text() or self.edit.placeholderText()
        if start:
            p = Path(start)
            dlg.setDirectory(str(p if p.is_dir() else p.parent))
        dlg.fileSelected.connect(self.setText)
        dlg.open()
        self._dialog = dlg


class SettingsDialog(QtWidgets.QDialog):
    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        services = controller.services
        s = services.settings
        self.setObjectName("settingsDialog")
        self.setWindowTitle("Settings" + (" — DEMO" if services.demo else ""))

        # credentials
        cred_box = QtWidgets.QGroupBox("Upstox credentials")
        self.api_key = QtWidgets.QLineEdit()
        self.api_key.setObjectName("apiKeyEdit")
        self.api_secret = QtWidgets.QLineEdit()
        self.api_secret.setObjectName("apiSecretEdit")
        self.api_secret.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.api_secret.setPlaceholderText("unchanged")
        self.redirect_uri = QtWidgets.QLineEdit(s.redirect_uri)
        self.redirect_uri.setObjectName("redirectUriEdit")
        self.store_label = QtWidgets.QLabel()
        self.store_label.setObjectName("secretStoreLabel")
        self.store_label.setWordWrap(True)
        self.cred_message = MessageLabel()
        cf = QtWidgets.QFormLayout(cred_box)
        cf.addRow("API &key:", self.api_key)
        cf.addRow("API s&ecret:", self.api_secret)
        cf.addRow("&Redirect URI:", self.redirect_uri)
        cf.addRow(self.store_label)
        cf.addRow(self.cred_message)
        if services.demo:
            for w in (self.api_key, self.api_secret, self.redirect_uri):
                w.setEnabled(False)
            self.store_label.setText("Demo mode: the simulated market needs no credentials.")

        # storage
        st_box = QtWidgets.QGroupBox("Storage")
        self.db_path = PathField(str(services.db_path), folder=False)
        if services.demo:  # the demo has its own database; this setting is the real one
            self.db_path.edit.setPlaceholderText(
                f"{services.paths.db_path} (demo uses {services.db_path.name})"
            )
        self.db_path.setObjectName("dbPathField")
        self.db_path.setText(s.db_path)
        self.export_dir = PathField(str(services.paths.export_dir), folder=True)
        self.export_dir.setText(s.export_dir)
        # the automatic clean-up after each export (export/cleanup.auto_clean)
        self.keep_days = QtWidgets.QSpinBox()
        self.keep_days.setObjectName("keepDaysSpin")
        self.keep_days.setRange(0, 36500)
        self.keep_days.setSpecialValueText("keep them all")
        self.keep_days.setSuffix(" days")
        self.keep_days.setValue(round(s.export_keep_days))
        self.keep_mb = QtWidgets.QSpinBox()
        self.keep_mb.setObjectName("keepMbSpin")
        self.keep_mb.setRange(0, 10**9)
        self.keep_mb.setSpecialValueText("no limit")
        self.keep_mb.setSuffix(" MB")
        self.keep_mb.setValue(round(s.export_keep_mb))
        tip = (
            "After each export, exports this app wrote (and nobody changed since) are removed"
            " when older than this, then the oldest until the rest fit the size; never the one"
            " just written"
        )
        self.keep_days.setToolTip(tip)
        self.keep_mb.setToolTip(tip)
        sf = QtWidgets.QFormLayout(st_box)
        sf.addRow("&Database file:", self.db_path)
        sf.addRow("E&xport folder:", self.export_dir)
        sf.addRow("Remove exports &older than:", self.keep_days)
        sf.addRow("Keep exports &within:", self.keep_mb)
        note = QtWidgets.QLabel("A new database location is used after a restart.")
        note.setWordWrap(True)
        sf.addRow(note)

        # limits and defaults
        lim_box = QtWidgets.QGroupBox("Rate limits and defaults")
        self.rate_limit = QtWidgets.QLineEdit(s.rate_limit)
        self.rate_limit.setObjectName("rateLimitEdit")
        self.rate_limit.setToolTip(
            "requests/seconds, comma-separated: Upstox allows 50/1,500/60,2000/1800 "
            "(50 per second · 500 per minute · 2,000 per 30 minutes)"
        )
        self.interval = QtWidgets.QComboBox()
        for iv in INTERVALS:
            self.interval.addItem(iv, iv)
        self.interval.setCurrentIndex(max(0, self.interval.findData(s.default_interval)))
        self.months = QtWidgets.QSpinBox()
        self.months.setRange(1, 12)
        self.months.setValue(s.history_months)
        self.months.setSuffix(" month(s)")
        self.concurrency = QtWidgets.QSpinBox()
        self.concurrency.setRange(1, 64)
        self.concurrency.setValue(s.concurrency)
        self.api_base = QtWidgets.QLineEdit(s.api_base)
        lf = QtWidgets.QFormLayout(lim_box)
        lf.addRow("Rate &limits:", self.rate_limit)
        lf.addRow("Default &interval:", self.interval)
        lf.addRow("Default &history:", self.months)
        lf.addRow("Default &concurrency:", self.concurrency)
        lf.addRow("API &base URL:", self.api_base)

        self.message = MessageLabel()
        self.buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Save
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.on_save)
        self.buttons.rejected.connect(self.reject)
        general = QtWidgets.QWidget()
        gl = QtWidgets.QVBoxLayout(general)
        gl.addWidget(cred_box)
        gl.addWidget(st_box)
        gl.addWidget(lim_box)
        self.remote = RemoteSettings(controller)
        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setObjectName("settingsTabs")
        self.tabs.addTab(general, "General")
        self.tabs.addTab(self.remote, "Cloud and e-mail")
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.tabs)
        lay.addWidget(self.message)
        lay.addWidget(self.buttons)
        self.resize(640, self.sizeHint().height())
        self._had_secret = False
        self.loaded = asyncio.Event()  # the stored secrets shown: typing and Save are safe
        if services.demo:
            self.loaded.set()
        else:
            self._set_loading(True)
            controller.schedule(self._load_credentials(), name="settings-load")

    def _set_loading(self, loading: bool) -> None:
        """Until the stored secrets are read, what a user types into their fields would be
        overwritten when they arrive, and a Save could not tell a new S3 key from the stored
        one: those fields and Save wait (a keyring or passphrase prompt can take a while)."""
        for w in (self.api_key, self.api_secret, *self.remote.secret_edits()):
            w.setEnabled(not loading)
        self.buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Save).setEnabled(not loading)

    async def _load_credentials(self) -> None:
        try:
            await self._show_stored()
        finally:
            self.loaded.set()
            with contextlib.suppress(RuntimeError):  # the dialog closed meanwhile
                self._set_loading(False)

    async def _show_stored(self) -> None:
        self.store_label.setText(self.controller.auth.secret_store_description())
        try:
            creds = await self.controller.auth.load_credentials()
        except Exception as exc:
            self.cred_message.error(describe_error(exc))
            return
        await self.remote.load_secrets()
        if creds is not None:
            self.api_key.setText(creds.api_key)
            self.redirect_uri.setText(creds.redirect_uri)
            self._had_secret = True
            self.api_secret.setPlaceholderText("stored (leave empty to keep it)")
        else:
            self.api_secret.setPlaceholderText("")

    def errors(self) -> list[str]:
        out = []
        try:
            RateLimitSpec.parse(self.rate_limit.text())
        except ValueError as exc:
            out.append(f"Rate limits: {exc}")
        base = self.api_base.text().strip()
        if not base.startswith(("http://", "https://")):
            out.append("API base URL must start with http:// or https://")
        return out + self.remote.errors()

    @asyncSlot()
    async def on_save(self) -> None:
        errs = self.errors()
        if errs:
            self.message.error(" ".join(errs))
            return
        self.message.clear_message()
        c = self.controller
        if not c.services.demo:
            key = self.api_key.text().strip()
            secret = self.api_secret.text().strip()
            redirect = self.redirect_uri.text().strip()
            if key or secret:
                try:
                    await c.auth.save_credentials(key, secret or None, redirect)
                except Exception as exc:
                    self.cred_message.error(describe_error(exc))
                    return
            self.cred_message.clear_message()
        if not await self.remote.save_secrets():
            self.tabs.setCurrentWidget(self.remote)
            return
        s = c.services.settings
        self.remote.apply(s)
        s.rate_limit = self.rate_limit.text().strip()
        s.db_path = self.db_path.text()
        s.export_dir = self.export_dir.text()
        s.export_keep_days = float(self.keep_days.value())
        s.export_keep_mb = float(self.keep_mb.value())
        s.default_interval = str(self.interval.currentData())
        s.history_months = self.months.value()
        s.concurrency = self.concurrency.value()
        s.api_base = self.api_base.text().strip()
        s.redirect_uri = self.redirect_uri.text().strip() or s.redirect_uri
        try:
            c.services.save_settings()
        except OSError as exc:
            self.message.error(f"Could not save settings: {exc}")
            return
        c.usage.apply_settings()
        self.accept()
