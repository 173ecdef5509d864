"""A form kit for pydantic models: one editor per field, generated from its annotation and
bounds (spin boxes for numbers, check boxes for booleans, combos for Literals, text for the rest),
so a new field in backend.config shows up in the GUI without GUI changes."""
from __future__ import annotations

import json
import math
import types
import typing
from typing import Any, Callable, Literal

import annotated_types
from pydantic import BaseModel
from pydantic_core import to_jsonable_python
from PySide6.QtCore import QMargins, QSignalBlocker, Qt, Signal
from PySide6.QtGui import QColor, QPalette, QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QGridLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QSpinBox, QWidget)

from ..style import ERROR_RED
from .draft import parse_mapping

BAD_FILL = "#fbdada"
DEFAULTS_NOTE = ("Defaults are ReSet Studio defaults, not values from the paper "
                 "(it does not publish them).")


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
    return to_jsonable_python(value, exclude_none=True)  # models (and lists of them) as plain data


class SciSpinBox(QDoubleSpinBox):
    """A float spin box that shows 0.0003 as 0.0003 (or 3e-05), not 0.00 (given decimals=12)."""

    def textFromValue(self, value: float) -> str:  # noqa: N802
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text.strip())
        except ValueError:
            return self.value()

    def validate(self, text, pos):
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

    def __init__(self, name: str, field, on_change: Callable[[], None], parent=None,
                 multiline: bool = False):
        self.default = _jsonable(field.get_default(call_default_factory=True))
        ann, self.optional = _unwrap_optional(field.annotation)
        origin, args, b = typing.get_origin(ann), typing.get_args(ann), _bounds(field)
        self.empty = None if self.optional else [] if origin is list else {}
        none = "; empty = none" if self.optional else ""
        if ann is bool:
            self.kind, w = "bool", QCheckBox(parent)
        elif ann is int:  # an optional number's "none" is one below the minimum
            self.kind, w = "int", QSpinBox(
                parent, minimum=int(b.get("ge", b.get("gt", -10**9))) - self.optional,
                maximum=int(min(b.get("le", b.get("lt", 2**31 - 2)), 2**31 - 2)),
                specialValueText="— none —" if self.optional else "")
        elif ann is float:
            d = self.default if isinstance(self.default, (int, float)) and self.default else 0.1
            # allow the open boundary itself, so the validator (not the widget) explains why not
            self.kind, w = "float", SciSpinBox(
                parent, decimals=12, minimum=b.get("ge", b.get("gt", -1e9)),
                maximum=b.get("le", b.get("lt", 1e9)), singleStep=10 ** math.floor(math.log10(abs(d))))
        elif origin is Literal:
            self.kind, w = "literal", QComboBox(parent)
            for c in ([None] if self.optional else []) + list(args):
                w.addItem("— none —" if c is None else str(c), c)
        elif ann is str and multiline:  # shell lines and the like: newlines kept
            self.kind, w = "text", QPlainTextEdit(parent, tabChangesFocus=True, fixedHeight=54)
        elif ann is str or (origin is list and args[:1] == (str,)):
            self.kind, w = ("str" if ann is str else "list_str"), QLineEdit(
                parent, placeholderText="comma-separated; empty = none" if origin is list else "")
        elif origin is dict and len(args) == 2 and args[0] is str and args[1] in (int, float, str):
            self.kind, self.value_type = "dict", args[1]
            w = QLineEdit(parent, placeholderText="key=value, key=value" + none)
        else:
            self.kind, w = "json", QPlainTextEdit(parent, tabChangesFocus=True, fixedHeight=74,
                                                  placeholderText="JSON" + none)
        signal = {"bool": "toggled", "int": "valueChanged", "float": "valueChanged",
                  "literal": "currentIndexChanged"}.get(self.kind, "textChanged")
        getattr(w, signal).connect(lambda *_: on_change())
        self.widget = w
        tip = f"{name}: default {json.dumps(self.default)} (ReSet Studio default)"
        if b:
            tip += "\nrange: " + ", ".join(f"{k} {v:g}" for k, v in b.items())
        w.setToolTip(tip + (f"\n{field.description}" if field.description else ""))

    def set(self, value: Any) -> None:
        w, value = self.widget, _jsonable(value)
        with QSignalBlocker(w):
            if self.kind == "bool":
                w.setChecked(bool(value))
            elif self.kind == "int":
                w.setValue(w.minimum() if value is None else int(value))
            elif self.kind == "float":
                w.setValue(float(value or 0.0))
            elif self.kind == "literal":
                w.setCurrentIndex(max(0, w.findData(value)))
            elif self.kind == "str":
                w.setText("" if value is None else str(value))
            elif self.kind == "text":
                w.setPlainText("" if value is None else str(value))
            elif self.kind == "list_str":
                w.setText(", ".join(str(v) for v in (value or [])))
            elif self.kind == "dict":
                w.setText(", ".join(f"{k}={v}" for k, v in (value or {}).items()))
            elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                w.setPlainText("[\n" + ",\n".join("  " + json.dumps(v) for v in value) + "\n]")
            else:
                w.setPlainText("" if value is None else json.dumps(value))

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
        text = (w.toPlainText() if self.kind in ("json", "text") else w.text()).strip()
        if self.kind == "list_str":
            return [t.strip() for t in text.split(",") if t.strip()]
        if not text:
            return None if self.optional else "" if self.kind in ("str", "text") else self.empty
        if self.kind in ("str", "text"):
            return text
        if self.kind == "dict":
            return parse_mapping(text, self.value_type)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno})") from None


class ModelForm(QWidget):
    """A form for a pydantic model's fields (minus ``skip``), one label/editor pair per row."""

    changed = Signal()

    def __init__(self, model: type[BaseModel], skip: tuple[str, ...] = (), parent=None,
                 multiline: tuple[str, ...] = ()):
        super().__init__(parent)
        self.editors: dict[str, FieldEditor] = {}
        self.labels: dict[str, QLabel] = {}
        grid = QGridLayout(self, contentsMargins=QMargins(4, 4, 4, 4), horizontalSpacing=8,
                           verticalSpacing=5)
        for name, field in model.model_fields.items():
            if name in skip:
                continue
            row = len(self.editors)
            ed = FieldEditor(name, field, self.changed.emit, self, multiline=name in multiline)
            label = QLabel(name.replace("_", " "), self, toolTip=ed.widget.toolTip())
            self.editors[name], self.labels[name] = ed, label
            top = ed.kind in ("json", "text")  # a multi-line editor's label sits at its top
            grid.addWidget(label, row, 0, Qt.AlignmentFlag.AlignTop if top else Qt.AlignmentFlag(0))
            grid.addWidget(ed.widget, row, 1)
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(len(self.editors) + 1, 1)

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
            if v != ed.default or name == "name":
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

