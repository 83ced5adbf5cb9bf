"""Login from the window: the OAuth flow through a real loopback listener, Cancel, Logout."""

from __future__ import annotations

import asyncio
import os
import socket
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import httpx
import pytest
from PySide6 import QtCore

from tests.test_ui_support import close_app, make_window, small_simulator

Qt = QtCore.Qt
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
CLIENT_ID = "ui-test-client"
SECRET = "ui-test-secret-123"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def real_mode(qtbot, qloop, tmp_path):
    """Not demo: no token until someone logs in; credentials stored through the settings."""
    sim = small_simulator()
    redirect = f"http://127.0.0.1:{free_port()}/callback"
    sim.register_client(CLIENT_ID, SECRET, redirect)
    window, controller = make_window(tmp_path, sim, demo=False)
    browser_visits: list[str] = []

    def play_browser(url: str) -> bool:
        """The user approves in the browser: Upstox redirects it to the loopback listener."""

        async def visit() -> None:
            async with httpx.AsyncClient(transport=sim.transport()) as upstox:
                r = await upstox.get(url)
            location = r.headers["location"]
            browser_visits.append(location.split("?")[0])
            async with httpx.AsyncClient() as local:
                await local.get(location)

        threading.Thread(target=lambda: asyncio.run(visit()), daemon=True).start()
        return True

    controller.services.extra["browser_opener"] = play_browser
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    saved = controller.schedule(controller.auth.save_credentials(CLIENT_ID, SECRET, redirect))
    qtbot.waitUntil(saved.done, timeout=5000)
    assert saved.exception() is None
    yield window, controller, browser_visits, redirect
    close_app(qtbot, qloop, window, controller)


def test_login_through_the_browser_and_logout(qtbot, real_mode):
    window, controller, visits, redirect = real_mode
    assert not controller.auth.logged_in() and not window.act_logout.isEnabled()
    assert window.lbl_user.text() == "Not logged in"
    window.act_login.trigger()
    dlg = window.login_dialog
    with qtbot.waitSignal(dlg.accepted, timeout=20000):
        qtbot.mouseClick(dlg.btn_start, Qt.MouseButton.LeftButton)
    assert visits == [redirect]  # the browser came back to our listener
    assert controller.auth.logged_in() and window.act_logout.isEnabled()
    window.refresh_status()
    assert "token valid until" in window.lbl_user.text()
    window.act_logout.trigger()
    qtbot.waitUntil(lambda: not controller.auth.logged_in(), timeout=10000)
    window.refresh_status()
    assert window.lbl_user.text() == "Not logged in"


def test_login_can_be_cancelled(qtbot, real_mode):
    window, controller, _visits, _ = real_mode
    controller.services.extra["browser_opener"] = lambda url: True  # the user never comes back
    window.act_login.trigger()
    dlg = window.login_dialog

    def cancelled() -> bool:
        return "cancel" in dlg.message.text().lower() and dlg.btn_start.isEnabled()

    # Cancel at once: whatever step the login has reached (preparing, listening, preflight)
    qtbot.mouseClick(dlg.btn_start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dlg.btn_cancel_login.isEnabled, timeout=5000)
    qtbot.mouseClick(dlg.btn_cancel_login, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(cancelled, timeout=20000)
    assert not controller.auth.logged_in() and not dlg.btn_cancel_login.isEnabled()
    # Cancel while it waits for the browser (the address is shown by then)
    dlg.message.clear_message()
    dlg.url_label.clear()
    qtbot.mouseClick(dlg.btn_start, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "login page" in dlg.url_label.text(), timeout=20000)
    assert dlg.btn_cancel_login.isEnabled() and not cancelled()
    qtbot.mouseClick(dlg.btn_cancel_login, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(cancelled, timeout=20000)
    assert not controller.auth.logged_in()
    dlg.reject()


def test_a_rejected_pasted_token_says_so(qtbot, real_mode):
    window, controller, _visits, _ = real_mode
    window.act_login.trigger()
    dlg = window.login_dialog
    dlg.tabs.setCurrentIndex(1)
    dlg.token_edit.setText("not-a-valid-token-but-long-enough")
    qtbot.mouseClick(dlg.btn_paste, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "rejected" in dlg.message.text(), timeout=10000)
    assert not controller.auth.logged_in()
    dlg.reject()
