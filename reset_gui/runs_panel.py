"""The runs list: every run in the log with its status, its Slurm job and node (a column shown
only when some run has a job), current stage, progress, elapsed and ETA."""
from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QRect, QSignalBlocker, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (QAbstractItemView, QApplication, QLabel, QStyle, QStyledItemDelegate,
                               QStyleOptionProgressBar, QTableView, QVBoxLayout, QWidget)

from backend import queries
from backend.vocab import FINAL_STATUSES, Status

from .base import TableModel, boxed, read_only_table
from .style import RIGHT, bold, fmt_duration, fmt_time, status_color, status_icon

COLUMNS = ("Name", "Preset", "Status", "Job", "Stage", "Progress", "Elapsed", "ETA",
           "Started from")
COL = {name: i for i, name in enumerate(COLUMNS)}
PROGRESS_ROLE = Qt.ItemDataRole.UserRole + 1
RUN_ID_ROLE = Qt.ItemDataRole.UserRole + 2


def _stage_plan(data: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for i, st in enumerate(data.get("stages") or []):
        if isinstance(st, dict):
            out.append((str(st.get("name") or f"{st.get('type')}{i}"), str(st.get("type", "?"))))
    return out


class RunsModel(TableModel):
    """Runs, newest first (``rows``), with their stages for the progress columns."""

    COLUMNS = COLUMNS

    def __init__(self, parent=None):
        super().__init__(parent)
        self.stages: dict[str, dict[int, dict[str, Any]]] = {}
        self._plans: dict[str, list[tuple[str, str]]] = {}
        self._names: dict[str, str] = {}
        self._on_slurm: set[str] = set()  # runs whose config says executor = "slurm"
        self.jobs: dict[str, queries.SlurmJob] = {}  # their jobs, as the supervisor recorded them
        self._settled: set[str] = set()  # Slurm runs over and read since: their job is final

    # ---- data in ------------------------------------------------------------------------------
    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        runs = sorted(runs, key=lambda r: r.get("created_at") or 0, reverse=True)  # newest first
        for r in runs:
            if r["id"] not in self._plans:
                data = queries.config_dict(r.get("config_toml"))
                self._plans[r["id"]] = _stage_plan(data)
                if (data.get("compute") or {}).get("executor") == "slurm":
                    self._on_slurm.add(r["id"])
            self._names[r["id"]] = r.get("name") or r["id"]
        if [r["id"] for r in runs] == [r["id"] for r in self.rows]:
            self.rows = runs
            self._changed_all()
        else:
            self.beginResetModel()
            self.rows = runs
            self.endResetModel()
        self.refresh_jobs()

    def refresh_jobs(self) -> bool:
        """Re-read the jobs of Slurm runs not yet over (the supervisor records the node once the
        job starts, which no run-log row announces); True when one changed."""
        changed = False
        for r in self.rows:
            if r["id"] not in self._on_slurm or r["id"] in self._settled:
                continue
            if r.get("status") in FINAL_STATUSES:
                self._settled.add(r["id"])  # read once more after the end, then never again
            job = queries.slurm_job(r)
            if job and job != self.jobs.get(r["id"]):
                self.jobs[r["id"]] = job
                changed = True
        if changed and self.rows:
            self.dataChanged.emit(self.index(0, COL["Job"]),
                                  self.index(len(self.rows) - 1, COL["Job"]))
        return changed

    def set_stages(self, stages: list[dict[str, Any]]) -> None:
        by_run: dict[str, dict[int, dict[str, Any]]] = {}
        for st in stages:
            by_run.setdefault(st["run_id"], {})[int(st["idx"])] = st
        self.stages = by_run
        self._changed_all()

    def tick(self) -> None:
        """Elapsed/ETA of running runs move with the clock; Slurm jobs are re-read."""
        self.refresh_jobs()
        if self.rows:
            self.dataChanged.emit(self.index(0, COL["Elapsed"]),
                                  self.index(len(self.rows) - 1, COL["ETA"]))

    def _changed_all(self) -> None:
        if self.rows:
            self.dataChanged.emit(self.index(0, 0),
                                  self.index(len(self.rows) - 1, len(COLUMNS) - 1))

    # ---- derived values -----------------------------------------------------------------------
    def run_at(self, row: int) -> dict[str, Any] | None:
        return self.rows[row] if 0 <= row < len(self.rows) else None

    def row_of(self, run_id: str | None) -> int:
        return next((i for i, r in enumerate(self.rows) if r["id"] == run_id), -1)

    def current_stage(self, run: dict[str, Any]) -> dict[str, Any] | None:
        stages = self.stages.get(run["id"], {})
        idx = run.get("current_stage")
        if idx is not None and int(idx) in stages:
            return stages[int(idx)]
        return stages[max(stages)] if stages else None

    def stage_text(self, run: dict[str, Any]) -> str:
        plan = self._plans.get(run["id"], [])
        st = self.current_stage(run)
        if st is None:
            return f"0/{len(plan)}" if plan and run.get("status") in (Status.QUEUED, Status.RUNNING) else ""
        n = len(plan) or (max(self.stages.get(run["id"], {0: 0})) + 1)
        return f"{int(st['idx']) + 1}/{n} {st.get('name') or st.get('type')}"

    def progress(self, run: dict[str, Any]) -> tuple[int, int] | None:
        st = self.current_stage(run)
        if st is None or not st.get("total"):
            return None
        return int(st.get("done") or 0), int(st["total"])

    def elapsed(self, run: dict[str, Any]) -> float | None:
        start = run.get("started_at")
        if not start:
            return None
        end = run.get("ended_at") if run.get("status") != Status.RUNNING else None
        return (end or time.time()) - start

    def eta(self, run: dict[str, Any]) -> float | None:
        """Remaining time of the current stage, from its progress rate so far."""
        if run.get("status") != Status.RUNNING:
            return None
        st = self.current_stage(run)
        if st is None or st.get("status") != Status.RUNNING or not st.get("total"):
            return None
        done, total = int(st.get("done") or 0), int(st["total"])
        started = st.get("started_at")
        if not started or done <= 0 or done >= total:
            return None
        rate = done / max(1e-6, (st.get("updated_at") or time.time()) - started)
        remaining = (total - done) / rate
        # count from the last progress report, not from now
        since = time.time() - (st.get("updated_at") or time.time())
        return max(0.0, remaining - since)

    # ---- Qt model API -------------------------------------------------------------------------
    def cell(self, run: dict[str, Any], col: int, role: int) -> Any:
        status = run.get("status")
        if role == RUN_ID_ROLE:
            return run["id"]
        if role == Qt.ItemDataRole.DisplayRole:
            if col == COL["Name"]:
                return run.get("name") or run["id"]
            if col == COL["Preset"]:
                return run.get("preset") or ""
            if col == COL["Status"]:
                return status
            if col == COL["Job"]:
                job = self.jobs.get(run["id"])
                return (f"{job['job_id']} on {job['node']}" if job["node"] else job["job_id"]) \
                    if job else ""
            if col == COL["Stage"]:
                return self.stage_text(run)
            if col == COL["Progress"]:
                p = self.progress(run)
                return f"{p[0]}/{p[1]}" if p else ""
            if col == COL["Elapsed"]:
                return fmt_duration(self.elapsed(run))
            if col == COL["ETA"]:
                return fmt_duration(self.eta(run))
            if col == COL["Started from"]:
                parent = run.get("parent_run_id")
                return self._names.get(parent, parent) if parent else ""
        elif role == PROGRESS_ROLE and col == COL["Progress"]:
            return self.progress(run)
        elif role == Qt.ItemDataRole.ForegroundRole and col == COL["Status"]:
            return status_color(status)
        elif role == Qt.ItemDataRole.DecorationRole and col == COL["Status"]:
            return status_icon(status)
        elif role == Qt.ItemDataRole.FontRole and col == COL["Status"]:
            return bold()
        elif role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"{run.get('name')}  ({run['id']})", f"status: {status}",
                     f"created: {fmt_time(run.get('created_at'))}"]
            if run.get("error"):
                lines.append(f"error: {run['error']}")
            if job := self.jobs.get(run["id"]):
                lines.append(f"Slurm job {job['job_id']} {job['state']}"
                             + (f" ({job['reason']})" if job["reason"] else "")
                             + (f" on {job['node']}" if job["node"] else "")
                             + f", attempt {job['attempt']}")
            st = self.current_stage(run)
            if st and st.get("message"):
                lines.append(f"stage: {st['message']}")
            return "\n".join(lines)
        elif role == Qt.ItemDataRole.TextAlignmentRole and col in (COL["Elapsed"], COL["ETA"]):
            return int(RIGHT)
        return None


