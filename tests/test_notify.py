"""E-mail notifications: ``notify configure/test`` against a real SMTP server on 127.0.0.1,
the password only in the secret store and only on the wire inside AUTH (over TLS when the
server is not on loopback)."""

from __future__ import annotations

import io
import json

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.notify import SMTP_PASSWORD, NotifyError, SmtpConfig, compose_test, send
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.schedule import hooks
from tests.smtp_helper import SmtpServer, self_signed

PASSWORD = "smtp-Pa55word-7781"


def configure(monkeypatch, port: int, security: str = "none", user: str = "mailer") -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    return main(
        [
            "notify", "configure", "--host", "127.0.0.1", "--port", str(port),
            "--security", security, "--user", user, "--from", "et@example.com",
            "--to", "me@example.com,ops@example.com", "--password-stdin",
        ]
    )  # fmt: skip


def test_configure_keeps_the_password_in_the_secret_store_only(monkeypatch, memory_keyring, capsys):
    assert configure(monkeypatch, 2525) == exitcodes.OK
    out = capsys.readouterr().out
    assert "127.0.0.1:2525 (none)" in out and "stored in OS keyring" in out
    settings = AppPaths.default().settings_path
    data = json.loads(settings.read_text())
    assert data["smtp_host"] == "127.0.0.1" and data["smtp_user"] == "mailer"
    assert data["notify_to"] == "me@example.com,ops@example.com"
    assert PASSWORD not in settings.read_text()
    assert memory_keyring.get_password("ExpiryTrack", SMTP_PASSWORD) == PASSWORD
    assert PASSWORD not in out


def test_notify_test_sends_with_login(monkeypatch, capsys):
    with SmtpServer() as server:
        assert configure(monkeypatch, server.port) == exitcodes.OK
        assert main(["notify", "test"]) == exitcodes.OK
    assert "Test message sent to me@example.com, ops@example.com" in capsys.readouterr().out
    assert server.got.auth == [("mailer", PASSWORD)]
    (msg,) = server.got.messages
    assert msg["Subject"] == "[ExpiryTrack] test message"
    assert msg["From"] == "et@example.com"
    assert server.got.envelopes[0][1] == ["me@example.com", "ops@example.com"]
    assert "127.0.0.1:" in msg.get_content()
    assert PASSWORD.encode() not in server.got.raw[0]


def test_notify_test_over_starttls(monkeypatch, tmp_path, capsys):
    server_ctx, client_ctx = self_signed(tmp_path)
    with SmtpServer(tls_context=server_ctx) as server, hooks.override(ssl_context=client_ctx):
        assert configure(monkeypatch, server.port, "starttls") == exitcodes.OK
        assert main(["notify", "test", "--to", "x@example.com"]) == exitcodes.OK
    assert server.got.tls == [True]
    assert server.got.auth == [("mailer", PASSWORD)]
    assert server.got.envelopes[0][1] == ["x@example.com"]


def test_implicit_ssl(tmp_path):
    server_ctx, client_ctx = self_signed(tmp_path)
    with SmtpServer(tls_context=server_ctx, implicit_tls=True) as server:
        cfg = SmtpConfig("127.0.0.1", server.port, "ssl", "", "et@example.com", ("a@example.com",))
        send(compose_test(cfg, cfg.to), cfg, None, ssl_context=client_ctx)
    assert server.got.tls == [True] and server.got.auth == []


def test_untrusted_certificate_is_refused(tmp_path):
    server_ctx, _ = self_signed(tmp_path)
    with SmtpServer(tls_context=server_ctx) as server:
        cfg = SmtpConfig("127.0.0.1", server.port, "starttls", "", "et@example.com", ("a@x.io",))
        with pytest.raises(NotifyError, match="cannot reach the SMTP server"):
            send(compose_test(cfg, cfg.to), cfg, None)  # system trust store: self-signed fails
    assert server.got.messages == []


def test_password_is_never_sent_unencrypted_off_loopback():
    cfg = SmtpConfig("smtp.example.invalid", 25, "none", "mailer", "et@example.com", ("a@x.io",))
    with pytest.raises(NotifyError, match="refusing to send the SMTP password unencrypted") as e:
        send(compose_test(cfg, cfg.to), cfg, PASSWORD)
    assert PASSWORD not in str(e.value)


def test_missing_password_and_missing_server(monkeypatch, capsys):
    assert main(["notify", "test", "--to", "a@example.com"]) == exitcodes.BAD_INPUT
    assert "no SMTP server configured" in capsys.readouterr().err
    cfg = SmtpConfig("127.0.0.1", 2525, "none", "mailer", "et@example.com", ("a@x.io",))
    with pytest.raises(NotifyError, match="no SMTP password stored"):
        send(compose_test(cfg, cfg.to), cfg, None)
