"""Export presets on the wizard's last step: save the current choices under a name, or run a
saved preset (the same file the CLI's ``--preset`` / ``--save-preset`` use). A preset keeps
the CSV columns and compression of step 4, and its S3 location when that is the output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from expirytrack_desktop.export.errors import ExportError
from expirytrack_desktop.export.presets import (
    Preset,
    load_presets,
    presets_path,
    save_preset,
)
from expirytrack_desktop.export.s3 import is_s3_url
from expirytrack_desktop.ui.dialogs import run_dialog
from expirytrack_desktop.ui.qt import QtWidgets


class PresetBar(QtWidgets.QWidget):
    """``Preset: [name ▾] [Export with preset] [Save as preset…]`` under the review."""

    def __init__(self, wizard: Any) -> None:
        super().__init__()
        self.setObjectName("exportPresetBar")
        self.wizard = wizard
        self.path: Path = presets_path(wizard.controller.services.paths.config_dir)
        self.combo = QtWidgets.QComboBox()
        self.combo.setObjectName("exportPresetCombo")
        self.btn_load = QtWidgets.QPushButton("&Load")
        self.btn_load.setToolTip("Put the preset's choices into the wizard's steps")
        self.btn_run = QtWidgets.QPushButton("Export with &preset")
        self.btn_save = QtWidgets.QPushButton("Save as pre&set…")
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QtWidgets.QLabel("Preset:"))
        row.addWidget(self.combo, 1)
        row.addWidget(self.btn_load)
        row.addWidget(self.btn_run)
        row.addWidget(self.btn_save)
        self.btn_run.clicked.connect(
            lambda: wizard.controller.schedule(self.run_selected(), name="export-preset-run")
        )
        self.btn_load.clicked.connect(self.load_selected)
        self.btn_save.clicked.connect(
            lambda: wizard.controller.schedule(self.ask_and_save(), name="export-preset-save")
        )
        self.refresh()

    def refresh(self) -> None:
        try:
            names = sorted(load_presets(self.path))
        except ExportError as exc:
            names = []
            self.wizard.review_page.message.error(str(exc))
        self.combo.clear()
        self.combo.addItems(names)
        self.btn_run.setEnabled(bool(names))
        self.btn_load.setEnabled(bool(names))

    def save(self, name: str) -> None:
        """Save the wizard's current choices as ``name`` (replacing a preset of that name),
        with step 4's S3 location as its output when one is chosen there."""
        kind, where = self.wizard.output_page.destination()
        out = where if kind == "s3" else None
        save_preset(self.path, Preset(name, self.wizard.current_options(), out))
        self.refresh()
        self.combo.setCurrentText(name)
        self.wizard.review_page.message.info(f"Saved export preset {name!r}.")

    async def ask_and_save(self) -> None:
        dlg = QtWidgets.QInputDialog(self)
        dlg.setObjectName("exportPresetName")
        dlg.setWindowTitle("Save export preset")
        dlg.setLabelText("Name for these export choices:")
        self.name_dialog = dlg
        if not await run_dialog(dlg) or not dlg.textValue().strip():
            return
        try:
            self.save(dlg.textValue().strip())
        except ExportError as exc:
            self.wizard.review_page.message.error(str(exc))

    def load_selected(self) -> None:
        """The chosen preset's choices into the steps (back at step 1, to change or export)."""
        try:
            preset = load_presets(self.path)[self.combo.currentText()]
        except (KeyError, ExportError) as exc:
            self.wizard.review_page.message.error(f"no such preset: {exc}")
            return
        self.wizard.load_choices(preset.options, preset.out)

    async def run_selected(self, out_path: Path | None = None) -> None:
        """Export with the chosen preset's options: to its own output when it names one,
        else through the save dialog."""
        try:
            preset = load_presets(self.path)[self.combo.currentText()]
        except (KeyError, ExportError) as exc:
            self.wizard.review_page.message.error(f"no such preset: {exc}")
            return
        if out_path is None and is_s3_url(preset.out):
            await self.wizard.export_s3(preset.options, str(preset.out))
            return
        if out_path is None and preset.out:
            out_path = Path(preset.out).expanduser()
        await self.wizard.choose_and_export(out_path, opts=preset.options, historify_db=False)
