"""verify's findings of what the Data quality page picked, as a tree: underlying → expiry →
contract → finding, each finding with its fix. A node's :meth:`FindingsTree.findings_at` are
the findings under it, so "Collect missing" acts on one finding, a contract or a whole expiry.
"""

from __future__ import annotations

from collections import Counter
from itertools import groupby

from expirytrack_desktop.store.findings import ScopedFinding, ScopedReport
from expirytrack_desktop.store.verify import ERROR, INCOMPLETE
from expirytrack_desktop.ui.qt import Qt, QtGui, QtWidgets

COLUMNS = ("Where / finding", "Kind", "Detail", "Fix")
FINDINGS_ROLE = Qt.ItemDataRole.UserRole  # the ScopedFindings under a node
CONTRACT_ROLE = Qt.ItemDataRole.UserRole + 1  # a contract node's (or finding's) contract id
SEVERITY_WORDS = {ERROR: "✖ error", INCOMPLETE: "◐ incomplete"}


def count_text(findings: list[ScopedFinding]) -> str:
    """``3 findings: 1 error, 2 incomplete`` (notes counted as such)."""
    kinds = Counter(f.severity for f in findings)
    parts = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    return f"{len(findings)} finding{'s' if len(findings) != 1 else ''}: {parts}"


class FindingsTree(QtWidgets.QTreeWidget):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("findingsTree")
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(COLUMNS)
        self.setUniformRowHeights(True)
        self.setAlternatingRowColors(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self.report: ScopedReport | None = None
        self.bad = QtGui.QBrush(QtGui.QColor(220, 50, 50, 70))
        self.warn = QtGui.QBrush(QtGui.QColor(230, 170, 20, 70))
        self.itemExpanded.connect(lambda _item: self.fit_columns())

    def fit_columns(self) -> None:
        """Fit the columns but the last (the fix) to what is shown (opening a node adds)."""
        for col in range(len(COLUMNS) - 1):
            self.resizeColumnToContents(col)

    def set_report(self, report: ScopedReport | None) -> None:
        """Show ``report`` (None: nothing checked yet); expiries with findings open, the
        contracts closed (drill down by opening them)."""
        self.clear()
        self.report = report
        if report is None or not report.findings:
            return
        found = report.findings
        top = self._node(None, found[0].symbol, found, "")
        for expiry, by_expiry in groupby(found, key=lambda f: f.expiry):
            in_expiry = list(by_expiry)
            exp_node = self._node(top, expiry.isoformat(), in_expiry, "")
            for cid, by_contract in groupby(in_expiry, key=lambda f: f.contract_id):
                items = list(by_contract)
                parent = exp_node
                if cid is not None:
                    parent = self._node(exp_node, items[0].contract, items, "")
                    parent.setData(0, CONTRACT_ROLE, cid)
                for f in items:
                    self._leaf(parent, f)
            exp_node.setExpanded(True)
        top.setExpanded(True)
        self.fit_columns()

    def _node(
        self,
        parent: QtWidgets.QTreeWidgetItem | None,
        title: str,
        findings: list[ScopedFinding],
        fix: str,
    ) -> QtWidgets.QTreeWidgetItem:
        item = QtWidgets.QTreeWidgetItem([title, "", count_text(findings), fix])
        item.setData(0, FINDINGS_ROLE, findings)
        if parent is None:
            self.addTopLevelItem(item)
        else:
            parent.addChild(item)
        return item

    def _leaf(self, parent: QtWidgets.QTreeWidgetItem, f: ScopedFinding) -> None:
        word = SEVERITY_WORDS.get(f.severity, "○ note")
        item = QtWidgets.QTreeWidgetItem(parent, [f.title, word, f.detail, f.fix])
        item.setData(0, FINDINGS_ROLE, [f])
        item.setData(0, CONTRACT_ROLE, f.contract_id)
        item.setToolTip(3, f.fix)
        item.setToolTip(2, f.detail)
        brush = {ERROR: self.bad, INCOMPLETE: self.warn}.get(f.severity)
        if brush is not None:
            item.setBackground(1, brush)

    def findings_at(self, item: QtWidgets.QTreeWidgetItem | None) -> list[ScopedFinding]:
        if item is None:
            return []
        return list(item.data(0, FINDINGS_ROLE) or [])

    def contract_at(self, item: QtWidgets.QTreeWidgetItem | None) -> int | None:
        value = None if item is None else item.data(0, CONTRACT_ROLE)
        return int(value) if value is not None else None

    def find_item(self, *path: str) -> QtWidgets.QTreeWidgetItem | None:
        """The node reached by titles from the top (tests, and re-selecting after a reload)."""
        items = [self.topLevelItem(i) for i in range(self.topLevelItemCount())]
        node = None
        for title in path:
            node = next((i for i in items if i is not None and i.text(0) == title), None)
            if node is None:
                return None
            items = [node.child(j) for j in range(node.childCount())]
        return node
