"""The main window: runs list (left), Setup / Live / Samples / Compare tabs (right), events pane
(bottom). All data comes from the run log through a RunLogPoller in its own thread; runs are
started and stopped through backend.launcher on a worker thread."""
from __future__ import annotations

import os
import traceback
from typing import Any, Callable

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (QLabel, QMainWindow, QScrollArea, QSplitter, QStyle, QTabWidget,
                               QToolBar, QWidget)

from backend.launcher import Studio
from backend.runlog import RunLog
from backend.vocab import Status

from .base import RunView, open_warning
from .compare_tab import CompareTab
from .events_pane import EventsPane
from .live_tab import LiveTab
from .poller import Background, PollerThread
from .runs_panel import RunsPanel
from .samples_tab import SamplesTab
from .setup.tab import SetupTab
from .style import APP_NAME, STYLESHEET

DEMO_HINT = ("Press Launch to run the ReSet demo on the embedded model: every stage and plot in "
             "a few minutes on a laptop CPU (reset_demo is the fuller picture). The preset "
             "is loaded below; every value can be changed.")


def _scrollable(view: QWidget) -> QScrollArea:
    """A view inside a frameless scroll area: a view wider than its tab scrolls instead of
    stretching the whole window past the screen."""
    area = QScrollArea(widgetResizable=True, frameShape=QScrollArea.Shape.NoFrame)
    area.setWidget(view)
    return area


