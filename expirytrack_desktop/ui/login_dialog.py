"""Login: the OAuth flow in the system browser (with Cancel), or a pasted access token."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.qt import Qt, QtWidgets, asyncSlot
from expirytrack_desktop.ui.widgets import BusyIndicator, MessageLabel

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

log = logging.getLogger(__name__)


class LoginDialog(QtWidgets.QDialog):
    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName("loginDialog")
        self.setWindowTitle("Log in to Upstox" + (" — DEMO" if controller.services.demo else ""))

        # browser login
        browser = QtWidgets.QWidget()
        intro = QtWidgets.QLabel(
            "Opens Upstox's login page in your browser. After you approve, Upstox sends the "
            "browser back to this app (a listener on 127.0.0.1 waits for it)."
        )
        intro.setWordWrap(True)
        self.btn_start = QtWidgets.QPushButton("&Open browser and log in")
        self.btn_start.setObjectName("startLoginButton")
        self.btn_start.clicked.connect(self.on_start)
        self.btn_cancel_login = QtWidgets.QPushButton("&Cancel login")
        self.btn_cancel_login.setObjectName("cancelLoginButton")
        self.btn_cancel_login.setEnabled(False)
        self.btn_cancel_login.clicked.connect(self.on_cancel_login)
        self.busy = BusyIndicator("Waiting for the browser…")
        self.busy.hide()
        self.url_label = QtWidgets.QLabel()
        self.url_label.setObjectName("loginUrl")
        self.url_label.setWordWrap(True)
        self.url_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextBrowserInteraction)
        self.url_label.setOpenExternalLinks(True)
        bl = QtWidgets.QVBoxLayout(browser)
        bl.addWidget(intro)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.btn_start)
        row.addWidget(self.btn_cancel_login)
        row.addStretch(1)
        bl.addLayout(row)
        bl.addWidget(self.busy)
        bl.addWidget(self.url_label)
        bl.addStretch(1)

        # pasted token
        paste = QtWidgets.QWidget()
        pintro = QtWidgets.QLabel(
            "Or paste an access token generated on Upstox's developer console. It is checked "
            "with Upstox, then stored in the secret store; it expires at 03:30 IST."
        )
        pintro.setWordWrap(True)
        self.token_edit = QtWidgets.QLineEdit()
        self.token_edit.setObjectName("tokenEdit")
        self.token_edit.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.token_edit.setPlaceholderText("access token")
        self.btn_paste = QtWidgets.QPushButton("&Use this token")
        self.btn_paste.setObjectName("useTokenButton")
        self.btn_paste.clicked.connect(self.on_paste)
        pl = QtWidgets.QVBoxLayout(paste)
        pl.addWidget(pintro)
        pl.addWidget(self.token_edit)
        pl.addWidget(self.btn_paste, 0, Qt.AlignmentFlag.AlignLeft)
        pl.addStretch(1)

        self.tabs = QtWidgets.QTabWidget()
        self.tabs.addTab(browser, "&Browser login")
        self.tabs.addTab(paste, "&Paste token")
        self.message = MessageLabel()
        self.status = QtWidgets.QLabel(controller.auth.summary())
        self.buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        self.buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(self.status)
        lay.addWidget(self.tabs)
        lay.addWidget(self.message)
        lay.addWidget(self.buttons)
        self.resize(560, 300)
        self._running = False

    def _busy(self, on: bool) -> None:
        self._running = on
        self.btn_start.setEnabled(not on)
        self.btn_paste.setEnabled(not on)
        self.btn_cancel_login.setEnabled(on)
        self.busy.setVisible(on)

    def _show_url(self, url: str) -> None:
        self.url_label.setText(
            f'If no browser opened, open this address: <a href="{url}">login page</a>'
        )

    @asyncSlot()
    async def on_start(self) -> None:
        self.message.clear_message()
        self._busy(True)
        try:
            info = await self.controller.auth.login_oauth(on_url=self._show_url)
        except Exception as exc:
            self.message.error(describe_error(exc))
            return
        finally:
            self._busy(False)
        self._done(info)

    def on_cancel_login(self) -> None:
        self.controller.auth.cancel_login()

    @asyncSlot()
    async def on_paste(self) -> None:
        self.message.clear_message()
        self._busy(True)
        self.btn_cancel_login.setEnabled(False)
        try:
            info = await self.controller.auth.paste_token(self.token_edit.text())
        except Exception as exc:
            self.message.error(describe_error(exc))
            return
        finally:
            self._busy(False)
        self.token_edit.clear()
        self._done(info)

    def _done(self, info: object) -> None:
        self.status.setText(self.controller.auth.summary())
        self.accept()

    def reject(self) -> None:
        if self._running:
            self.controller.auth.cancel_login()
        super().reject()
