"""The stage plan editor: the ordered list of stages, and every parameter of the selected stage
in a form generated from its pydantic model."""
from __future__ import annotations

import itertools
from typing import Any

from pydantic import BaseModel
from PySide6.QtCore import QSignalBlocker, Signal
from PySide6.QtWidgets import (QComboBox, QGroupBox, QHBoxLayout, QLabel, QListWidget, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from backend.config import (STAGE_TYPES, EvaluateStage, JudgeStage, Loc, SampleStage, SelectStage,
                            TrainStage)

from .draft import Problem
from ..base import boxed
from .forms import DEFAULTS_NOTE, ModelForm

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
        self.stage_list = QListWidget(self, maximumWidth=180, currentRowChanged=self._on_selected)
        self.type_combo = QComboBox(self)
        self.type_combo.addItems([str(t) for t in STAGE_TYPES])
        cur, kind = self.stage_list.currentRow, self.type_combo.currentText
        add = QPushButton("Add", self, clicked=lambda: self.add_stage(kind()))
        remove = QPushButton("Remove", self, clicked=lambda: self.remove_stage(cur()))
        arrows = [QPushButton(text, self, fixedWidth=30, toolTip=f"Move the stage {way}",
                              clicked=lambda _=False, d=d: self.move_stage(cur(), d))
                  for text, way, d in (("▲", "up", -1), ("▼", "down", +1))]
        left, right = QWidget(self, maximumWidth=180), QWidget(self)
        boxed(QVBoxLayout, [(self.stage_list, 1), boxed(QHBoxLayout, [(self.type_combo, 1), add]),
                            boxed(QHBoxLayout, [(remove, 1), *arrows])], left, margins=0)
        self.heading = QLabel(self, objectName="SectionTitle")
        self.scroll_area = QScrollArea(self, widgetResizable=True)
        note = QLabel(DEFAULTS_NOTE, self, objectName="DefaultsNote", wordWrap=True)
        boxed(QVBoxLayout, [self.heading, (self.scroll_area, 1), note], right, margins=0)
        boxed(QHBoxLayout, [left, (right, 1)], self)

    def set_stages(self, stages: list[dict[str, Any]]) -> None:
        self.stages[:] = [dict(s) for s in stages]  # in place: the tab holds this list
        self.errors = {}
        self._refresh(select=0 if self.stages else -1)

    def problems(self) -> list[Problem]:
        return [Problem(("stages", i, k), msg) for i, errs in self.errors.items()
                for k, msg in errs.items()]

    def add_stage(self, type_: str) -> None:
        names = {s.get("name") for s in self.stages}
        i = next(i for i in itertools.count(1) if f"{type_}{i}" not in names)
        name = f"{type_}{i}" if i > 1 or type_ in names else type_
        self.stages.append({"type": type_, "name": name})
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
            self.scroll_area.ensureWidgetVisible(self.form.editors[first].widget)

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
        old = self.scroll_area.takeWidget()
        if old is not None:
            old.deleteLater()
        self.form = None
        if not 0 <= i < len(self.stages):
            self.heading.setText("No stage selected" if self.stages else
                               "The stage plan is empty: add a stage")
            return
        st = self.stages[i]
        model = STAGE_MODELS.get(st.get("type"))
        if model is None:
            self.heading.setText(f"Unknown stage type {st.get('type')!r}")
            return
        form = ModelForm(model, skip=("type",))
        with QSignalBlocker(form):
            form.set_values(st)
        form.changed.connect(self._on_form_changed)
        self.form = form
        self.scroll_area.setWidget(form)
        self.heading.setText(f"Stage {i + 1}: {st.get('type')} — every parameter")
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
