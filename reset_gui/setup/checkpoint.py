"""The base checkpoint box: embedded model, a local folder, a hub id or an earlier run's
checkpoint, and the rest of ModelSpec as a generated form."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import QComboBox, QGroupBox, QHBoxLayout, QLineEdit, QVBoxLayout

from backend.config import Loc, ModelSpec

from ..base import boxed, browse_button, fill_combo
from .draft import HUB_ID
from .forms import ModelForm, flag_widget

EMBEDDED_LABEL = "embedded (SmolLM2-135M-Instruct)"


class CheckpointEditor(QGroupBox):
    edited = Signal()

    def __init__(self, parent=None):
        super().__init__("Base checkpoint", parent)
        # no wider than its longest item needs: the box shares a narrow scroll area with Compute
        self.combo = fill_combo(QComboBox(
            self, minimumContentsLength=18,
            sizeAdjustPolicy=QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon),
            [(EMBEDDED_LABEL, "embedded"), ("local folder…", "local"), ("hub id", "hub")])
        self.combo.currentIndexChanged.connect(self._on_mode)
        self.edit = QLineEdit(self, textChanged=lambda _: self.edited.emit())
        self.browse = browse_button(self.edit, "Choose a model folder",
                                    toolTip="Choose a local model folder")
        self.form = ModelForm(ModelSpec, skip=("base",), parent=self)
        self.form.changed.connect(self.edited)
        boxed(QVBoxLayout, [self.combo, boxed(QHBoxLayout, [(self.edit, 1), self.browse]),
                            self.form], self)

    def mode(self) -> str:
        """"embedded", "local", "hub", or the ``run:<id>:<tag>`` reference itself."""
        return str(self.combo.currentData())

    def set_values(self, model: dict[str, Any]) -> None:
        self.set_base(str(model.get("base", "embedded")))
        self.form.set_values(model)

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        model, errors = self.form.values()
        return {**model, "base": self.base_ref()}, errors

    def set_base(self, ref: str) -> None:
        ref = ref.strip()
        with QSignalBlocker(self.combo):
            if ref == "embedded":
                self.combo.setCurrentIndex(0)
            elif ref.startswith("run:"):
                if self.combo.findData(ref) < 0:
                    self.combo.addItem(ref, ref)
                self.combo.setCurrentIndex(self.combo.findData(ref))
            elif HUB_ID.match(ref) and not Path(ref).expanduser().exists():
                self.combo.setCurrentIndex(2)
            else:
                self.combo.setCurrentIndex(1)
        with QSignalBlocker(self.edit):
            self.edit.setText(ref)
        self._sync()
        self.edited.emit()

    def base_ref(self) -> str:
        mode = self.mode()
        return self.edit.text().strip() if mode in ("local", "hub") else mode

    def add_checkpoints(self, rows: list[dict[str, Any]]) -> None:
        """Checkpoints of earlier runs become base choices ``run:<id>:<tag>``."""
        for r in rows:
            ref = f"run:{r['run_id']}:{r['tag']}"
            if self.combo.findData(ref) < 0:
                with QSignalBlocker(self.combo):
                    self.combo.addItem(ref, ref)
                    self.combo.setItemData(self.combo.count() - 1,
                                           f"{r.get('kind', '')} checkpoint: {r.get('path', '')}",
                                           Qt.ItemDataRole.ToolTipRole)

    def mark(self, bad: list[Loc]) -> None:
        flag_widget(self.edit, ("base",) in {loc[:1] for loc in bad})
        self.form.mark({str(loc[0]) for loc in bad if loc})

    def _on_mode(self, _=None) -> None:
        mode = self.mode()
        with QSignalBlocker(self.edit):
            if mode == "embedded" or mode.startswith("run:"):
                self.edit.setText(mode)
            elif self.edit.text() == "embedded" or self.edit.text().startswith("run:"):
                self.edit.clear()
        self._sync()
        if mode == "local" and not self.edit.text() and self.isVisible():
            self.browse.click()
        self.edited.emit()

    def _sync(self) -> None:
        mode = self.mode()
        editable = mode in ("local", "hub")
        self.edit.setReadOnly(not editable)
        self.edit.setEnabled(editable)
        self.browse.setVisible(mode == "local")
        self.edit.setPlaceholderText({"local": "/path/to/model folder",
                                      "hub": "org/name (used offline from the HF cache)"}
                                     .get(mode, ""))
