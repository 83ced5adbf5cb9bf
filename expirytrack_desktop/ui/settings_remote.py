"""Settings' second tab: exports to S3 and the e-mail after scheduled runs.

What ``expirytrack s3 configure`` and ``expirytrack notify configure`` store, set in the
window: the endpoint, region and SMTP server go to the settings file; the S3 secret access
key, session token and SMTP password only to the secret store (never shown: a stored one is
kept while its field is left empty).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.auth.credentials import mask
from expirytrack_desktop.export.errors import InvalidOptionsError
from expirytrack_desktop.export.s3 import (
    SECRET_NAMES,
    check_endpoint,
    check_region,
    check_s3_credentials,
    stale_s3_names,
)
from expirytrack_desktop.notify import SMTP_PASSWORD, NotifyError, SmtpConfig, compose_test, send
from expirytrack_desktop.settings import Settings
from expirytrack_desktop.ui.dialogs import run_dialog
from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.qt import QtWidgets, asyncSlot
from expirytrack_desktop.ui.widgets import MessageLabel

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

log = logging.getLogger(__name__)
KEY_ID, SECRET, TOKEN = SECRET_NAMES
STORED = "stored (leave empty to keep it)"
SECURITY = (("STARTTLS", "starttls"), ("SSL/TLS", "ssl"), ("None (loopback only)", "none"))
PORTS = {"ssl": 465, "starttls": 587, "none": 25}


def _edit(
    name: str, text: str = "", hint: str = "", *, password: bool = False
) -> QtWidgets.QLineEdit:
    """A line edit named for tests and style sheets, with its placeholder (and hidden text)."""
    edit = QtWidgets.QLineEdit(text)
    edit.setObjectName(name)
    edit.setPlaceholderText(hint)
    if password:
        edit.setEchoMode(QtWidgets.QLineEdit.EchoMode.Password)
    return edit


class RemoteSettings(QtWidgets.QWidget):
    """The "Cloud and e-mail" tab: :meth:`errors`, then :meth:`save_secrets`, then
    :meth:`apply` (the dialog's Save)."""

    def __init__(self, controller: Controller, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        s = controller.services.settings
        self._stored: dict[str, str | None] = {}
        self.forget_box: QtWidgets.QMessageBox | None = None  # the question Forget asks

        s3_box = QtWidgets.QGroupBox("Exports to S3-compatible storage")
        self.endpoint = _edit(
            "s3EndpointEdit", s.s3_endpoint, "AWS (or https://host:port of MinIO, R2, …)"
        )
        self.region = _edit("s3RegionEdit", s.s3_region, "the AWS environment's, else us-east-1")
        self.key_id = _edit(
            "s3KeyIdEdit", hint="none stored: the AWS environment or profile applies"
        )
        self.secret = _edit("s3SecretEdit", password=True)
        self.token = _edit("s3TokenEdit", hint="only for temporary credentials", password=True)
        self.forget = QtWidgets.QPushButton("&Forget the S3 key")
        self.forget.setObjectName("s3ForgetButton")
        self.forget.clicked.connect(self.on_forget)
        self.s3_message = MessageLabel()
        f = QtWidgets.QFormLayout(s3_box)
        f.addRow("E&ndpoint:", self.endpoint)
        f.addRow("Re&gion:", self.region)
        f.addRow("Access key &ID:", self.key_id)
        f.addRow("Secret &access key:", self.secret)
        f.addRow("Session &token:", self.token)
        f.addRow("", self.forget)
        f.addRow(self.s3_message)

        mail_box = QtWidgets.QGroupBox("E-mail after scheduled runs")
        self.smtp_host = _edit("smtpHostEdit", s.smtp_host, "none: no e-mail")
        self.security = QtWidgets.QComboBox()
        self.security.setObjectName("smtpSecurityCombo")
        for label, value in SECURITY:
            self.security.addItem(label, value)
        self.security.setCurrentIndex(max(0, self.security.findData(s.smtp_security)))
        self.port = QtWidgets.QSpinBox()
        self.port.setObjectName("smtpPortSpin")
        self.port.setRange(1, 65535)
        self.port.setValue(s.smtp_port)
        self.security.currentIndexChanged.connect(self._default_port)
        self.smtp_user = _edit("smtpUserEdit", s.smtp_user, "none: no login")
        self.smtp_password = _edit("smtpPasswordEdit", password=True)
        self.mail_from = _edit("smtpFromEdit", s.smtp_from, "the login")
        self.to = _edit("notifyToEdit", s.notify_to, "a@example.com, b@example.com")
        self.test = QtWidgets.QPushButton("Send a test &message")
        self.test.setObjectName("smtpTestButton")
        self.test.clicked.connect(self.on_test)
        self.mail_message = MessageLabel()
        server = QtWidgets.QHBoxLayout()
        server.addWidget(self.smtp_host, 1)
        server.addWidget(self.security)
        server.addWidget(self.port)
        m = QtWidgets.QFormLayout(mail_box)
        server_label = QtWidgets.QLabel("SMTP &server:")  # a row of a layout has no buddy
        server_label.setBuddy(self.smtp_host)
        m.addRow(server_label, server)
        m.addRow("&Login:", self.smtp_user)
        m.addRow("&Password:", self.smtp_password)
        m.addRow("F&rom:", self.mail_from)
        m.addRow("Send t&o:", self.to)
        m.addRow("", self.test)
        m.addRow(self.mail_message)

        lay = QtWidgets.QVBoxLayout(self)
        lay.addWidget(s3_box)
        lay.addWidget(mail_box)
        lay.addStretch(1)
        if controller.services.demo:  # the demo keeps no secrets of the user's
            for w in self.secret_edits():
                w.setEnabled(False)
            self.s3_message.info("Demo mode: secrets are set in the app started without --demo.")

    def secret_edits(self) -> tuple[QtWidgets.QWidget, ...]:
        """The fields (and the button) that show or change what the secret store holds."""
        return (self.key_id, self.secret, self.token, self.forget, self.smtp_password)

    def _default_port(self) -> None:
        if self.port.value() in PORTS.values():  # a port of the user's own stays
            self.port.setValue(PORTS[str(self.security.currentData())])

    # --- loading ---------------------------------------------------------------------------
    async def load_secrets(self) -> None:
        """Show the stored S3 key id and which secrets are stored (never their values)."""
        try:
            got = await self.controller.auth.read_secrets((KEY_ID, SECRET, TOKEN, SMTP_PASSWORD))
        except Exception as exc:
            self.s3_message.error(describe_error(exc))
            return
        self._stored = got
        self.key_id.setText(got.get(KEY_ID) or "")
        if got.get(SECRET):
            self.secret.setPlaceholderText(STORED)
        if got.get(TOKEN):
            self.token.setPlaceholderText(STORED)
        if got.get(SMTP_PASSWORD):
            self.smtp_password.setPlaceholderText(STORED)

    # --- saving ----------------------------------------------------------------------------
    def smtp_config(self) -> SmtpConfig:
        settings = replace(Settings(), **self._mail_fields())
        return SmtpConfig.from_settings(settings)

    def _mail_fields(self) -> dict[str, Any]:
        to = ",".join(a.strip() for a in self.to.text().split(",") if a.strip())
        return {
            "smtp_host": self.smtp_host.text().strip(),
            "smtp_port": self.port.value(),
            "smtp_security": str(self.security.currentData()),
            "smtp_user": self.smtp_user.text().strip(),
            "smtp_from": self.mail_from.text().strip(),
            "notify_to": to,
        }

    def errors(self) -> list[str]:
        """What cannot be saved, each a sentence naming the field."""
        out = []
        for check, edit, what in (
            (check_endpoint, self.endpoint, "S3 endpoint"),
            (check_region, self.region, "S3 region"),
        ):
            try:
                check(edit.text())
            except InvalidOptionsError as exc:
                out.append(f"{what}: {exc}.")
        cfg = self.smtp_config()
        if cfg.host and not (cfg.sender or cfg.user):
            out.append("E-mail: give a From address (or a login).")
        if cfg.host and cfg.user and cfg.security == "none" and not cfg.is_loopback():
            out.append("E-mail: a login needs STARTTLS or SSL/TLS (the password is not sent bare).")
        return out

    def _s3_entries(self) -> dict[str, str] | None:
        """The S3 key to store, None when unchanged; InvalidOptionsError on bad input."""
        key_id, secret = self.key_id.text().strip(), self.secret.text()
        token = self.token.text()
        stored_id = self._stored.get(KEY_ID) or ""
        if not key_id:
            if secret or token:
                raise InvalidOptionsError("the S3 access key ID is one word, not empty")
            return None  # nothing typed (to remove a stored key: Forget)
        if not secret:
            if key_id != stored_id or not self._stored.get(SECRET):
                raise InvalidOptionsError(f"enter the secret access key of {key_id}")
            if not token:
                return None  # the stored key as it is
            secret = self._stored[SECRET] or ""
        return check_s3_credentials(key_id, secret, token or None)

    async def save_secrets(self) -> bool:
        """Store what was typed; False (with the reason shown) when nothing could be."""
        if self.controller.services.demo:
            return True
        try:
            entries = self._s3_entries()
        except InvalidOptionsError as exc:
            self.s3_message.error(f"S3: {exc}.")
            return False
        delete = stale_s3_names(entries) if entries is not None else ()
        new = dict(entries or {})
        if self.smtp_password.text():
            new[SMTP_PASSWORD] = self.smtp_password.text()
        if not new:
            return True
        try:
            await self.controller.auth.write_secrets(new, delete)
        except Exception as exc:
            self.s3_message.error(describe_error(exc))
            return False
        return True

    def apply(self, settings: Settings) -> None:
        settings.s3_endpoint = check_endpoint(self.endpoint.text())
        settings.s3_region = check_region(self.region.text())
        for name, value in self._mail_fields().items():
            setattr(settings, name, value)

    # --- buttons ---------------------------------------------------------------------------
    @asyncSlot()
    async def on_forget(self) -> None:
        MB = QtWidgets.QMessageBox
        key = self._stored.get(KEY_ID) or self.key_id.text().strip()
        box = MB(MB.Icon.Question, "Forget the S3 key",
                 f"Delete the S3 access key {mask(key)} and its secret from the secret"
                 " store? Exports to s3:// then use the AWS environment or profile.",
                 MB.StandardButton.Yes | MB.StandardButton.Cancel, self)  # fmt: skip
        box.setDefaultButton(MB.StandardButton.Cancel)
        self.forget_box = box
        await run_dialog(box)
        if box.clickedButton() is not box.button(MB.StandardButton.Yes):
            return
        try:
            await self.controller.auth.write_secrets({}, (KEY_ID, SECRET, TOKEN))
        except Exception as exc:
            self.s3_message.error(describe_error(exc))
            return
        self._stored.update({KEY_ID: None, SECRET: None, TOKEN: None})
        for edit in (self.key_id, self.secret, self.token):
            edit.clear()
        self.secret.setPlaceholderText("")
        self.token.setPlaceholderText("only for temporary credentials")
        self.s3_message.info("S3 key deleted: exports to s3:// use the AWS environment or profile.")

    @asyncSlot()
    async def on_test(self) -> None:
        """Send a test message with the fields as they are (the typed password, else the
        stored one), in a worker thread: the window stays responsive."""
        cfg = self.smtp_config()
        problem = None if cfg.host else "give the SMTP server first"
        problem = problem or (None if cfg.to else "give an address to send to")
        problem = problem or (None if cfg.sender or cfg.user else "give a From address")
        if problem:
            self.mail_message.error(f"Not sent: {problem}.")
            return
        password = self.smtp_password.text() or self._stored.get(SMTP_PASSWORD) or None
        if cfg.user and password is None:
            self.mail_message.error("Not sent: enter the password of the login (none is stored).")
            return
        from expirytrack_desktop.schedule import hooks

        ssl_context = hooks.current().ssl_context
        msg = compose_test(cfg, cfg.to)
        self.test.setEnabled(False)
        self.mail_message.info(f"Sending to {', '.join(cfg.to)}…")
        try:
            await self.controller.tasks.run_blocking(
                lambda: send(msg, cfg, password, ssl_context=ssl_context)
            )
        except NotifyError as exc:
            self.mail_message.error(f"Not sent: {exc}")
        except Exception as exc:
            self.mail_message.error(f"Not sent: {describe_error(exc)}")
        else:
            self.mail_message.info(f"Test message sent to {', '.join(cfg.to)} via {cfg.host}.")
        finally:
            self.test.setEnabled(True)
