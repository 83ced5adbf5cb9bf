"""What the collection and export wizards share.

Both wizards gate Next on the same rule (a page names its problem; no problem, Next is
enabled; pressing it anyway shows the problem under the fields), lay their pages out alike,
show expiries as a checkable tree grouped by underlying and remember the last choices. Kept
here once so the two wizards cannot drift apart in how they validate or label a cycle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.qt import Qt, QtWidgets
from expirytrack_desktop.ui.widgets import BusyIndicator, GatedPage, MessageLabel

if TYPE_CHECKING:
    from expirytrack_desktop.ui.controller import Controller

T = TypeVar("T")


def check_state(on: bool) -> Qt.CheckState:
    return Qt.CheckState.Checked if on else Qt.CheckState.Unchecked


def cycle_text(weekly: bool | None) -> str:
    """The cycle column: the API's weekly flag on the contracts (stored once they are fetched),
    the one classification the command line shows too; '–' until it is known."""
    if weekly is None:
        return "–"
    return "weekly" if weekly else "monthly"


def underlying_item(texts: list[str], key_role: int, key: str) -> QtWidgets.QTreeWidgetItem:
    """A top-level tree row for one underlying; its check box follows its expiries'."""
    top = QtWidgets.QTreeWidgetItem(texts)
    top.setData(0, key_role, key)
    top.setFlags(top.flags() | Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsAutoTristate)
    return top


def expiry_item(
    texts: list[str], role: int, value: Any, *, checked: bool
) -> QtWidgets.QTreeWidgetItem:
    """A checkable child row for one expiry, ``value`` stored under ``role`` in column 0."""
    child = QtWidgets.QTreeWidgetItem(texts)
    child.setData(0, role, value)
    child.setFlags(child.flags() | Qt.ItemFlag.ItemIsUserCheckable)
    child.setCheckState(0, check_state(checked))
    return child


def tree_children(
    tree: QtWidgets.QTreeWidget,
) -> Iterator[tuple[QtWidgets.QTreeWidgetItem, QtWidgets.QTreeWidgetItem]]:
    """(top-level item, child) for every second-level row, in display order."""
    for i in range(tree.topLevelItemCount()):
        top = tree.topLevelItem(i)
        if top is None:
            continue
        for j in range(top.childCount()):
            child = top.child(j)
            if child is not None:
                yield top, child


def stored_list(qs: Any, key: str) -> list[str]:
    """A list saved in QSettings; some back ends give a one-element list back as a string."""
    value = qs.value(key, [])
    if isinstance(value, str):
        value = [value]
    return list(value) if value else []


def button_row(*buttons: QtWidgets.QWidget) -> QtWidgets.QHBoxLayout:
    """Buttons on the left, the rest of the row empty."""
    row = QtWidgets.QHBoxLayout()
    for b in buttons:
        row.addWidget(b)
    row.addStretch(1)
    return row


class WizardPage(GatedPage):
    """A wizard page with a controller, a title, a message line under the fields, and Next
    gated on :meth:`problem` (override :meth:`ready` only to add a condition without words,
    such as "still loading")."""

    def __init__(self, controller: Controller, title: str, subtitle: str) -> None:
        super().__init__()
        self.controller = controller
        self.setTitle(title)
        self.setSubTitle(subtitle)
        self.message = MessageLabel()
        self._loading = False

    def is_loading(self) -> bool:
        """A :meth:`while_busy` is waiting for its answer."""
        return self._loading

    async def while_busy(self, busy: BusyIndicator, work: Awaitable[T]) -> T | None:
        """``work``'s answer, with ``busy`` shown and :meth:`is_loading` true meanwhile (a
        page's :meth:`ready` holds Next back on it); an error is said on the message line
        and gives None."""
        self._loading = True
        self.refresh_complete()
        busy.show()
        try:
            return await work
        except Exception as exc:
            self.message.error(describe_error(exc))
            return None
        finally:
            self._loading = False
            busy.hide()
            self.refresh_complete()

    def problem(self) -> str | None:
        """What keeps the user from going on, in words; None when the page is fine."""
        return None

    def ready(self) -> bool:
        return self.problem() is None

    def validatePage(self) -> bool:
        problem = self.problem()
        if problem:
            self.message.error(problem)
            return False
        return True

    def show_problem(self, *_: object) -> None:
        """After an edit: say what is wrong now (or nothing) and update Next."""
        problem = self.problem()
        if problem:
            self.message.error(problem)
        else:
            self.message.clear_message()
        self.refresh_complete()

    def stack(self, *parts: QtWidgets.QWidget | QtWidgets.QLayout, main: QtWidgets.QWidget) -> None:
        """Lay the page out top to bottom: ``parts`` with ``main`` among them taking the spare
        height, the message line last."""
        lay = QtWidgets.QVBoxLayout(self)
        for part in parts:
            if isinstance(part, QtWidgets.QLayout):
                lay.addLayout(part)
            else:
                lay.addWidget(part, 1 if part is main else 0)
        lay.addWidget(self.message)


class AppWizard(QtWidgets.QWizard):
    """Both wizards' frame: an object name (tests find it by that), a title marked DEMO in
    demo mode, and the classic style, which looks the same on every platform."""

    def __init__(
        self,
        controller: Controller,
        parent: QtWidgets.QWidget | None,
        *,
        name: str,
        title: str,
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.setObjectName(name)
        self.setWindowTitle(title + (" — DEMO" if controller.services.demo else ""))
        self.setWizardStyle(QtWidgets.QWizard.WizardStyle.ClassicStyle)

    def add_pages(self, *pages: QtWidgets.QWizardPage) -> None:
        for page in pages:
            self.addPage(page)
