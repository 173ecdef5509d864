"""The data mixture editor: one table row per data set, and a preview of a row's first mapped
records, loaded off the GUI thread."""
from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError
from PySide6.QtCore import QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QGroupBox, QHBoxLayout, QLabel,
                               QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from backend.config import DatasetSpec, Loc, problems_of
from backend.paths import REPO_ROOT

from ..base import ask_path, boxed
from ..poller import Background
from ..style import ERROR_RED
from .draft import Problem, data_path, dataset_from_cells
from .forms import BAD_FILL, flag_widget

DATA_FORMATS = ["auto", "records", "alpaca", "sharegpt", "squad", "cnn_dailymail", "xsum",
                "ifeval", "custom"]
KIND_CHOICES = ["(from format)", "instruction", "qa_extractive", "qa_abstractive", "summarization"]
MIX_COLUMNS = ("Name", "Source", "Format", "Kind", "Columns", "Weight", "Budget", "Eval source")
FIELDS = ("name", "source", "format", "kind", "columns", "weight", "budget", "eval_source")
MC = {name.split(" ")[0]: i for i, name in enumerate(MIX_COLUMNS)}  # Name, Source, ..., Eval
COMBOS = {MC["Format"]: DATA_FORMATS, MC["Kind"]: KIND_CHOICES}
TIPS = {"Columns": "column mapping, record field=source column, e.g. "
                   "\"prompt=query, context=passage\" (empty: the format's default)",
        "Weight": "share of the mixture (normalised over data sets)",
        "Budget": "exact number of examples; overrides the weight",
        "Kind": "record kind, when the format does not imply one"}
_PREVIEW_LOCK = threading.Lock()  # `datasets` is not safe to load from two threads at once


def _table(parent: QWidget, columns, widths, **props) -> QTableWidget:
    table = QTableWidget(0, len(columns), parent, **props)
    table.setHorizontalHeaderLabels(list(columns))
    table.verticalHeader().setVisible(False)
    for col, w in enumerate(widths):
        table.horizontalHeader().resizeSection(col, w)
    return table


