"""Bottom pane: the run log's events (selected run or all runs), and why a run failed or died."""
from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QHBoxLayout, QLabel, QPlainTextEdit,
                               QSplitter, QTableView, QVBoxLayout, QWidget)

from backend.vocab import Status

from .base import TableModel, boxed, read_only_table
from .style import LEVEL_COLORS, bold, fmt_time, mono_font, status_color

EVENT_COLUMNS = ("Time", "Run", "Stage", "Level", "Message")
MAX_EVENTS = 50_000  # kept in memory; the view shows the filtered tail


class EventsModel(TableModel):
    """Every event read so far (``all``); ``rows`` are those of the run filter."""

    COLUMNS = EVENT_COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self.all: list[dict[str, Any]] = []
        self.run_filter: str | None = None
        self.run_names: dict[str, str] = {}

    def _match(self, ev: dict[str, Any]) -> bool:
        return self.run_filter is None or ev.get("run_id") == self.run_filter

    def add(self, rows: list[dict[str, Any]]) -> None:
        self.all.extend(rows)
        if len(self.all) > MAX_EVENTS:
            del self.all[: len(self.all) - MAX_EVENTS]
        new = [r for r in rows if self._match(r)]
        if new:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(new) - 1)
            self.rows.extend(new)
            self.endInsertRows()

    def set_filter(self, run_id: str | None) -> None:
        self.beginResetModel()
        self.run_filter = run_id
        self.rows = [r for r in self.all if self._match(r)]
        self.endResetModel()

    def cell(self, ev: dict[str, Any], col: int, role: int) -> Any:
        level = ev.get("level") or "info"
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return fmt_time(ev.get("time"))
            if col == 1:
                rid = ev.get("run_id")
                return self.run_names.get(rid, rid) if rid else "—"
            if col == 2:
                return "" if ev.get("stage_idx") is None else str(ev["stage_idx"])
            if col == 3:
                return level
            if col == 4:
                return (ev.get("message") or "").replace("\n", " ⏎ ")
        elif role == Qt.ItemDataRole.ForegroundRole:
            return QColor(LEVEL_COLORS.get(level, "#222222"))
        elif role == Qt.ItemDataRole.FontRole and level == "error":
            return bold()
        elif role == Qt.ItemDataRole.ToolTipRole:
            text = ev.get("message") or ""
            if ev.get("details"):
                try:
                    details = json.dumps(json.loads(ev["details"]), indent=2)[:3000]
                except (TypeError, ValueError):
                    details = str(ev["details"])[:3000]
                text += "\n\n" + details
            return text
        return None


class EventsPane(QWidget):
    """Events table; for a failed or died run a red box with the error and the stderr tail."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = EventsModel(self)
        self.current_run: dict[str, Any] | None = None
        self.title = QLabel("Events — all runs", self, objectName="SectionTitle")
        self.all_runs = QCheckBox("Show all runs", self, toggled=lambda _: self._apply_filter())
        self.view = read_only_table(QTableView(
            self, selectionBehavior=QAbstractItemView.SelectionBehavior.SelectRows, wordWrap=False))
        self.view.setModel(self.model)
        hdr = self.view.horizontalHeader()
        for col, w in enumerate((80, 150, 52, 60)):
            hdr.resizeSection(col, w)
        hdr.setStretchLastSection(True)
        self.model.rowsInserted.connect(self._follow_tail)

        self.problem_title = QLabel(self, wordWrap=True)
        self.problem = QPlainTextEdit(self, objectName="ProblemText", readOnly=True, font=mono_font(),
                                      lineWrapMode=QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.problem_box = QWidget(self, visible=False)
        boxed(QVBoxLayout, [self.problem_title, (self.problem, 1)], self.problem_box, margins=0)
        self.split = QSplitter(Qt.Orientation.Horizontal, self)
        self.split.addWidget(self.view)
        self.split.addWidget(self.problem_box)
        self.split.setStretchFactor(0, 3)
        self.split.setStretchFactor(1, 2)
        lay = boxed(QVBoxLayout, [boxed(QHBoxLayout, [(self.title, 1), self.all_runs]), (self.split, 1)],
                    self)
        lay.setContentsMargins(4, 2, 4, 4)

    # ---- inputs -------------------------------------------------------------------------------
    def add_events(self, rows: list[dict[str, Any]]) -> None:
        self.model.add(rows)

    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        self.model.run_names = {r["id"]: r.get("name") or r["id"] for r in runs}
        if self.current_run is not None:
            fresh = next((r for r in runs if r["id"] == self.current_run["id"]), None)
            if fresh is not None and fresh != self.current_run:
                self.current_run = fresh
                self._show_problem()

    def set_current_run(self, run: dict[str, Any] | None) -> None:
        self.current_run = run
        self._apply_filter()
        self._show_problem()

    # ---- view ---------------------------------------------------------------------------------
    def _apply_filter(self) -> None:
        run = self.current_run
        if run is None or self.all_runs.isChecked():
            self.model.set_filter(None)
            self.title.setText("Events — all runs")
        else:
            self.model.set_filter(run["id"])
            self.title.setText(f"Events — {run.get('name') or run['id']}")
        self.view.scrollToBottom()

    def _follow_tail(self, *_):
        sb = self.view.verticalScrollBar()
        if sb.value() >= sb.maximum() - 3:
            self.view.scrollToBottom()

    def problem_text(self) -> str:
        return self.problem.toPlainText()

    def _show_problem(self) -> None:
        run = self.current_run
        if run is None or run.get("status") not in (Status.FAILED, Status.DIED):
            self.problem_box.hide()
            self.problem.clear()
            return
        status = run["status"]
        color = status_color(status).name()
        how = []
        if run.get("exit_code") is not None:
            how.append(f"exit code {run['exit_code']}")
        if run.get("signal"):
            how.append(f"signal {run['signal']}")
        suffix = f" ({', '.join(how)})" if how else ""
        self.problem_title.setText(f"<b style='color:{color}'>Run {status}{suffix}</b> — "
                                   "error, traceback and worker stderr:")
        parts = [f"error: {run.get('error') or 'no error message recorded'}"]
        if run.get("error_tail"):
            parts.append("— traceback —\n" + run["error_tail"].rstrip())
        if run.get("stderr_tail"):
            parts.append("— worker stderr (tail) —\n" + run["stderr_tail"].rstrip())
        if len(parts) == 1:
            parts.append("(no traceback or stderr was captured for this run)")
        self.problem.setPlainText("\n\n".join(parts))
        self.problem.verticalScrollBar().setValue(self.problem.verticalScrollBar().maximum())
        self.problem_box.show()
