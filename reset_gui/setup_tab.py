"""Setup tab: build a run config (base checkpoint, data mixture, stage plan, judges), validate it
on every edit, save/load it as TOML and launch it.

Every stage parameter is editable: the stage form is generated from the pydantic model's fields
(spin boxes for numbers, check boxes for booleans, combos for Literals, text for the rest), so a
new field in backend.config shows up here without GUI changes.
"""
from __future__ import annotations

import copy
import json
import math
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal

import threading

import annotated_types
import tomli_w
from pydantic import BaseModel
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QDoubleSpinBox,
                               QFileDialog, QFormLayout, QGridLayout, QGroupBox, QHBoxLayout,
                               QHeaderView, QLabel, QLineEdit, QListWidget, QListWidgetItem,
                               QMessageBox, QPlainTextEdit, QPushButton, QScrollArea, QSizePolicy,
                               QSpinBox, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from backend import config as config_mod
from backend.config import (STAGE_TYPES, ConfigError, DatasetSpec, EvaluateStage, JudgeStage,
                            ModelSpec, RunConfig, SampleStage, SelectStage, TrainStage)
from backend.paths import PRESETS, REPO_ROOT

from .poller import Background
from .style import ERROR_RED

STAGE_MODELS: dict[str, type[BaseModel]] = {
    "train": TrainStage, "sample": SampleStage, "judge": JudgeStage, "select": SelectStage,
    "evaluate": EvaluateStage,
}
DEFAULT_PRESET = "reset_demo"
EMBEDDED_LABEL = "embedded (SmolLM2-135M-Instruct)"
DATA_FORMATS = ["auto", "records", "alpaca", "sharegpt", "squad", "cnn_dailymail", "xsum",
                "ifeval", "custom"]
KIND_CHOICES = ["(from format)", "instruction", "qa_extractive", "qa_abstractive", "summarization"]
MIX_COLUMNS = ("Name", "Source", "Format", "Kind", "Columns", "Weight", "Budget", "Eval source")
MC = {name.split(" ")[0]: i for i, name in enumerate(MIX_COLUMNS)}  # Name, Source, ..., Eval
FAITH_JUDGES = ["auto", "faith_summac", "faith_minilm", "faith_lexical"]
LEFT_WIDTH = 292
BAD_FILL = "#fbdada"
DEFAULTS_NOTE = ("Defaults are ReSet Studio defaults, not values from the paper "
                 "(it does not publish them).")
_PREVIEW_LOCK = threading.Lock()
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")


# ============================================================================================
# Field editors generated from pydantic fields
# ============================================================================================
def _unwrap_optional(ann: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(ann)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(ann)) == 2:
            return args[0], True
    return ann, False


def _bounds(field) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in field.metadata:
        for attr in ("ge", "gt", "le", "lt"):
            v = getattr(m, attr, None)
            if v is not None and isinstance(m, getattr(annotated_types, attr.capitalize())):
                out[attr] = float(v)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def field_default(field) -> Any:
    return _jsonable(field.get_default(call_default_factory=True))