class MainWindow(QMainWindow):
    current_run_changed = Signal(object)

    def __init__(self, home: str | os.PathLike | None = None, parent=None, *,
                 poll_interval_ms: int = 400, start_polling: bool = True):
        super().__init__(parent)
        self.studio = Studio(home)
        self.runlog_path = self.studio.runlog_path
        self.setWindowTitle(APP_NAME)
        self.setStyleSheet(STYLESHEET)
        self.resize(1400, 900)
        self.runs: list[dict[str, Any]] = []
        self.current_run_id: str | None = None
        self._pending_select: str | None = None
        self._first_runs = True
        self._view_errors: set[str] = set()
        self._closed = False
        self.last_error: str | None = None

        startup_error = None
        n_runs = 0
        try:  # create the log if the home is new; one tiny query
            with RunLog(self.runlog_path) as log:
                n_runs = log.count("runs")
        except Exception as exc:  # noqa: BLE001
            startup_error = f"Cannot open the run log {self.runlog_path}: {exc}"

        self.bg = Background(self)
        # ---- widgets -------------------------------------------------------------------------
        self.runs_panel = RunsPanel(self)
        self.events = EventsPane(self)
        self.tabs = QTabWidget(self, documentMode=True)
        self.setup = SetupTab(self.studio, self, background=self.bg)
        self.tabs.addTab(self.setup, "Setup")
        self.live = LiveTab(self.runlog_path, self)
        self.samples = SamplesTab(self.runlog_path, self)
        self.compare = CompareTab(self.runlog_path, self)
        self.views: dict[str, RunView] = {"Live": self.live, "Samples": self.samples,
                                          "Compare": self.compare}
        for title, view in self.views.items():
            self.tabs.addTab(_scrollable(view), title)
        self.live.checkpoint_clicked.connect(self.open_checkpoint)
        self.compare.checkpoint_clicked.connect(self.open_checkpoint)
        self.samples.run_launched.connect(self._on_launched)

        top = QSplitter(Qt.Orientation.Horizontal, self, childrenCollapsible=False)
        top.addWidget(self.runs_panel)
        top.addWidget(self.tabs)
        top.setStretchFactor(1, 1)
        top.setSizes([400, 1000])
        outer = QSplitter(Qt.Orientation.Vertical, self, childrenCollapsible=False)
        outer.addWidget(top)
        outer.addWidget(self.events)
        outer.setStretchFactor(0, 1)
        outer.setSizes([700, 160])
        self.top_split, self.outer_split = top, outer
        self.setCentralWidget(outer)

        # ---- actions -------------------------------------------------------------------------
        tb = QToolBar("Runs", self, movable=False, iconSize=QSize(16, 16),
                      toolButtonStyle=Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.addToolBar(tb)
        icon = self.style().standardIcon
        self.act_launch = QAction(icon(QStyle.StandardPixmap.SP_MediaPlay), "Launch", self,
                                  toolTip="Launch the config on the Setup tab",
                                  shortcut=QKeySequence("Ctrl+Return"), triggered=self.launch)
        self.act_cancel = QAction(icon(QStyle.StandardPixmap.SP_MediaStop), "Cancel", self,
                                  toolTip="Stop the selected run gracefully (its last checkpoint is kept)",
                                  triggered=self.cancel_selected)
        self.act_resume = QAction(icon(QStyle.StandardPixmap.SP_BrowserReload), "Resume", self,
                                  toolTip="Continue the selected stopped run; finished stages are skipped",
                                  triggered=self.resume_selected)
        self.act_clone = QAction(icon(QStyle.StandardPixmap.SP_FileDialogNewFolder), "Clone run", self,
                                 toolTip="Load the selected run's config into Setup as a new run",
                                 triggered=self.clone_selected)
        tb.addActions([self.act_launch, self.act_cancel, self.act_resume, self.act_clone])
        self.toolbar = tb

        self.path_label = QLabel(f"Run log: {self.runlog_path}", self,
                                 textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.statusBar().addPermanentWidget(self.path_label)

        # ---- wiring --------------------------------------------------------------------------
        self.runs_panel.run_selected.connect(self.set_current_run)
        self.setup.validity_changed.connect(lambda ok: self._update_actions())
        self.setup.launched.connect(self._on_launched)
        self.poller = PollerThread(self.runlog_path, self, interval_ms=poll_interval_ms)
        p = self.poller.poller
        p.rows.connect(self._on_rows)
        p.runs_changed.connect(self._on_runs)
        p.stages_changed.connect(self._on_stages)
        p.error.connect(self._on_poll_error)
        self._update_actions()

        if startup_error:
            self._on_poll_error(startup_error)
        if n_runs == 0:
            self.show_empty_home()
        if start_polling:
            self.poller.start()

    # ---- views -------------------------------------------------------------------------------
    def _each_view(self, call: Callable[[RunView], None], what: str) -> None:
        for title, view in self.views.items():
            try:
                call(view)
            except Exception as exc:  # noqa: BLE001 - one view's bug must not stop the others
                if f"{title}.{what}" not in self._view_errors:  # report once, not every poll
                    self._view_errors.add(f"{title}.{what}")
                    traceback.print_exc()
                    self.statusBar().showMessage(f"{title} view: {type(exc).__name__}: {exc}", 10000)

    def show_tab(self, title: str) -> None:
        """Switch to a tab by its title (Setup, Live, Samples, Compare)."""
        for i in range(self.tabs.count()):
            if self.tabs.tabText(i) == title:
                self.tabs.setCurrentIndex(i)
                return

    def current_tab(self) -> str:
        return self.tabs.tabText(self.tabs.currentIndex())

    def show_empty_home(self) -> None:
        self.tabs.setCurrentWidget(self.setup)
        self.setup.show_hint(DEMO_HINT)

    # ---- poller slots ------------------------------------------------------------------------
    def _on_rows(self, table: str, rows: list) -> None:
        if table == "events":
            self.events.add_events(rows)
        elif table == "checkpoints":
            self.setup.checkpoint.add_checkpoints(rows)
        self._each_view(lambda v: v.on_rows(table, rows), "on_rows")

    def _on_runs(self, runs: list) -> None:
        self.runs = runs
        self.runs_panel.set_runs(runs)
        self.events.set_runs(runs)
        self._each_view(lambda v: v.set_runs(runs), "set_runs")
        if self._pending_select and self.runs_panel.select_run(self._pending_select):
            self._pending_select = None
        elif self._first_runs and runs and self.current_run_id is None:
            newest = max(runs, key=lambda r: r.get("created_at") or 0)
            self.runs_panel.select_run(newest["id"])
            self.show_tab("Live")
        if runs:
            self.setup.show_hint(None)
        self._first_runs = False
        self._update_actions()

    def _on_stages(self, stages: list) -> None:
        self.runs_panel.set_stages(stages)
        self._each_view(lambda v: v.on_rows("stages", stages), "on_rows")

    def _on_poll_error(self, msg: str) -> None:
        self.last_error = msg
        self.statusBar().showMessage(msg, 15000)

    # ---- selection ---------------------------------------------------------------------------
    def selected_run(self) -> dict[str, Any] | None:
        if self.current_run_id is None:
            return None
        return next((r for r in self.runs if r["id"] == self.current_run_id), None)

    def set_current_run(self, run_id: str | None) -> None:
        if run_id != self.current_run_id:
            self.current_run_id = run_id
            if run_id is not None and self.runs_panel._selected != run_id:
                self.runs_panel.select_run(run_id, emit=False)
            self.events.set_current_run(self.selected_run())
            self._each_view(lambda v: v.set_current_run(run_id), "set_current_run")
            self.current_run_changed.emit(run_id)
        self._update_actions()

    def select_run(self, run_id: str) -> bool:
        """Select a run in the list (as a click would)."""
        return self.runs_panel.select_run(run_id)

    def open_checkpoint(self, run_id: str, tag: str) -> None:
        self.show_tab("Samples")
        self.samples.open_checkpoint(run_id, tag)

    def _update_actions(self) -> None:
        run = self.selected_run()
        status = run.get("status") if run else None
        self.act_launch.setEnabled(self.setup.valid)
        self.act_cancel.setEnabled(status in (Status.RUNNING, Status.QUEUED))
        self.act_resume.setEnabled(status in (Status.FAILED, Status.DIED, Status.CANCELLED))
        self.act_clone.setEnabled(run is not None)

    # ---- actions -----------------------------------------------------------------------------
    def launch(self) -> None:
        if not self.setup.valid:
            self.tabs.setCurrentWidget(self.setup)
        self.setup.launch()

    def _on_launched(self, run_id: str) -> None:
        self.statusBar().showMessage(f"Launched {run_id}", 8000)
        self.setup.show_hint(None)
        self._pending_select = run_id
        self.show_tab("Live")
        self.poller.poll_now()

    def cancel_selected(self) -> None:
        self._run_action("Cancel", "Cancelling", self.studio.cancel, "Cancel requested for")

    def resume_selected(self) -> None:
        self._run_action("Resume", "Resuming", self.studio.resume, "Resumed")

    def _run_action(self, what: str, doing: str, fn, done: str) -> None:
        """Cancel/resume the selected run on the background thread; report in the status bar."""
        run = self.selected_run()
        if run is None:
            return
        rid, name = run["id"], run.get("name")
        self.statusBar().showMessage(f"{doing} {name}…")
        self.bg.submit(lambda: fn(rid),
                       lambda _: self._after_action(f"{done} {name}"),
                       lambda exc: self._action_failed(what, exc))

    def clone_selected(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        self.setup.clone_run(run)
        self.tabs.setCurrentWidget(self.setup)

    def _after_action(self, msg: str) -> None:
        self.statusBar().showMessage(msg, 8000)
        self.poller.poll_now()

    def _action_failed(self, what: str, exc: BaseException) -> None:
        msg = f"{what} failed: {exc}"
        self.last_error = msg
        self.statusBar().showMessage(msg, 15000)
        open_warning(self, f"{what} failed", str(exc))

    # ---- shutdown ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.poller.shutdown()
        self.bg.shutdown()
        self._each_view(lambda v: v.shutdown(), "shutdown")  # their query threads hold connections

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
