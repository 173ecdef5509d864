"""The stage plan editor: the ordered list of stages, and every parameter of the selected stage
in a form generated from its pydantic model."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import (QComboBox, QGroupBox, QHBoxLayout, QLabel, QListWidget, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from backend.config import (STAGE_TYPES, EvaluateStage, JudgeStage, Loc, SampleStage, SelectStage,
                            TrainStage)

from .draft import Problem
from .forms import ModelForm
from .judges import DEFAULTS_NOTE

STAGE_MODELS: dict[str, type[BaseModel]] = {
    "train": TrainStage, "sample": SampleStage, "judge": JudgeStage, "select": SelectStage,
    "evaluate": EvaluateStage,
}


class StagePlanEditor(QGroupBox):
    edited = Signal()

    def __init__(self, parent=None):
        super().__init__("Stage plan", parent)
        self.stages: list[dict[str, Any]] = []
        self.errors: dict[int, dict[str, str]] = {}  # {stage: {field: why its text did not parse}}
        self.form: ModelForm | None = None
        self._cur = -1
        self._bad: list[Loc] = []
        self.stage_list = QListWidget(self)
        self.stage_list.setMaximumWidth(180)
        self.stage_list.currentRowChanged.connect(self._on_selected)
        self.type_combo = QComboBox(self)
        for t in STAGE_TYPES:
            self.type_combo.addItem(str(t), str(t))

        def button(text: str, slot, tip: str = "") -> QPushButton:
            b = QPushButton(text, self)
            b.clicked.connect(slot)
            b.setToolTip(tip)
            return b

        up = button("▲", lambda: self.move_stage(self.stage_list.currentRow(), -1), "Move the stage up")
        down = button("▼", lambda: self.move_stage(self.stage_list.currentRow(), +1),
                      "Move the stage down")
        for b in (up, down):
            b.setFixedWidth(30)
        row1 = QHBoxLayout()
        row1.addWidget(self.type_combo, 1)
        row1.addWidget(button("Add", lambda: self.add_stage(self.type_combo.currentData())))
        row2 = QHBoxLayout()
        row2.addWidget(button("Remove", lambda: self.remove_stage(self.stage_list.currentRow())), 1)
        row2.addWidget(up)
        row2.addWidget(down)
        leftw = QWidget(self)
        lv = QVBoxLayout(leftw)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.stage_list, 1)
        lv.addLayout(row1)
        lv.addLayout(row2)
        leftw.setMaximumWidth(180)
        self.title = QLabel(self)
        self.title.setObjectName("SectionTitle")
        note = QLabel(DEFAULTS_NOTE, self)
        note.setObjectName("DefaultsNote")
        note.setWordWrap(True)
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        rightw = QWidget(self)
        rv = QVBoxLayout(rightw)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.title)
        rv.addWidget(self.scroll, 1)
        rv.addWidget(note)
        lay = QHBoxLayout(self)
        lay.addWidget(leftw)
        lay.addWidget(rightw, 1)

    def set_stages(self, stages: list[dict[str, Any]]) -> None:
        self.stages = [dict(s) for s in stages]
        self.errors = {}
        self._refresh(select=0 if self.stages else -1)

    def problems(self) -> list[Problem]:
        return [Problem(("stages", i, k), msg) for i, errs in self.errors.items()
                for k, msg in errs.items()]

    def add_stage(self, type_: str) -> None:
        names = {s.get("name") for s in self.stages}
        i = 1
        while f"{type_}{i}" in names:
            i += 1
        self.stages.append({"type": type_, "name": f"{type_}{i}" if i > 1 or type_ in names else type_})
        self._refresh(select=len(self.stages) - 1)
        self.edited.emit()

    def remove_stage(self, i: int) -> None:
        if 0 <= i < len(self.stages):
            del self.stages[i]
            self.errors = {}
            self._refresh(select=min(i, len(self.stages) - 1))
            self.edited.emit()

    def move_stage(self, i: int, delta: int) -> None:
        j = i + delta
        if 0 <= i < len(self.stages) and 0 <= j < len(self.stages):
            self.stages[i], self.stages[j] = self.stages[j], self.stages[i]
            self.errors = {}
            self._refresh(select=j)
            self.edited.emit()

    def select_stage(self, i: int) -> None:
        self.stage_list.setCurrentRow(i)

    def set_stage_field(self, i: int, field: str, value: Any) -> None:
        """Set one stage parameter through its editor (as a user would)."""
        self.select_stage(i)
        assert self.form is not None
        self.form.editors[field].set(value)
        self._on_form_changed()

    def mark(self, bad: list[Loc]) -> None:
        """Mark the selected stage's bad fields and scroll the first one into view."""
        self._bad = bad
        if self.form is None:
            return
        fields = {loc[1] for loc in bad if len(loc) > 1 and loc[0] == self._cur}
        self.form.mark(fields)
        first = next((n for n in self.form.editors if n in fields), None)
        if first is not None:
            self.scroll.ensureWidgetVisible(self.form.editors[first].widget)

    def _label(self, i: int) -> str:
        st = self.stages[i]
        return f"{i + 1}. {st.get('name') or str(st.get('type')) + str(i)}  ({st.get('type')})"

    def _refresh(self, select: int) -> None:
        with QSignalBlocker(self.stage_list):
            self.stage_list.clear()
            self.stage_list.addItems([self._label(i) for i in range(len(self.stages))])
        cur = min(select, len(self.stages) - 1)
        self._cur = -2  # force a rebuild of the form
        self.stage_list.setCurrentRow(cur)
        if cur < 0:
            self._on_selected(-1)

    def _on_selected(self, i: int) -> None:
        if i == self._cur:
            return
        self._cur = i
        old = self.scroll.takeWidget()
        if old is not None:
            old.deleteLater()
        self.form = None
        if not 0 <= i < len(self.stages):
            self.title.setText("No stage selected" if self.stages else
                               "The stage plan is empty: add a stage")
            return
        st = self.stages[i]
        model = STAGE_MODELS.get(st.get("type"))
        if model is None:
            self.title.setText(f"Unknown stage type {st.get('type')!r}")
            return
        form = ModelForm(model, skip=("type",), columns=1)
        with QSignalBlocker(form):
            form.set_values(st)
        form.changed.connect(self._on_form_changed)
        self.form = form
        self.scroll.setWidget(form)
        self.title.setText(f"Stage {i + 1}: {st.get('type')} — every parameter")
        self.mark(self._bad)

    def _on_form_changed(self) -> None:
        i = self._cur
        if self.form is None or not 0 <= i < len(self.stages):
            return
        values, errors = self.form.values()
        old = self.stages[i]
        new = {"type": old.get("type"), **values}
        for k in errors:  # keep the last good value of a field being typed
            if k in old:
                new[k] = old[k]
        self.stages[i] = new
        self.errors[i] = errors
        if (item := self.stage_list.item(i)) is not None:
            item.setText(self._label(i))
        self.edited.emit()