class SciSpinBox(QDoubleSpinBox):
    """A float spin box that shows 0.0003 as 0.0003 (or 3e-05), not 0.00."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDecimals(12)

    def textFromValue(self, value: float) -> str:  # noqa: N802
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text, pos):
        from PySide6.QtGui import QValidator
        t = text.strip()
        if t in ("", "-", ".", "-.") or t.lower().endswith(("e", "e-", "e+")):
            return QValidator.State.Intermediate, text, pos
        try:
            float(t)
        except ValueError:
            return QValidator.State.Invalid, text, pos
        return QValidator.State.Acceptable, text, pos


class FieldEditor:
    """One widget for one pydantic field; ``get()`` returns the value or raises ValueError."""

    def __init__(self, name: str, field, on_change: Callable[[], None], parent=None):
        self.name = name
        self.field = field
        self.default = field_default(field)
        ann, self.optional = _unwrap_optional(field.annotation)
        self.ann = ann
        origin = typing.get_origin(ann)
        args = typing.get_args(ann)
        b = _bounds(field)
        if ann is bool:
            self.kind = "bool"
            w = QCheckBox(parent)
            w.toggled.connect(lambda _: on_change())
        elif ann is int:
            self.kind = "int"
            w = QSpinBox(parent)
            lo = int(b.get("ge", b.get("gt", -10**9)))
            hi = int(min(b.get("le", b.get("lt", 2**31 - 2)), 2**31 - 2))
            if self.optional:
                lo -= 1
                w.setSpecialValueText("— none —")
            w.setRange(lo, hi)
            w.valueChanged.connect(lambda _: on_change())
        elif ann is float:
            self.kind = "float"
            w = SciSpinBox(parent)
            # allow the open boundary itself, so the validator (not the widget) explains why not
            w.setRange(b.get("ge", b.get("gt", -1e9)), b.get("le", b.get("lt", 1e9)))
            d = self.default if isinstance(self.default, (int, float)) and self.default else 0.1
            w.setSingleStep(10 ** math.floor(math.log10(abs(d))) if d else 0.1)
            w.valueChanged.connect(lambda _: on_change())
        elif origin is Literal:
            self.kind = "literal"
            w = QComboBox(parent)
            self.choices = list(args)
            if self.optional:
                w.addItem("— none —", None)
            for c in self.choices:
                w.addItem(str(c), c)
            w.currentIndexChanged.connect(lambda _: on_change())
        elif ann is str:
            self.kind = "str"
            w = QLineEdit(parent)
            w.textChanged.connect(lambda _: on_change())
        elif origin is list and args and args[0] is str:
            self.kind = "list_str"
            w = QLineEdit(parent)
            w.setPlaceholderText("comma-separated; empty = none")
            w.textChanged.connect(lambda _: on_change())
        elif origin is dict and len(args) == 2 and args[0] is str and args[1] in (int, float, str):
            self.kind = "dict"
            self.value_type = args[1]
            w = QLineEdit(parent)
            w.setPlaceholderText("key=value, key=value" + ("; empty = none" if self.optional else ""))
            w.textChanged.connect(lambda _: on_change())
        else:
            self.kind = "json"
            w = QPlainTextEdit(parent)
            w.setTabChangesFocus(True)
            w.setFixedHeight(74)
            w.setPlaceholderText("JSON" + ("; empty = none" if self.optional else ""))
            w.textChanged.connect(on_change)
        self.widget = w
        desc = getattr(field, "description", None)
        tip = f"{name}: default {json.dumps(self.default)} (ReSet Studio default)"
        if b:
            tip += "\nrange: " + ", ".join(f"{k} {v:g}" for k, v in b.items())
        w.setToolTip(tip + (f"\n{desc}" if desc else ""))

    def set(self, value: Any) -> None:
        w = self.widget
        blocker = QSignalBlocker(w)  # noqa: F841
        value = _jsonable(value)
        if self.kind == "bool":
            w.setChecked(bool(value))
        elif self.kind == "int":
            w.setValue(w.minimum() if value is None else int(value))
        elif self.kind == "float":
            w.setValue(float(value or 0.0))
        elif self.kind == "literal":
            i = w.findData(value)
            w.setCurrentIndex(max(0, i))
        elif self.kind == "str":
            w.setText("" if value is None else str(value))
        elif self.kind == "list_str":
            w.setText(", ".join(str(v) for v in (value or [])))
        elif self.kind == "dict":
            w.setText(", ".join(f"{k}={v}" for k, v in (value or {}).items()))
        else:
            if value is None:
                w.setPlainText("")
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                w.setPlainText("[\n" + ",\n".join("  " + json.dumps(v) for v in value) + "\n]")
            else:
                w.setPlainText(json.dumps(value))

    def get(self) -> Any:
        w = self.widget
        if self.kind == "bool":
            return w.isChecked()
        if self.kind == "int":
            return None if self.optional and w.value() == w.minimum() else w.value()
        if self.kind == "float":
            return float(w.value())
        if self.kind == "literal":
            return w.currentData()
        if self.kind == "str":
            text = w.text().strip()
            return None if (self.optional and not text) else text
        if self.kind == "list_str":
            return [t.strip() for t in w.text().split(",") if t.strip()]
        if self.kind == "dict":
            text = w.text().strip()
            if not text:
                return None if self.optional else {}
            return parse_mapping(text, self.value_type)
        text = w.toPlainText().strip()
        if not text:
            return None if self.optional else ([] if typing.get_origin(self.ann) is list else {})
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None


def parse_mapping(text: str, value_type: type = str) -> dict[str, Any]:
    """``"a=1, b=2"`` → {"a": 1, "b": 2}; raises ValueError naming the bad item."""
    out: dict[str, Any] = {}
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "=" not in part:
            raise ValueError(f"expected key=value, got {part!r}")
        k, v = (s.strip() for s in part.split("=", 1))
        if not k:
            raise ValueError(f"missing key in {part!r}")
        if value_type is int:
            try:
                out[k] = int(v)
            except ValueError:
                raise ValueError(f"{k}: {v!r} is not a whole number") from None
        elif value_type is float:
            try:
                out[k] = float(v)
            except ValueError:
                raise ValueError(f"{k}: {v!r} is not a number") from None
        else:
            out[k] = v
    return out


class ModelForm(QWidget):
    """A form for a pydantic model's fields (minus ``skip``), two label/editor pairs per row."""

    changed = Signal()

    def __init__(self, model: type[BaseModel], skip: tuple[str, ...] = (), columns: int = 2,
                 parent=None):
        super().__init__(parent)
        self.model = model
        self.editors: dict[str, FieldEditor] = {}
        self.labels: dict[str, QLabel] = {}
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 4, 4, 4)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(5)
        fields = [(n, f) for n, f in model.model_fields.items() if n not in skip]
        wide = [(n, f) for n, f in fields]
        row = col = 0
        for name, field in wide:
            ed = FieldEditor(name, field, self.changed.emit, self)
            label = QLabel(name.replace("_", " "), self)
            label.setToolTip(ed.widget.toolTip())
            self.editors[name] = ed
            self.labels[name] = label
            if ed.kind == "json":  # full width
                if col:
                    row, col = row + 1, 0
                grid.addWidget(label, row, 0, Qt.AlignmentFlag.AlignTop)
                grid.addWidget(ed.widget, row, 1, 1, 2 * columns - 1)
                row += 1
                continue
            grid.addWidget(label, row, 2 * col)
            grid.addWidget(ed.widget, row, 2 * col + 1)
            col += 1
            if col >= columns:
                row, col = row + 1, 0
        for c in range(columns):
            grid.setColumnStretch(2 * c + 1, 1)
        grid.setRowStretch(row + 1, 1)

    def set_values(self, values: dict[str, Any]) -> None:
        for name, ed in self.editors.items():
            ed.set(values.get(name, ed.default))

    def values(self) -> tuple[dict[str, Any], dict[str, str]]:
        """(non-default values, {field: parse error})."""
        out: dict[str, Any] = {}
        errors: dict[str, str] = {}
        for name, ed in self.editors.items():
            try:
                v = ed.get()
            except ValueError as exc:
                errors[name] = str(exc)
                continue
            if v is None and ed.default is None:
                continue
            if v == ed.default and name != "name":
                continue
            out[name] = v
        return out, errors

    def mark(self, bad: set[str]) -> None:
        for name, ed in self.editors.items():
            flag_widget(ed.widget, name in bad)
            self.labels[name].setStyleSheet(f"color: {ERROR_RED};" if name in bad else "")


def flag_widget(widget: QWidget, bad: bool) -> None:
    """Mark an editor as holding a bad value: a red frame for text fields, a pink fill for spin
    boxes and combos (a style sheet border would break their arrows)."""
    if isinstance(widget, (QLineEdit, QPlainTextEdit)):
        widget.setStyleSheet(f"border: 1px solid {ERROR_RED};" if bad else "")
        return
    if bad:
        pal = widget.palette()
        pal.setColor(QPalette.ColorRole.Base, QColor(BAD_FILL))
        pal.setColor(QPalette.ColorRole.Button, QColor(BAD_FILL))
        widget.setPalette(pal)
    else:
        widget.setPalette(QPalette())


