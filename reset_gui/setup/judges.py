"""The judges box: category weights, the faithfulness judge and its NLI model, the task and
instruction judges, and an optional OpenAI-compatible LLM judge."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFileDialog, QFormLayout, QGroupBox,
                               QHBoxLayout, QLabel, QLineEdit, QPushButton)

from backend.config import CATEGORIES, JudgeSpec, Loc

from .forms import flag_widget

FAITH_JUDGES = ["auto", "faith_summac", "faith_minilm", "faith_lexical"]
DEFAULTS_NOTE = ("Defaults are ReSet Studio defaults, not values from the paper "
                 "(it does not publish them).")
WEIGHT_LABELS = {"task": "task weight", "faithfulness": "faithfulness weight",
                 "instruction_following": "instruction weight"}


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


class JudgesEditor(QGroupBox):
    edited = Signal()

    def __init__(self, parent=None):
        super().__init__("Judges && weights", parent)
        form = QFormLayout(self)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.extras: dict[str, Any] = {}  # endpoint settings without an editor, kept as loaded
        self.weight_spins: dict[str, QDoubleSpinBox] = {}
        for cat in map(str, CATEGORIES):
            sp = QDoubleSpinBox(self)
            sp.setRange(0.0, 100.0)
            sp.setDecimals(2)
            sp.setSingleStep(0.05)
            sp.valueChanged.connect(self.edited)
            sp.setToolTip(f"judges.weights.{cat}: weight of the {cat.replace('_', ' ')} score in "
                          "the combined score (ReSet Studio default; the paper does not publish it)")
            self.weight_spins[cat] = sp
            form.addRow(WEIGHT_LABELS[cat], sp)
        self.faith_combo = QComboBox(self)
        for name in FAITH_JUDGES:
            self.faith_combo.addItem(name, name)
        self.faith_combo.setToolTip("auto: SummaC-ZS when an NLI model is on disk, else the MiniLM "
                                    "sentence judge, else lexical support")
        self.faith_combo.currentIndexChanged.connect(self.edited)
        form.addRow("faithfulness judge", self.faith_combo)

        def line(label: str, placeholder: str = "") -> QLineEdit:
            edit = QLineEdit(self)
            edit.setPlaceholderText(placeholder)
            edit.textChanged.connect(self.edited)
            if label:
                form.addRow(label, edit)
            return edit

        self.nli_edit = line("", "local NLI model folder (optional)")
        nli_btn = QPushButton("…", self)
        nli_btn.setFixedWidth(28)
        nli_btn.clicked.connect(self._choose_nli_folder)
        nli_row = QHBoxLayout()
        nli_row.addWidget(self.nli_edit, 1)
        nli_row.addWidget(nli_btn)
        form.addRow("NLI model", nli_row)
        self.task_edit = line("task judges")
        self.if_edit = line("instruction judges")
        self.llm_url_edit = line("LLM judge URL", "OpenAI-compatible base URL (optional)")
        self.llm_model_edit = line("LLM judge model")
        note = QLabel(DEFAULTS_NOTE, self)
        note.setObjectName("DefaultsNote")
        note.setWordWrap(True)
        form.addRow(note)

    def set_values(self, j: dict[str, Any]) -> None:
        merged = {**JudgeSpec().model_dump(mode="json"), **j}
        weights = merged.get("weights") or {}
        for cat, sp in self.weight_spins.items():
            sp.setValue(float(weights.get(cat, 0.0)))
        if self.faith_combo.findData(merged.get("faithfulness", "auto")) < 0:
            self.faith_combo.addItem(str(merged["faithfulness"]), merged["faithfulness"])
        self.faith_combo.setCurrentIndex(self.faith_combo.findData(merged.get("faithfulness", "auto")))
        self.nli_edit.setText(merged.get("nli_model") or "")
        self.task_edit.setText(", ".join(merged.get("task") or []))
        self.if_edit.setText(", ".join(merged.get("instruction_following") or []))
        ep = merged.get("llm_endpoint") or {}
        self.llm_url_edit.setText(ep.get("base_url", ""))
        self.llm_model_edit.setText(ep.get("model", ""))
        self.extras = {k: v for k, v in ep.items() if k not in ("base_url", "model")}

    def values(self) -> dict[str, Any]:
        judges: dict[str, Any] = {
            "task": _names(self.task_edit.text()),
            "faithfulness": self.faith_combo.currentData(),
            "instruction_following": _names(self.if_edit.text()),
            "weights": {cat: sp.value() for cat, sp in self.weight_spins.items()},
        }
        if self.nli_edit.text().strip():
            judges["nli_model"] = self.nli_edit.text().strip()
        if self.llm_url_edit.text().strip():
            judges["llm_endpoint"] = {"base_url": self.llm_url_edit.text().strip(),
                                      "model": self.llm_model_edit.text().strip(), **self.extras}
        return judges

    def mark(self, bad: list[Loc]) -> None:
        fields = {loc[0] for loc in bad if loc}
        for sp in self.weight_spins.values():
            flag_widget(sp, "weights" in fields)
        flag_widget(self.nli_edit, "nli_model" in fields)
        flag_widget(self.task_edit, "task" in fields)
        flag_widget(self.if_edit, "instruction_following" in fields)
        flag_widget(self.llm_url_edit, "llm_endpoint" in fields)

    def _choose_nli_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a local NLI model folder")
        if path:
            self.nli_edit.setText(path)