class MixtureEditor(QGroupBox):
    edited = Signal()

    def __init__(self, background: Background, config_dir: Callable[[], Path], parent=None):
        super().__init__("Data mixture", parent)
        self.bg = background
        self.config_dir = config_dir
        # the plan's train window, for the preview's truncation estimate (the tab sets it)
        self.train_window: Callable[[], int | None] = lambda: None
        self._loading = False
        self._preview_req = 0
        self.table = _table(self, MIX_COLUMNS, (120, 200, 116, 134, 190, 58, 58, 180),
                            selectionBehavior=QAbstractItemView.SelectionBehavior.SelectRows,
                            selectionMode=QAbstractItemView.SelectionMode.SingleSelection,
                            itemChanged=self._changed, itemSelectionChanged=self._schedule_preview)
        self.table.verticalHeader().setDefaultSectionSize(26)
        for name, tip in TIPS.items():
            self.table.horizontalHeaderItem(MIX_COLUMNS.index(name)).setToolTip(tip)
        btns = QHBoxLayout()
        for text, slot in (("Add data set", lambda: self.add_row({"name": self._unique_name(),
                                                                  "source": ""})),
                           ("Remove", self.remove_row),
                           ("Source file…", lambda: self._choose_file(MC["Source"])),
                           ("Eval file…", lambda: self._choose_file(MC["Eval"]))):
            btns.addWidget(QPushButton(text, self, clicked=slot))
        btns.addStretch(1)
        btns.addWidget(QPushButton("Preview", self, clicked=self.preview_selected))
        self.preview_status = QLabel("Select a data set to preview its first 5 mapped records.",
                                     self, wordWrap=True, objectName="DefaultsNote")
        self.preview_table = _table(self, ("id", "kind", "prompt", "context", "reference"),
                                    (110, 95, 200, 200, 160), wordWrap=False,
                                    editTriggers=QAbstractItemView.EditTrigger.NoEditTriggers)
        self.preview_table.horizontalHeader().setStretchLastSection(True)
        pw = QWidget(self)
        boxed(QVBoxLayout, [self.preview_status, (self.preview_table, 1)], pw, margins=0)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(pw)
        split.setSizes([130, 150])
        boxed(QVBoxLayout, [btns, (split, 1)], self)
        self._preview_timer = QTimer(self, singleShot=True, interval=250,
                                     timeout=self.preview_selected)

    # ---- rows ------------------------------------------------------------------------------------
    def set_rows(self, rows: list[dict[str, Any]]) -> None:
        self._loading = True
        try:
            self.table.setRowCount(0)
            for d in rows:
                self.add_row(d)
        finally:
            self._loading = False
        if self.table.rowCount():
            self.table.selectRow(0)

    def add_row(self, d: dict[str, Any]) -> int:
        was, self._loading = self._loading, True
        try:
            r = self.table.rowCount()
            self.table.insertRow(r)
            weight = d.get("weight", 1.0) if "weight" in d or d.get("budget") is None else None
            cells = {**d, "kind": d.get("kind") or KIND_CHOICES[0], "weight": weight,
                     "columns": ", ".join(f"{k}={v}" for k, v in (d.get("columns") or {}).items())}
            for c, key in enumerate(FIELDS):
                value = cells.get(key)
                text = "" if value is None else f"{value:g}" if key == "weight" else str(value)
                if c in COMBOS:
                    combo = QComboBox(self.table)
                    combo.addItems(COMBOS[c])
                    combo.setCurrentText(text or COMBOS[c][0])
                    combo.currentIndexChanged.connect(self._changed)
                    combo.currentIndexChanged.connect(self._schedule_preview)
                    self.table.setCellWidget(r, c, combo)
                    continue
                item = QTableWidgetItem(text)
                if key in ("source", "eval_source"):
                    item.setToolTip(text)
                self.table.setItem(r, c, item)
            # fields the table has no column for, kept as loaded
            self.table.item(r, 0).setData(Qt.ItemDataRole.UserRole,
                                          {k: v for k, v in d.items() if k not in FIELDS})
        finally:
            self._loading = was
        self._changed()
        return r

    def remove_row(self) -> None:
        r = self.table.currentRow()
        if r >= 0:
            self.table.removeRow(r)
            self.edited.emit()

    def set_cell(self, r: int, column: str, text: str) -> None:
        """Edit a cell programmatically (tests, file choosers)."""
        c = MC[column]
        w = self.table.cellWidget(r, c)
        if isinstance(w, QComboBox):
            w.setCurrentText(text)
        else:
            self.table.item(r, c).setText(text)

    def row(self, r: int) -> tuple[dict[str, Any], dict[str, str]]:
        """A row as a data set dict, and {field: why its cell did not parse}."""
        cells = {key: self._text(r, c) for c, key in enumerate(FIELDS)}
        cells["kind"] = "" if cells["kind"] == KIND_CHOICES[0] else cells["kind"]
        return dataset_from_cells(cells, self.table.item(r, 0).data(Qt.ItemDataRole.UserRole))

    def rows(self) -> tuple[list[dict[str, Any]], list[Problem]]:
        data, problems = [], []
        for r in range(self.table.rowCount()):
            d, errors = self.row(r)
            data.append({k: v for k, v in d.items() if v is not None})
            problems += [Problem(("data", r, k), msg) for k, msg in errors.items()]
        return data, problems

    def mark(self, bad: list[Loc]) -> None:
        """Fill the cells of bad fields; a problem with the mixture as a whole marks the weights."""
        cells = set()
        for loc in bad:
            if len(loc) > 1 and isinstance(loc[0], int):
                if loc[1] in FIELDS:
                    cells.add((loc[0], FIELDS.index(loc[1])))
            else:
                cells.update((r, MC["Weight"]) for r in range(self.table.rowCount()))
        with QSignalBlocker(self.table):
            for r in range(self.table.rowCount()):
                for c in range(len(MIX_COLUMNS)):
                    if (item := self.table.item(r, c)) is not None:
                        item.setData(Qt.ItemDataRole.BackgroundRole,
                                     QColor(BAD_FILL) if (r, c) in cells else None)
                    elif (w := self.table.cellWidget(r, c)) is not None:
                        flag_widget(w, (r, c) in cells)

    def _text(self, r: int, c: int) -> str:
        if isinstance(w := self.table.cellWidget(r, c), QComboBox):
            return w.currentText()
        it = self.table.item(r, c)
        return it.text().strip() if it else ""

    def _unique_name(self) -> str:
        names = {self._text(r, MC["Name"]) for r in range(self.table.rowCount())}
        return next(n for i in itertools.count(self.table.rowCount() + 1)
                    if (n := f"data{i}") not in names)

    def _changed(self, *_) -> None:
        if not self._loading:
            self.edited.emit()

    def _choose_file(self, col: int) -> None:
        if (r := self.table.currentRow()) >= 0:
            ask_path(self, "Choose a data file", self.table.item(r, col).setText, str(REPO_ROOT),
                     "Data (*.jsonl *.json *.csv *.parquet)")

    # ---- preview ---------------------------------------------------------------------------------
    def _schedule_preview(self, *_) -> None:
        if not self._loading:
            self._preview_timer.start()

    def preview_selected(self) -> None:
        r = self.table.currentRow()
        if r < 0:
            return
        self._preview_req += 1
        req = self._preview_req
        d, errs = self.row(r)
        name = d.get("name") or f"row {r + 1}"
        if errs:
            self._preview_error(req, "; ".join(f"{k}: {v}" for k, v in errs.items()))
            return
        try:
            spec = DatasetSpec.model_validate({k: v for k, v in d.items() if v is not None})
        except ValidationError as exc:
            self._preview_error(req, f"{name}: " + "; ".join(
                f"{'.'.join(map(str, loc))}: {msg}" for loc, msg in problems_of(exc)))
            return
        if spec.source:
            src = data_path(spec.source, self.config_dir())
            if src.exists():
                spec = spec.model_copy(update={"source": str(src.resolve())})
        self.preview_status.setStyleSheet("")
        self.preview_status.setText(f"Loading a preview of {name}…")

        max_length = self.train_window()

        def work():
            from backend.data import preview
            with _PREVIEW_LOCK:
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
