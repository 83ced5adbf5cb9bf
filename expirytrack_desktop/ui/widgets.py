"""Small reusable widgets: a progress-bar delegate, a busy indicator, a message label."""

from __future__ import annotations

from expirytrack_desktop.ui.models import ProgressRole
from expirytrack_desktop.ui.qt import Qt, QtCore, QtGui, QtWidgets


class ProgressBarDelegate(QtWidgets.QStyledItemDelegate):
    """Paints a native progress bar with the cell's text (style- and palette-aware)."""

    def paint(
        self,
        painter: QtGui.QPainter,
        option: QtWidgets.QStyleOptionViewItem,
        index: QtCore.QModelIndex | QtCore.QPersistentModelIndex,
    ) -> None:
        value = index.data(ProgressRole)
        if value is None:
            super().paint(painter, option, index)
            return
        if option.state & QtWidgets.QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        bar = QtWidgets.QStyleOptionProgressBar()
        bar.rect = option.rect.adjusted(2, 2, -2, -2)
        bar.minimum = 0
        bar.maximum = 100
        bar.progress = int(value)
        bar.text = str(index.data(Qt.ItemDataRole.DisplayRole) or f"{value}%")
        bar.textVisible = True
        bar.textAlignment = Qt.AlignmentFlag.AlignCenter
        bar.state = (
            QtWidgets.QStyle.StateFlag.State_Enabled | QtWidgets.QStyle.StateFlag.State_Horizontal
        )
        bar.palette = option.palette
        bar.fontMetrics = option.fontMetrics
        style = option.widget.style() if option.widget else QtWidgets.QApplication.style()
        style.drawControl(
            QtWidgets.QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget
        )

    def sizeHint(
        self,
        option: QtWidgets.QStyleOptionViewItem,
        index: QtCore.QModelIndex | QtCore.QPersistentModelIndex,
    ) -> QtCore.QSize:
        size = super().sizeHint(option, index)
        return QtCore.QSize(max(size.width(), 140), size.height())


class BusyIndicator(QtWidgets.QWidget):
    """An indeterminate progress bar with a caption; shown while something loads."""

    def __init__(self, text: str = "Loading…", parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        lay = QtWidgets.QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 0)
        self.bar.setMaximumWidth(160)
        self.bar.setTextVisible(False)
        self.label = QtWidgets.QLabel(text)
        lay.addWidget(self.bar)
        lay.addWidget(self.label, 1)

    def set_text(self, text: str) -> None:
        self.label.setText(text)


class MessageLabel(QtWidgets.QLabel):
    """Where a page says what is wrong (or what it is doing); bold text, an icon-like prefix."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setObjectName("messageLabel")
        self.hide()

    def error(self, text: str) -> None:
        self._show("⚠ " + text, bold=True)

    def info(self, text: str) -> None:
        self._show(text, bold=False)

    def clear_message(self) -> None:
        self.setText("")
        self.hide()

    def _show(self, text: str, bold: bool) -> None:
        font = self.font()
        font.setBold(bold)
        self.setFont(font)
        self.setText(text)
        self.show()


def rows_table(model: QtCore.QAbstractItemModel, name: str) -> QtWidgets.QTableView:
    """A table of whole rows, one selectable at a time; Tab leaves it (arrows move inside)."""
    table = QtWidgets.QTableView()
    table.setObjectName(name)
    table.setModel(model)
    table.setTabKeyNavigation(False)
    table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
    table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
    table.verticalHeader().hide()
    table.horizontalHeader().setStretchLastSection(True)
    return table


def share_width(table: QtWidgets.QTableView, *columns: int) -> None:
    """Let these columns (long text: what a row runs, how it went) share the spare width
    instead of the last one taking it all and the others eliding their text."""
    header = table.horizontalHeader()
    for col in columns:
        header.setSectionResizeMode(col, QtWidgets.QHeaderView.ResizeMode.Stretch)


def form_dialog_layout(
    dialog: QtWidgets.QDialog, form: QtWidgets.QFormLayout, error_name: str
) -> QtWidgets.QLabel:
    """Lay out an edit dialog as the app's dialogs are: the form, a red line for what is
    wrong with it (returned; empty until accept() finds a problem), Save and Cancel."""
    error = QtWidgets.QLabel("")
    error.setObjectName(error_name)
    error.setWordWrap(True)
    error.setStyleSheet("color: #c0392b")
    buttons = QtWidgets.QDialogButtonBox(
        QtWidgets.QDialogButtonBox.StandardButton.Save
        | QtWidgets.QDialogButtonBox.StandardButton.Cancel
    )
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    lay = QtWidgets.QVBoxLayout(dialog)
    lay.addLayout(form)
    lay.addWidget(error)
    lay.addWidget(buttons)
    return error


def hline() -> QtWidgets.QFrame:
    line = QtWidgets.QFrame()
    line.setFrameShape(QtWidgets.QFrame.Shape.HLine)
    line.setFrameShadow(QtWidgets.QFrame.Shadow.Sunken)
    return line


class GatedPage(QtWidgets.QWizardPage):
    """A wizard page whose Next/Finish button follows :meth:`ready`, without overriding
    ``isComplete``.

    Why: with PySide6 6.12 a Python override of ``QWizardPage.isComplete`` loses one
    reference to ``True``/``False`` per call from Qt (measured: -1 per completeChanged), which
    crashes the interpreter after a few hundred button updates. pyproject.toml now excludes
    6.12, but this costs nothing and keeps the pages safe on such a release: a hidden mandatory
    field is registered and filled when the page is ready; Qt's own isComplete checks it.
    """

    _serial = 0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        GatedPage._serial += 1
        self._gate = QtWidgets.QLineEdit(self)
        self._gate.hide()
        self.registerField(f"gate{GatedPage._serial}*", self._gate)

    def ready(self) -> bool:
        return True

    def initializePage(self) -> None:
        # Qt takes a field's "initial value" when the page is added, so evaluate only now.
        super().initializePage()
        self.refresh_complete()

    def refresh_complete(self) -> None:
        """Re-evaluate :meth:`ready`; Qt updates the buttons through the field's signal."""
        want = "1" if self.ready() else ""
        if self._gate.text() != want:
            self._gate.setText(want)
