"""The export wizard's save dialog: where it opens and what name it suggests."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from expirytrack_desktop.ui.qt import QtWidgets


def start_folder(services: Any) -> Path:
    """The folder the save dialog opens in: the last one used while it exists, else the
    export folder of the settings, created (a missing folder made Qt open the current
    directory instead)."""
    last = services.qsettings().value("export/last_dir")
    if last and Path(last).is_dir():
        return Path(last)
    folder = Path(services.export_dir)
    with contextlib.suppress(OSError):  # unwritable: the dialog still opens, the user picks
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def save_dialog(
    parent: QtWidgets.QWidget, opts: Any, folder: Path, name: str, *, database: bool = False
) -> Any:
    """A non-modal "Save export as" dialog in ``folder`` suggesting ``name`` (the default
    file name: instrument, chosen expiry, date and time). ``database``: choose a Historify
    DuckDB file to load into (an existing one is added to, not replaced: no confirmation)."""
    dlg = QtWidgets.QFileDialog(parent, "Save export as")
    dlg.setObjectName("exportSaveDialog")
    dlg.setAcceptMode(QtWidgets.QFileDialog.AcceptMode.AcceptSave)
    dlg.setDirectory(str(folder))
    dlg.selectFile(name)
    if database:
        dlg.setWindowTitle("Load into a Historify database")
        dlg.setOption(QtWidgets.QFileDialog.Option.DontConfirmOverwrite, True)
        dlg.setDefaultSuffix("duckdb")
        dlg.setNameFilter("Historify database (*.duckdb);;All files (*)")
    elif not opts.output_is_folder:
        ext = opts.extension.lstrip(".")
        dlg.setDefaultSuffix(ext)
        dlg.setNameFilter(f"{opts.format.upper()} files (*.{ext});;All files (*)")
    return dlg