class ProgressDelegate(QStyledItemDelegate):
    """Draws the current stage's done/total as a progress bar."""

    def paint(self, painter, option, index):
        value = index.data(PROGRESS_ROLE)
        if not value:
            super().paint(painter, option, index)
            return
        done, total = value
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(option.rect, option.palette.highlight())
        bar = QStyleOptionProgressBar()
        bar.rect = QRect(option.rect.adjusted(3, 3, -3, -3))
        bar.minimum, bar.maximum = 0, max(1, total)
        bar.progress = min(done, total)
        bar.text = f"{done}/{total}"
        bar.textVisible = True
        bar.state = QStyle.StateFlag.State_Enabled | QStyle.StateFlag.State_Horizontal
        bar.palette = QPalette(option.palette)
        bar.palette.setColor(QPalette.ColorRole.Highlight, QColor("#5b9be0"))
        style = option.widget.style() if option.widget else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ProgressBar, bar, painter, option.widget)

    def sizeHint(self, option, index):  # noqa: N802
        return QSize(110, 22)


class RunsPanel(QWidget):
    run_selected = Signal(object)  # run id or None

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = RunsModel(self)
        self.view = read_only_table(QTableView(
            self, selectionBehavior=QAbstractItemView.SelectionBehavior.SelectRows,
            selectionMode=QAbstractItemView.SelectionMode.SingleSelection, alternatingRowColors=True,
            wordWrap=False), 24)
        self.view.setModel(self.model)
        self.view.setItemDelegateForColumn(COL["Progress"], ProgressDelegate(self.view))
        header = self.view.horizontalHeader()
        header.setStretchLastSection(True)
        for col, width in enumerate((116, 86, 106, 124, 100, 92, 56, 50, 100)):  # as COLUMNS
            header.resizeSection(col, width)
        self.empty = QLabel("No runs yet.\nSet one up on the Setup tab and press Launch.", self,
                            objectName="Placeholder", alignment=Qt.AlignmentFlag.AlignCenter)
        boxed(QVBoxLayout, [QLabel("Runs", self, objectName="SectionTitle"), (self.view, 1),
                            (self.empty, 1)], self, margins=4)
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.model.modelReset.connect(self._update_empty)
        QTimer(self, timeout=self._tick, interval=1000).start()
        self._selected: str | None = None
        self._update_empty()

    def _update_empty(self) -> None:
        has = bool(self.model.rows)
        self.view.setVisible(has)
        self.empty.setVisible(not has)
        self.view.setColumnHidden(COL["Job"], not self.model.jobs)

    def _tick(self) -> None:
        self.model.tick()
        self.view.setColumnHidden(COL["Job"], not self.model.jobs)

    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        keep = self._selected
        self.model.set_runs(runs)
        self._update_empty()
        if keep:
            self.select_run(keep, emit=False)

    def set_stages(self, stages: list[dict[str, Any]]) -> None:
        self.model.set_stages(stages)

    def selected_run(self) -> dict[str, Any] | None:
        return self.model.run_at(self.model.row_of(self._selected))

    def select_run(self, run_id: str | None, emit: bool = True) -> bool:
        row = self.model.row_of(run_id)
        if row < 0:
            return False
        if emit:
            self.view.selectRow(row)
        else:
            with QSignalBlocker(self.view.selectionModel()):
                self.view.selectRow(row)
            self.view.viewport().update()
        self._selected = run_id
        return True

    def _on_selection(self, *_):
        rows = self.view.selectionModel().selectedRows()
        run = self.model.run_at(rows[0].row()) if rows else None
        new = run["id"] if run else None
        if new != self._selected:
            self._selected = new
            self.run_selected.emit(new)
