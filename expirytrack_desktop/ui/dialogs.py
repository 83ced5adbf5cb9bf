"""Small dialogs: the passphrase for the encrypted secrets file, and awaiting any dialog.

Dialogs are opened with ``open()`` and awaited through a future, never ``exec()`` inside a
coroutine (a nested blocking loop there can hang qasync).
"""

from __future__ import annotations

import asyncio

from expirytrack_desktop.auth.secrets import MIN_NEW_PASSPHRASE
from expirytrack_desktop.ui.qt import QtWidgets
from expirytrack_desktop.ui.widgets import MessageLabel


async def run_dialog(dialog: QtWidgets.QDialog) -> int:
    """``dialog.open()`` and wait for its result without a nested event loop."""
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def done(result: int) -> None:
        if not fut.done():
            fut.set_result(result)

    dialog.finished.connect(done)
    dialog.open()
    try:
        return await fut
    finally:
        dialog.finished.disconnect(done)


class PassphraseDialog(QtWidgets.QDialog):
    """Asks for the passphrase of the encrypted secrets file (twice when creating it)."""

    def __init__(
        self, creating: bool, reason: str = "", parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.creating = creating
        self.setObjectName("passphraseDialog")
        self.setWindowTitle("Secrets passphrase")
        why = (reason[:1].upper() + reason[1:]) if reason else "No usable OS keyring was found"
        intro = QtWidgets.QLabel(
            (
                why + ", so ExpiryTrack keeps your API secret and token in a file encrypted "
                "with a passphrase. "
            )
            + (
                "Choose a passphrase (at least 8 characters). It cannot be recovered: if you "
                "forget it, enter your credentials again."
                if creating
                else "Enter the passphrase to unlock it."
            )
        )
        intro.setWordWrap(True)
        self.edit = QtWidgets.QLineEdit()
        self.edit.setObjectName("passphraseEdit")
        self.edit.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.repeat = QtWidgets.QLineEdit()
        self.repeat.setObjectName("passphraseRepeat")
        self.repeat.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
        self.message = MessageLabel()
        form = QtWidgets.QFormLayout()
        form.addRow("&Passphrase:", self.edit)
        if creating:
            form.addRow("&Repeat:", self.repeat)
        else:
            self.repeat.hide()
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(intro)
        lay.addLayout(form)
        lay.addWidget(self.message)
        lay.addWidget(buttons)
        self.resize(460, self.sizeHint().height())

    def passphrase(self) -> str:
        return self.edit.text()

    def _accept(self) -> None:
        text = self.edit.text()
        if not text:
            self.message.error("The passphrase is empty.")
            return
        if self.creating:
            if len(text) < MIN_NEW_PASSPHRASE:
                self.message.error(f"Use at least {MIN_NEW_PASSPHRASE} characters.")
                return
            if text != self.repeat.text():
                self.message.error("The two passphrases differ.")
                return
        self.accept()