# ============================================================================================
# The tab
# ============================================================================================
class SetupTab(QWidget):
    validity_changed = Signal(bool)
    launched = Signal(str)           # new run id
    launch_failed = Signal(str)      # message

    def __init__(self, home: str | os.PathLike, parent=None, background: Background | None = None):
        super().__init__(parent)
        self.home = Path(home)
        self.bg = background or Background(self)
        self.parent_run_id: str | None = None
        self.config_dir: Path = PRESETS
        self.stages: list[dict[str, Any]] = []
        self.stage_errors: dict[int, dict[str, str]] = {}
        self.judge_extras: dict[str, Any] = {}
        self.valid = False
        self.last_errors: list[str] = []
        self.last_message: str | None = None
        self.last_config: RunConfig | None = None
        self._loading = False
        self._cur_stage = -1
        self._preview_req = 0
        self._launching = False
        self._known_ckpts: set[str] = set()
        self._build()
        self.load_preset(DEFAULT_PRESET if DEFAULT_PRESET in config_mod.list_presets() else None)

    # ---- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.hint = QLabel(self)
        self.hint.setObjectName("HintLabel")
        self.hint.setWordWrap(True)
        self.hint.hide()

        # top bar: preset, name, seed, save/load
        self.preset_combo = QComboBox(self)
        for name in config_mod.list_presets():
            self.preset_combo.addItem(name, name)
        self.preset_combo.addItem("custom", None)
        self.preset_combo.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.preset_combo.setMinimumContentsLength(16)
        self.preset_combo.currentIndexChanged.connect(self._on_preset)
        self.name_edit = QLineEdit(self)
        self.name_edit.setPlaceholderText("run name")
        self.name_edit.setMinimumWidth(150)
        self.name_edit.textChanged.connect(self._edited)
        self.seed_spin = QSpinBox(self)
        self.seed_spin.setRange(0, 2**31 - 2)
        self.seed_spin.valueChanged.connect(self._edited)
        self.save_btn = QPushButton("Save TOML…", self)
        self.save_btn.clicked.connect(self._save_dialog)
        self.load_btn = QPushButton("Load TOML…", self)
        self.load_btn.clicked.connect(self._load_dialog)
        top = QHBoxLayout()
        top.addWidget(QLabel("Preset", self))
        top.addWidget(self.preset_combo, 1)
        top.addSpacing(8)
        top.addWidget(QLabel("Name", self))
        top.addWidget(self.name_edit, 1)
        top.addSpacing(8)
        top.addWidget(QLabel("Seed", self))
        top.addWidget(self.seed_spin)
        top.addSpacing(8)
        top.addWidget(self.save_btn)
        top.addWidget(self.load_btn)
        self.clone_label = QLabel(self)
        self.clone_label.setObjectName("DefaultsNote")
        self.clone_label.hide()

        # left column: model + judges
        # two rows: [base checkpoint | data mixture] over [judges | stage plan]
        def scrolled(widget: QWidget) -> QScrollArea:
            area = QScrollArea(self)
            area.setWidgetResizable(True)
            area.setFrameShape(QScrollArea.Shape.NoFrame)
            area.setWidget(widget)
            area.setFixedWidth(LEFT_WIDTH)
            return area

        row1 = QWidget(self)
        r1 = QHBoxLayout(row1)
        r1.setContentsMargins(0, 0, 0, 0)
        r1.addWidget(scrolled(self._build_model_box()))
        r1.addWidget(self._build_mixture_box(), 1)
        row2 = QWidget(self)
        r2 = QHBoxLayout(row2)
        r2.setContentsMargins(0, 0, 0, 0)
        r2.addWidget(scrolled(self._build_judges_box()))
        r2.addWidget(self._build_stages_box(), 1)
        body = QSplitter(Qt.Orientation.Vertical, self)
        body.addWidget(row1)
        body.addWidget(row2)
        body.setStretchFactor(0, 1)
        body.setStretchFactor(1, 1)
        body.setChildrenCollapsible(False)

        # bottom: validation + launch
        self.error_label = QLabel(self)
        self.error_label.setObjectName("ErrorLabel")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.ok_label = QLabel(self)
        self.ok_label.setStyleSheet("color: #1e8a3a;")
        self.launch_btn = QPushButton("Launch", self)
        self.launch_btn.setMinimumWidth(110)
        self.launch_btn.setStyleSheet("QPushButton:enabled { font-weight: 600; }")
        self.launch_btn.clicked.connect(self.launch)
        bottom = QHBoxLayout()
        msgs = QVBoxLayout()
        msgs.addWidget(self.error_label)
        msgs.addWidget(self.ok_label)
        bottom.addLayout(msgs, 1)
        bottom.addWidget(self.launch_btn, 0, Qt.AlignmentFlag.AlignTop)

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        lay.addWidget(self.hint)
        lay.addLayout(top)
        lay.addWidget(self.clone_label)
        lay.addWidget(body, 1)
        lay.addLayout(bottom)

    def _build_model_box(self) -> QGroupBox:
        box = QGroupBox("Base checkpoint", self)
        self.base_combo = QComboBox(box)
        self.base_combo.addItem(EMBEDDED_LABEL, "embedded")
        self.base_combo.addItem("local folder…", "local")
        self.base_combo.addItem("hub id", "hub")
        self.base_combo.currentIndexChanged.connect(self._on_base_mode)
        self.base_edit = QLineEdit(box)
        self.base_edit.textChanged.connect(self._edited)
        self.base_browse = QPushButton("…", box)
        self.base_browse.setFixedWidth(28)
        self.base_browse.setToolTip("Choose a local model folder")
        self.base_browse.clicked.connect(self._choose_base_folder)
        row = QHBoxLayout()
        row.addWidget(self.base_edit, 1)
        row.addWidget(self.base_browse)
        self.model_form = ModelForm(ModelSpec, skip=("base",), columns=1, parent=box)
        self.model_form.changed.connect(self._edited)
        lay = QVBoxLayout(box)
        lay.addWidget(self.base_combo)
        lay.addLayout(row)
        lay.addWidget(self.model_form)
        return box

    def _build_judges_box(self) -> QGroupBox:
        box = QGroupBox("Judges && weights", self)
        form = QFormLayout(box)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.weight_spins: dict[str, QDoubleSpinBox] = {}
        for cat, label in (("task", "task weight"), ("faithfulness", "faithfulness weight"),
                           ("instruction_following", "instruction weight")):
            sp = QDoubleSpinBox(box)
            sp.setRange(0.0, 100.0)
            sp.setDecimals(2)
            sp.setSingleStep(0.05)
            sp.valueChanged.connect(self._edited)
            sp.setToolTip(f"judges.weights.{cat}: weight of the {cat.replace('_', ' ')} score in "
                          "the combined score (ReSet Studio default; the paper does not publish it)")
            self.weight_spins[cat] = sp
            form.addRow(label, sp)
        self.faith_combo = QComboBox(box)
        for name in FAITH_JUDGES:
            self.faith_combo.addItem(name, name)
        self.faith_combo.setToolTip("auto: SummaC-ZS when an NLI model is on disk, else the MiniLM "
                                    "sentence judge, else lexical support")
        self.faith_combo.currentIndexChanged.connect(self._edited)
        form.addRow("faithfulness judge", self.faith_combo)
        self.nli_edit = QLineEdit(box)
        self.nli_edit.setPlaceholderText("local NLI model folder (optional)")
        self.nli_edit.textChanged.connect(self._edited)
        nli_btn = QPushButton("…", box)
        nli_btn.setFixedWidth(28)
        nli_btn.clicked.connect(self._choose_nli_folder)
        nli_row = QHBoxLayout()
        nli_row.addWidget(self.nli_edit, 1)
        nli_row.addWidget(nli_btn)
        form.addRow("NLI model", nli_row)
        self.task_judges_edit = QLineEdit(box)
        self.task_judges_edit.textChanged.connect(self._edited)
        form.addRow("task judges", self.task_judges_edit)
        self.if_judges_edit = QLineEdit(box)
        self.if_judges_edit.textChanged.connect(self._edited)
        form.addRow("instruction judges", self.if_judges_edit)
        self.llm_url_edit = QLineEdit(box)
        self.llm_url_edit.setPlaceholderText("OpenAI-compatible base URL (optional)")
        self.llm_url_edit.textChanged.connect(self._edited)
        form.addRow("LLM judge URL", self.llm_url_edit)
        self.llm_model_edit = QLineEdit(box)
        self.llm_model_edit.textChanged.connect(self._edited)
        form.addRow("LLM judge model", self.llm_model_edit)
        note = QLabel(DEFAULTS_NOTE, box)
        note.setObjectName("DefaultsNote")
        note.setWordWrap(True)
        form.addRow(note)
        return box

    def _build_mixture_box(self) -> QGroupBox:
        box = QGroupBox("Data mixture", self)
        self.mix = QTableWidget(0, len(MIX_COLUMNS), box)
        self.mix.setHorizontalHeaderLabels(list(MIX_COLUMNS))
        tips = {"Columns": "column mapping, record field=source column, e.g. "
                           "\"prompt=query, context=passage\" (empty: the format's default)",
                "Weight": "share of the mixture (normalised over data sets)",
                "Budget": "exact number of examples; overrides the weight",
                "Kind": "record kind, when the format does not imply one"}
        for name, tip in tips.items():
            self.mix.horizontalHeaderItem(MIX_COLUMNS.index(name)).setToolTip(tip)
        self.mix.verticalHeader().setVisible(False)
        self.mix.verticalHeader().setDefaultSectionSize(26)
        self.mix.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.mix.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        hdr = self.mix.horizontalHeader()
        for col, w in enumerate((120, 200, 116, 134, 190, 58, 58, 180)):
            hdr.resizeSection(col, w)
        hdr.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.mix.itemChanged.connect(lambda _: self._edited())
        self.mix.itemSelectionChanged.connect(self._schedule_preview)
        add = QPushButton("Add data set", box)
        add.clicked.connect(lambda: self.add_dataset_row({"name": self._unique_data_name(),
                                                          "source": ""}))
        rm = QPushButton("Remove", box)
        rm.clicked.connect(self.remove_dataset_row)
        src = QPushButton("Source file…", box)
        src.clicked.connect(lambda: self._choose_data_file(MC["Source"]))
        ev = QPushButton("Eval file…", box)
        ev.clicked.connect(lambda: self._choose_data_file(MC["Eval"]))
        pv = QPushButton("Preview", box)
        pv.clicked.connect(self.preview_selected)
        btns = QHBoxLayout()
        for b in (add, rm, src, ev):
            btns.addWidget(b)
        btns.addStretch(1)
        btns.addWidget(pv)
        self.preview_status = QLabel("Select a data set to preview its first 5 mapped records.", box)
        self.preview_status.setWordWrap(True)
        self.preview_status.setObjectName("DefaultsNote")
        self.preview_table = QTableWidget(0, 5, box)
        self.preview_table.setHorizontalHeaderLabels(["id", "kind", "prompt", "context", "reference"])
        self.preview_table.verticalHeader().setVisible(False)
        self.preview_table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview_table.setWordWrap(False)
        ph = self.preview_table.horizontalHeader()
        for col, w in enumerate((110, 95, 200, 200, 160)):
            ph.resizeSection(col, w)
        ph.setStretchLastSection(True)
        split = QSplitter(Qt.Orientation.Vertical, box)
        split.addWidget(self.mix)
        pw = QWidget(box)
        pl = QVBoxLayout(pw)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.preview_status)
        pl.addWidget(self.preview_table, 1)
        split.addWidget(pw)
        split.setSizes([130, 150])
        lay = QVBoxLayout(box)
        lay.addLayout(btns)
        lay.addWidget(split, 1)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(250)
        self._preview_timer.timeout.connect(self.preview_selected)
        return box

    def _build_stages_box(self) -> QGroupBox:
        box = QGroupBox("Stage plan", self)
        self.stage_list = QListWidget(box)
        self.stage_list.setMaximumWidth(180)
        self.stage_list.currentRowChanged.connect(self._on_stage_selected)
        self.stage_type_combo = QComboBox(box)
        for t in STAGE_TYPES:
            self.stage_type_combo.addItem(t, t)
        add = QPushButton("Add", box)
        add.clicked.connect(lambda: self.add_stage(self.stage_type_combo.currentData()))
        rm = QPushButton("Remove", box)
        rm.clicked.connect(lambda: self.remove_stage(self.stage_list.currentRow()))
        up = QPushButton("▲", box)
        up.setToolTip("Move the stage up")
        up.clicked.connect(lambda: self.move_stage(self.stage_list.currentRow(), -1))
        down = QPushButton("▼", box)
        down.setToolTip("Move the stage down")
        down.clicked.connect(lambda: self.move_stage(self.stage_list.currentRow(), +1))
        for b in (up, down):
            b.setFixedWidth(30)
        row1 = QHBoxLayout()
        row1.addWidget(self.stage_type_combo, 1)
        row1.addWidget(add)
        row2 = QHBoxLayout()
        row2.addWidget(rm, 1)
        row2.addWidget(up)
        row2.addWidget(down)
        leftw = QWidget(box)
        lv = QVBoxLayout(leftw)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(self.stage_list, 1)
        lv.addLayout(row1)
        lv.addLayout(row2)
        leftw.setMaximumWidth(180)
        self.stage_title = QLabel(box)
        self.stage_title.setObjectName("SectionTitle")
        note = QLabel(DEFAULTS_NOTE, box)
        note.setObjectName("DefaultsNote")
        note.setWordWrap(True)
        self.stage_scroll = QScrollArea(box)
        self.stage_scroll.setWidgetResizable(True)
        self.stage_form: ModelForm | None = None
        rightw = QWidget(box)
        rv = QVBoxLayout(rightw)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(self.stage_title)
        rv.addWidget(self.stage_scroll, 1)
        rv.addWidget(note)
        lay = QHBoxLayout(box)
        lay.addWidget(leftw)
        lay.addWidget(rightw, 1)
        return box

    # ---- populating --------------------------------------------------------------------------
    def load_preset(self, name: str | None) -> None:
        if name is None:
            self.set_config_dict({"name": "run", "preset": "custom",
                                  "stages": [{"type": "train", "name": "train"}]})
            return
        try:
            cfg = config_mod.load_preset(name)
        except ConfigError as exc:
            self._show_errors([str(exc)])
            return
        self.config_dir = PRESETS
        self.parent_run_id = None
        self.clone_label.hide()
        self.set_config(cfg)

    def set_config(self, cfg: RunConfig) -> None:
        self.set_config_dict(cfg.model_dump(mode="json", exclude_none=True))

    def set_config_dict(self, data: dict[str, Any]) -> None:
        data = copy.deepcopy(data)
        self._loading = True
        try:
            with QSignalBlocker(self.preset_combo):
                i = self.preset_combo.findData(data.get("preset"))
                self.preset_combo.setCurrentIndex(i if i >= 0 else self.preset_combo.count() - 1)
            self.name_edit.setText(str(data.get("name", "run")))
            self.seed_spin.setValue(int(data.get("seed", 42)))
            self.description = str(data.get("description", ""))
            model = data.get("model") or {}
            self.set_base(str(model.get("base", "embedded")))
            self.model_form.set_values(model)
            self._set_judges(data.get("judges") or {})
            self.mix.setRowCount(0)
            for d in data.get("data") or []:
                self.add_dataset_row(d)
            self.stages = [dict(s) for s in data.get("stages") or []]
            self.stage_errors = {}
            self._refresh_stage_list(select=0 if self.stages else -1)
        finally:
            self._loading = False
        if self.mix.rowCount():
            self.mix.selectRow(0)
        self.validate()

    def _set_judges(self, j: dict[str, Any]) -> None:
        defaults = config_mod.JudgeSpec().model_dump(mode="json")
        merged = {**defaults, **j}
        weights = merged.get("weights") or {}
        for cat, sp in self.weight_spins.items():
            sp.setValue(float(weights.get(cat, 0.0)))
        i = self.faith_combo.findData(merged.get("faithfulness", "auto"))
        if i < 0:
            self.faith_combo.addItem(str(merged["faithfulness"]), merged["faithfulness"])
            i = self.faith_combo.count() - 1
        self.faith_combo.setCurrentIndex(i)
        self.nli_edit.setText(merged.get("nli_model") or "")
        self.task_judges_edit.setText(", ".join(merged.get("task") or []))
        self.if_judges_edit.setText(", ".join(merged.get("instruction_following") or []))
        ep = merged.get("llm_endpoint") or {}
        self.llm_url_edit.setText(ep.get("base_url", ""))
        self.llm_model_edit.setText(ep.get("model", ""))
        self.judge_extras = {k: v for k, v in ep.items() if k not in ("base_url", "model")}

    # ---- base checkpoint ---------------------------------------------------------------------
    def set_base(self, ref: str) -> None:
        ref = ref.strip()
        with QSignalBlocker(self.base_combo):
            if ref == "embedded":
                self.base_combo.setCurrentIndex(0)
            elif ref.startswith("run:"):
                i = self.base_combo.findData(ref)
                if i < 0:
                    self.base_combo.addItem(ref, ref)
                    i = self.base_combo.count() - 1
                self.base_combo.setCurrentIndex(i)
            elif _HUB_ID.match(ref) and not Path(ref).expanduser().exists():
                self.base_combo.setCurrentIndex(2)
            else:
                self.base_combo.setCurrentIndex(1)
        with QSignalBlocker(self.base_edit):
            self.base_edit.setText(ref)
        self._sync_base_widgets()
        self._edited()

    def base_ref(self) -> str:
        mode = self.base_combo.currentData()
        if mode == "embedded":
            return "embedded"
        if mode in ("local", "hub"):
            return self.base_edit.text().strip()
        return str(mode)

    def _on_base_mode(self, _=None) -> None:
        mode = self.base_combo.currentData()
        with QSignalBlocker(self.base_edit):
            if mode == "embedded" or str(mode).startswith("run:"):
                self.base_edit.setText(str(mode))
            elif self.base_edit.text() == "embedded" or self.base_edit.text().startswith("run:"):
                self.base_edit.clear()
        self._sync_base_widgets()
        if mode == "local" and not self.base_edit.text() and not self._loading and self.isVisible():
            self._choose_base_folder()
        self._edited()

    def _sync_base_widgets(self) -> None:
        mode = self.base_combo.currentData()
        editable = mode in ("local", "hub")
        self.base_edit.setReadOnly(not editable)
        self.base_edit.setEnabled(editable)
        self.base_browse.setVisible(mode == "local")
        self.base_edit.setPlaceholderText({"local": "/path/to/model folder",
                                           "hub": "org/name (used offline from the HF cache)"}
                                          .get(mode, ""))

    def add_checkpoints(self, rows: list[dict[str, Any]]) -> None:
        """Checkpoints of earlier runs become base choices ``run:<id>:<tag>``."""
        for r in rows:
            ref = f"run:{r['run_id']}:{r['tag']}"
            if ref in self._known_ckpts:
                continue
            self._known_ckpts.add(ref)
            if self.base_combo.findData(ref) < 0:
                with QSignalBlocker(self.base_combo):
                    self.base_combo.addItem(ref, ref)
                    self.base_combo.setItemData(self.base_combo.count() - 1,
                                                f"{r.get('kind', '')} checkpoint: {r.get('path', '')}",
                                                Qt.ItemDataRole.ToolTipRole)

    # ---- mixture rows ------------------------------------------------------------------------
    def _unique_data_name(self) -> str:
        names = {self._cell(r, MC["Name"]) for r in range(self.mix.rowCount())}
        i = self.mix.rowCount() + 1
        while f"data{i}" in names:
            i += 1
        return f"data{i}"

    def add_dataset_row(self, d: dict[str, Any]) -> int:
        was = self._loading
        self._loading = True
        try:
            r = self.mix.rowCount()
            self.mix.insertRow(r)
            name_item = QTableWidgetItem(str(d.get("name", "")))
            extras = {k: v for k, v in d.items() if k not in
                      ("name", "source", "format", "kind", "columns", "weight", "budget",
                       "eval_source")}
            name_item.setData(Qt.ItemDataRole.UserRole, extras)
            self.mix.setItem(r, MC["Name"], name_item)
            self.mix.setItem(r, MC["Source"], QTableWidgetItem(str(d.get("source", ""))))
            fmt = QComboBox(self.mix)
            fmt.addItems(DATA_FORMATS)
            fmt.setCurrentText(d.get("format", "auto"))
            fmt.currentIndexChanged.connect(lambda _: self._edited())
            fmt.currentIndexChanged.connect(lambda _: self._schedule_preview())
            self.mix.setCellWidget(r, MC["Format"], fmt)
            kind = QComboBox(self.mix)
            kind.addItems(KIND_CHOICES)
            kind.setCurrentText(d.get("kind") or KIND_CHOICES[0])
            kind.currentIndexChanged.connect(lambda _: self._edited())
            kind.currentIndexChanged.connect(lambda _: self._schedule_preview())
            self.mix.setCellWidget(r, MC["Kind"], kind)
            cols = d.get("columns") or {}
            self.mix.setItem(r, MC["Columns"], QTableWidgetItem(
                ", ".join(f"{k}={v}" for k, v in cols.items())))
            weight = d.get("weight", 1.0) if "weight" in d or d.get("budget") is None else d.get("weight")
            self.mix.setItem(r, MC["Weight"], QTableWidgetItem("" if weight is None else f"{weight:g}"))
            budget = d.get("budget")
            self.mix.setItem(r, MC["Budget"], QTableWidgetItem("" if budget is None else str(budget)))
            self.mix.setItem(r, MC["Eval"], QTableWidgetItem(str(d.get("eval_source") or "")))
            for c in (MC["Source"], MC["Eval"]):
                self.mix.item(r, c).setToolTip(self.mix.item(r, c).text())
        finally:
            self._loading = was
        self._edited()
        return r

    def remove_dataset_row(self) -> None:
        r = self.mix.currentRow()
        if r >= 0:
            self.mix.removeRow(r)
            self._edited()

    def _cell(self, r: int, c: int) -> str:
        it = self.mix.item(r, c)
        return it.text().strip() if it else ""

    def set_cell(self, r: int, column: str, text: str) -> None:
        """Edit a mixture cell programmatically (tests, file choosers)."""
        c = MC[column]
        w = self.mix.cellWidget(r, c)
        if isinstance(w, QComboBox):
            w.setCurrentText(text)
        else:
            self.mix.item(r, c).setText(text)

    def dataset_row(self, r: int) -> tuple[dict[str, Any], dict[str, str]]:
        d: dict[str, Any] = dict(self.mix.item(r, MC["Name"]).data(Qt.ItemDataRole.UserRole) or {})
        errors: dict[str, str] = {}
        d["name"] = self._cell(r, MC["Name"])
        d["source"] = self._cell(r, MC["Source"])
        d["format"] = self.mix.cellWidget(r, MC["Format"]).currentText()
        kind = self.mix.cellWidget(r, MC["Kind"]).currentText()
        if kind != KIND_CHOICES[0]:
            d["kind"] = kind
        try:
            cols = parse_mapping(self._cell(r, MC["Columns"]))
            if cols:
                d["columns"] = cols
        except ValueError as exc:
            errors["columns"] = str(exc)
        w = self._cell(r, MC["Weight"])
        if w:
            try:
                d["weight"] = float(w)
            except ValueError:
                errors["weight"] = f"{w!r} is not a number"
        else:
            d["weight"] = None
        b = self._cell(r, MC["Budget"])
        if b:
            try:
                d["budget"] = int(b)
            except ValueError:
                errors["budget"] = f"{b!r} is not a whole number"
        ev = self._cell(r, MC["Eval"])
        if ev:
            d["eval_source"] = ev
        return d, errors

    # ---- stages ------------------------------------------------------------------------------
    def _stage_label(self, i: int) -> str:
        st = self.stages[i]
        name = st.get("name") or f"{st.get('type')}{i}"
        return f"{i + 1}. {name}  ({st.get('type')})"

    def _refresh_stage_list(self, select: int | None = None) -> None:
        cur = self.stage_list.currentRow() if select is None else select
        with QSignalBlocker(self.stage_list):
            self.stage_list.clear()
            for i in range(len(self.stages)):
                self.stage_list.addItem(QListWidgetItem(self._stage_label(i)))
        cur = min(cur, len(self.stages) - 1)
        self._cur_stage = -2  # force a rebuild of the form
        self.stage_list.setCurrentRow(cur)
        if cur < 0:
            self._on_stage_selected(-1)

    def add_stage(self, type_: str) -> None:
        names = {s.get("name") for s in self.stages}
        i = 1
        while f"{type_}{i}" in names:
            i += 1
        self.stages.append({"type": type_, "name": f"{type_}{i}" if i > 1 or type_ in names else type_})
        self._refresh_stage_list(select=len(self.stages) - 1)
        self._edited()

    def remove_stage(self, i: int) -> None:
        if 0 <= i < len(self.stages):
            del self.stages[i]
            self.stage_errors = {}
            self._refresh_stage_list(select=min(i, len(self.stages) - 1))
            self._edited()

    def move_stage(self, i: int, delta: int) -> None:
        j = i + delta
        if 0 <= i < len(self.stages) and 0 <= j < len(self.stages):
            self.stages[i], self.stages[j] = self.stages[j], self.stages[i]
            self.stage_errors = {}
            self._refresh_stage_list(select=j)
            self._edited()

    def select_stage(self, i: int) -> None:
        self.stage_list.setCurrentRow(i)

    def _on_stage_selected(self, i: int) -> None:
        if i == self._cur_stage:
            return
        self._cur_stage = i
        old = self.stage_scroll.takeWidget()
        if old is not None:
            old.deleteLater()
        self.stage_form = None
        if not 0 <= i < len(self.stages):
            self.stage_title.setText("No stage selected" if self.stages else
                                     "The stage plan is empty: add a stage")
            return
        st = self.stages[i]
        model = STAGE_MODELS.get(st.get("type"))
        if model is None:
            self.stage_title.setText(f"Unknown stage type {st.get('type')!r}")
            return
        form = ModelForm(model, skip=("type",), columns=1)
        with QSignalBlocker(form):
            form.set_values(st)
        form.changed.connect(self._on_stage_form_changed)
        self.stage_form = form
        self.stage_scroll.setWidget(form)
        self.stage_title.setText(f"Stage {i + 1}: {st.get('type')} — every parameter")
        self._mark_fields()

    def _on_stage_form_changed(self) -> None:
        i = self._cur_stage
        if self.stage_form is None or not 0 <= i < len(self.stages):
            return
        values, errors = self.stage_form.values()
        old = self.stages[i]
        new = {"type": old.get("type"), **values}
        for k in errors:  # keep the last good value of a field being typed
            if k in old:
                new[k] = old[k]
        self.stages[i] = new
        self.stage_errors[i] = errors
        item = self.stage_list.item(i)
        if item is not None:
            item.setText(self._stage_label(i))
        self._edited()

    def set_stage_field(self, i: int, field: str, value: Any) -> None:
        """Set one stage parameter through its editor (as a user would)."""
        self.select_stage(i)
        assert self.stage_form is not None
        ed = self.stage_form.editors[field]
        ed.set(value)
        self._on_stage_form_changed()

    # ---- building and validating -------------------------------------------------------------
    def raw_config(self) -> tuple[dict[str, Any], list[str]]:
        """The config as a plain dict, plus field-level parse errors of the editors."""
        errors: list[str] = []
        model, merrs = self.model_form.values()
        errors += [f"model.{k}: {v}" for k, v in merrs.items()]
        model["base"] = self.base_ref()
        data = []
        for r in range(self.mix.rowCount()):
            d, derrs = self.dataset_row(r)
            errors += [f"data.{r}.{k}: {v}" for k, v in derrs.items()]
            data.append({k: v for k, v in d.items() if v is not None})
        judges: dict[str, Any] = {
            "task": [t.strip() for t in self.task_judges_edit.text().split(",") if t.strip()],
            "faithfulness": self.faith_combo.currentData(),
            "instruction_following": [t.strip() for t in self.if_judges_edit.text().split(",")
                                      if t.strip()],
            "weights": {cat: sp.value() for cat, sp in self.weight_spins.items()},
        }
        if self.nli_edit.text().strip():
            judges["nli_model"] = self.nli_edit.text().strip()
        if self.llm_url_edit.text().strip():
            judges["llm_endpoint"] = {"base_url": self.llm_url_edit.text().strip(),
                                      "model": self.llm_model_edit.text().strip(),
                                      **self.judge_extras}
        for i, errs in self.stage_errors.items():
            errors += [f"stages.{i}.{k}: {v}" for k, v in errs.items()]
        cfg = {
            "name": self.name_edit.text().strip(),
            "preset": self.preset_combo.currentData() or "custom",
            "description": getattr(self, "description", ""),
            "seed": self.seed_spin.value(),
            "model": model,
            "data": data,
            "judges": judges,
            "stages": [dict(s) for s in self.stages],
        }
        return cfg, errors

    def build_config(self) -> RunConfig:
        """The validated RunConfig (data paths made absolute); raises ConfigError."""
        raw, errors = self.raw_config()
        if errors:
            raise ConfigError("invalid config:\n  " + "\n  ".join(errors))
        cfg = config_mod.config_from_dict(raw)
        return config_mod.absolutize(cfg, self.config_dir)

    def _resolve_file(self, value: str) -> Path:
        p = Path(value).expanduser()
        if p.is_absolute():
            return p
        for root in (self.config_dir, REPO_ROOT):
            if (root / p).exists():
                return root / p
        return p

    def _problems(self, raw: dict[str, Any]) -> list[str]:
        """Cheap checks the schema cannot do (files on disk); the launcher re-checks in depth."""
        problems = []
        base = str(raw.get("model", {}).get("base", ""))
        mode = self.base_combo.currentData()
        if mode == "local":
            p = Path(base).expanduser()
            if not base:
                problems.append("model.base: choose a local checkpoint folder")
            elif not p.exists():
                problems.append(f"model.base: local checkpoint folder not found: {base}")
            elif not p.is_dir():
                problems.append(f"model.base: not a folder: {base}")
            elif not ((p / "config.json").exists() or (p / "adapter_config.json").exists()):
                problems.append(f"model.base: {base} has no config.json or adapter_config.json")
        elif mode == "hub" and not _HUB_ID.match(base):
            problems.append(f"model.base: {base!r} is not a hub id (org/name)")
        for i, d in enumerate(raw.get("data") or []):
            for attr in ("source", "eval_source"):
                value = d.get(attr)
                if value and (Path(value).suffix or value.startswith((".", "/", "~"))) \
                        and not self._resolve_file(value).exists():
                    problems.append(f"data.{i}.{attr}: file not found: {value}")
        nli = raw.get("judges", {}).get("nli_model")
        if nli and not Path(nli).expanduser().exists():
            problems.append(f"judges.nli_model: folder not found: {nli}")
        return problems

    def validate(self) -> bool:
        """Check everything and show every problem at once; True when Launch may proceed."""
        raw, parse_errors = self.raw_config()
        cfg = None
        schema: list[str] = []
        try:
            cfg = config_mod.absolutize(config_mod.config_from_dict(copy.deepcopy(raw)),
                                        self.config_dir)
        except ConfigError as exc:
            schema = _error_lines(str(exc), self.stages)
        lines = _error_lines("\n".join(parse_errors), self.stages) if parse_errors else []
        lines += [ln for ln in schema if ln not in lines]
        problems = self._problems(raw)
        lines += _error_lines("\n".join(problems), self.stages) if problems else []
        # launchable by the launcher (which re-checks files) when the config itself is sound
        self.last_config = cfg if not parse_errors else None
        self._show_errors(lines)
        return not lines

    def _show_errors(self, lines: list[str]) -> None:
        self.last_errors = lines
        valid = not lines
        if lines:
            shown = lines[:6] + ([f"… and {len(lines) - 6} more"] if len(lines) > 6 else [])
            self.error_label.setText("⚠ " + "\n⚠ ".join(shown))
            self.error_label.show()
            self.ok_label.hide()
        else:
            self.error_label.clear()
            self.error_label.hide()
            n = len(self.stages)
            self.ok_label.setText(f"✓ Config is valid: {n} stage{'s' if n != 1 else ''}, "
                                  f"{self.mix.rowCount()} data set(s), base {self.base_ref()}.")
            self.ok_label.show()
        self.launch_btn.setEnabled(valid and not self._launching)
        self._mark_fields()
        if valid != self.valid:
            self.valid = valid
            self.validity_changed.emit(valid)

    def _mark_fields(self) -> None:
        locs = [ln.split(":", 1)[0].strip() for ln in self.last_errors]
        bad_stage_fields = set()
        for loc in locs:
            m = re.match(r"stages\.(\d+)(?: \([^)]*\))?\.(\w+)", loc)
            if m and int(m.group(1)) == self._cur_stage:
                bad_stage_fields.add(m.group(2))
        if self.stage_form is not None:
            self.stage_form.mark(bad_stage_fields)
            first = next((n for n in self.stage_form.editors if n in bad_stage_fields), None)
            if first is not None:
                self.stage_scroll.ensureWidgetVisible(self.stage_form.editors[first].widget)
        flag_widget(self.base_edit, any(loc.startswith("model.base") for loc in locs))
        bad_w = any(loc.startswith("judges.weights") for loc in locs)
        for sp in self.weight_spins.values():
            flag_widget(sp, bad_w)
        flag_widget(self.name_edit, "name" in locs)
        flag_widget(self.nli_edit, any(loc.startswith("judges.nli") for loc in locs))
        bad_cells = set()
        for loc in locs:
            m = re.match(r"data\.(\d+)\.(\w+)", loc)
            if m:
                col = {"name": "Name", "source": "Source", "format": "Format", "kind": "Kind",
                       "columns": "Columns", "weight": "Weight", "budget": "Budget",
                       "eval_source": "Eval"}.get(m.group(2))
                if col:
                    bad_cells.add((int(m.group(1)), MC[col]))
            elif loc.startswith("data"):
                bad_cells.update((r, MC["Weight"]) for r in range(self.mix.rowCount()))
        with QSignalBlocker(self.mix):
            for r in range(self.mix.rowCount()):
                for c in range(len(MIX_COLUMNS)):
                    item = self.mix.item(r, c)
                    if item is not None:
                        item.setData(Qt.ItemDataRole.BackgroundRole,
                                     QColor(BAD_FILL) if (r, c) in bad_cells else None)
                    elif self.mix.cellWidget(r, c) is not None:
                        flag_widget(self.mix.cellWidget(r, c), (r, c) in bad_cells)

    def _edited(self, *_) -> None:
        if self._loading:
            return
        self.validate()

    # ---- launch ------------------------------------------------------------------------------
    def launch(self) -> None:
        if self._launching:
            return
        if not self.validate() and self.last_config is None:
            self._fail("Launch refused: the config is invalid.\n" + "\n".join(self.last_errors))
            return
        cfg = self.last_config
        assert cfg is not None
        home, parent = self.home, self.parent_run_id
        self._launching = True
        self.launch_btn.setEnabled(False)
        self.ok_label.setText("Launching… (checking the checkpoint and data files)")
        self.ok_label.show()

        def work():
            from backend import launcher
            return launcher.launch(cfg, home, parent_run_id=parent)

        self.bg.submit(work, self._launched, self._launch_error)

    def _launched(self, run_id: str) -> None:
        self._launching = False
        self.validate()
        self.ok_label.setText(f"✓ Launched run {run_id}")
        self.ok_label.show()
        self.launched.emit(run_id)

    def _launch_error(self, exc: BaseException) -> None:
        self._launching = False
        from backend.launcher import LaunchError
        if isinstance(exc, (LaunchError, ConfigError)):
            msg = str(exc)
        else:
            msg = f"{type(exc).__name__}: {exc}"
        self.validate()
        self._fail(msg)

    def _fail(self, msg: str) -> None:
        lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
        self.error_label.setText("⚠ " + "\n⚠ ".join(lines[:8]))
        self.error_label.show()
        self.ok_label.hide()
        self.last_message = msg
        self.launch_failed.emit(msg)
        box = QMessageBox(QMessageBox.Icon.Warning, "Launch refused", msg.splitlines()[0],
                          QMessageBox.StandardButton.Ok, self)
        if len(lines) > 1:
            box.setInformativeText("\n".join(f"• {ln}" for ln in lines[1:]))
        box.setStyleSheet("QLabel { min-width: 560px; }")
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.message_box = box
        box.open()  # non-blocking (window-modal)

    # ---- save / load -------------------------------------------------------------------------
    def save_toml(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        try:
            cfg = self.build_config()
            return cfg.save(path)
        except ConfigError:
            raw, _ = self.raw_config()  # save work in progress as it is
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(tomli_w.dumps(_drop_none(raw)), encoding="utf-8")
            return path

    def load_toml(self, path: str | os.PathLike) -> None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            self._fail(f"Could not load {path}: {exc}")
            return
        self.config_dir = path.parent
        self.parent_run_id = None
        self.clone_label.hide()
        self.set_config_dict(data)

    def clone_run(self, run: dict[str, Any]) -> None:
        try:
            data = tomllib.loads(run.get("config_toml") or "")
        except tomllib.TOMLDecodeError as exc:
            self._fail(f"run {run['id']} has an unreadable config: {exc}")
            return
        data["name"] = f"{data.get('name') or run.get('name') or 'run'}-clone"
        self.config_dir = Path(run.get("run_dir") or REPO_ROOT)
        self.set_config_dict(data)
        self.parent_run_id = run["id"]
        self.clone_label.setText(f"Cloned from run {run.get('name')} ({run['id']}): it will be "
                                 "recorded as the new run's parent.")
        self.clone_label.show()

    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save run config",
                                              f"{self.name_edit.text() or 'run'}.toml",
                                              "TOML (*.toml)")
        if path:
            self.save_toml(path)

    def _load_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load run config", str(PRESETS),
                                              "TOML (*.toml)")
        if path:
            self.load_toml(path)

    def _on_preset(self, _=None) -> None:
        name = self.preset_combo.currentData()
        if name:
            self.load_preset(name)

    def _choose_base_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if path:
            self.base_edit.setText(path)

    def _choose_nli_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Choose a local NLI model folder")
        if path:
            self.nli_edit.setText(path)

    def _choose_data_file(self, col: int) -> None:
        r = self.mix.currentRow()
        if r < 0:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Choose a data file", str(REPO_ROOT),
                                              "Data (*.jsonl *.json *.csv *.parquet)")
        if path:
            self.mix.item(r, col).setText(path)

    # ---- preview -----------------------------------------------------------------------------
    def _schedule_preview(self) -> None:
        if not self._loading:
            self._preview_timer.start()

    def preview_selected(self) -> None:
        r = self.mix.currentRow()
        if r < 0:
            return
        self._preview_req += 1
        req = self._preview_req
        d, errs = self.dataset_row(r)
        name = d.get("name") or f"row {r + 1}"
        if errs:
            self._preview_error(req, "; ".join(f"{k}: {v}" for k, v in errs.items()))
            return
        try:
            spec = DatasetSpec.model_validate({k: v for k, v in d.items() if v is not None})
        except Exception as exc:  # noqa: BLE001 - pydantic ValidationError
            self._preview_error(req, f"{name}: {str(exc).splitlines()[-1] if str(exc) else exc}")
            return
        src = Path(spec.source).expanduser()
        if spec.source and not src.is_absolute():
            for root in (self.config_dir, REPO_ROOT):
                if (root / src).exists():
                    spec = spec.model_copy(update={"source": str((root / src).resolve())})
                    break
        self.preview_status.setStyleSheet("")
        self.preview_status.setText(f"Loading a preview of {name}…")

        # the truncation estimate uses the plan's smallest train window
        max_length = min((int(st.get("max_length") or 256) for st in self.stages
                          if st.get("type") == "train"), default=256)

        def work():
            from backend.data import preview
            with _PREVIEW_LOCK:  # `datasets` is not safe to load from two threads at once
                if req != self._preview_req:
                    return None  # superseded while waiting
                return preview(spec, 5, max_length=max_length)

        self.bg.submit(work, lambda recs: self._preview_done(req, name, recs),
                       lambda exc: self._preview_error(req, f"{name}: {exc}"))

    def _preview_done(self, req: int, name: str, records) -> None:
        if req != self._preview_req or records is None:
            return
        self.preview_status.setStyleSheet("")
        notes = "".join(f"\n• {n}" for n in getattr(records, "notes", []))  # data quirks, counted
        self.preview_status.setText(f"First {len(records)} mapped records of {name}:{notes}")
        self.preview_table.setRowCount(len(records))
        for i, rec in enumerate(records):
            for c, value in enumerate((rec.id, rec.kind, rec.prompt, rec.context, rec.reference)):
                text = "" if value is None else str(value)
                item = QTableWidgetItem(text.replace("\n", " ")[:300])
                item.setToolTip(text[:2000])
                self.preview_table.setItem(i, c, item)

    def _preview_error(self, req: int, msg: str) -> None:
        if req != self._preview_req:
            return
        self.preview_table.setRowCount(0)
        self.preview_status.setStyleSheet(f"color: {ERROR_RED}; font-style: normal;")
        self.preview_status.setText(f"⚠ Preview failed — {msg}")

    def preview_text(self) -> str:
        return self.preview_status.text()

    # ---- hint --------------------------------------------------------------------------------
    def show_hint(self, text: str | None) -> None:
        if text:
            self.hint.setText(text)
            self.hint.show()
        else:
            self.hint.hide()


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_none(v) for v in value if v is not None]
    return value


def _error_lines(text: str, stages: list[dict[str, Any]]) -> list[str]:
    """ConfigError text → one line per problem, stage indexes annotated with the stage name."""
    lines = []
    for ln in text.splitlines():
        ln = ln.strip()
        if not ln or ln.startswith("invalid config"):
            continue
        if re.match(r"config: (stages|data|model|judges)\b", ln):
            ln = ln[len("config: "):]  # model-level checks name the field themselves
        m = re.match(r"stages\.(\d+)(\.|:)", ln)
        if m and int(m.group(1)) < len(stages):
            nm = stages[int(m.group(1))].get("name")
            if nm:
                ln = f"stages.{m.group(1)} ({nm}){ln[m.end(1):]}"
        lines.append(ln)
    return lines or [text.strip()]
