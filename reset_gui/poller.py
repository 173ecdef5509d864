"""Background reading of the run log, and a helper to run blocking calls off the UI thread.

``RunLogPoller`` lives in its own ``QThread`` with its own SQLite connection. Every tick it reads
the rows it has not seen yet from each append-only table (``id > last id``), at most ``batch``
rows per table per tick, so a run log with a million rows streams in over a few ticks instead of
freezing the window; the runs and stages tables are re-read only when their ``updated_at``
changed. Every few seconds, while a run is running, it reconciles the log (a worker that vanished
shows as *died*). A tick first reads ``PRAGMA data_version`` (``queries.data_version``): when no
other connection committed since the last full poll, no backlog is left and no reconcile is due,
that one pragma is the tick's only query, so an idle window costs the disk nothing.
The UI thread never touches SQLite for polling.
"""
from __future__ import annotations

import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import (QCoreApplication, QObject, QThread, QThreadPool, QTimer, Qt, Signal,
                            Slot)

from backend import queries
from backend.vocab import Status

APPEND_TABLES = ("metrics", "checkpoints", "prompts", "samples", "scores", "selections",
                 "selection_items", "evals", "events")


class RunLogPoller(QObject):
    rows = Signal(str, list)          # table, new rows (dicts) in id order
    runs_changed = Signal(list)       # full runs table, whenever any row changed
    stages_changed = Signal(list)     # full stages table, whenever any row changed
    error = Signal(str)
    caught_up = Signal()              # a tick that found no backlog left (used by screenshots/tests)

    def __init__(self, runlog_path: str | Path, *, interval_ms: int = 400, batch: int = 5000,
                 reconcile_s: float = 3.0, tables: tuple[str, ...] = APPEND_TABLES):
        super().__init__()
        self.path = Path(runlog_path)
        self.interval_ms = interval_ms
        self.batch = batch
        self.reconcile_s = reconcile_s
        self.tables = tables
        self.last_ids: dict[str, int] = {t: 0 for t in tables}
        self._runs_sig: Any = None
        self._stages_sig: Any = None
        self._last_reconcile = 0.0
        self._last_error = ""
        self._data_version: int | None = None  # as of the last full poll; None: poll fully
        self._backlog = False
        self._any_running = False  # only then can a vanished worker need reconciling
        self._log = None
        self._timer: QTimer | None = None
        self._busy = False

    # ---- lifecycle (called in the poller's thread) -------------------------------------------
    @Slot()
    def start(self) -> None:
        self._timer = QTimer(self, singleShot=True, timeout=self.tick)
        self.tick()

    @Slot()
    def stop(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if self._log is not None:
            try:
                self._log.close()
            except Exception:  # noqa: BLE001
                pass
            self._log = None

    @Slot()
    def poll_now(self) -> None:
        if self._timer is not None:
            self._timer.start(0)

    # ---- one poll ----------------------------------------------------------------------------
    def _open(self):
        if self._log is None:
            from backend.runlog import RunLog

            self._log = RunLog(self.path)
        return self._log

    @Slot()
    def tick(self) -> None:
        if self._busy:
            return
        self._busy = True
        backlog = False
        try:
            log = self._open()
            now = time.monotonic()
            version = queries.data_version(log)
            first = self._data_version is None  # (re)opened: reconcile whatever the log holds
            reconcile = ((first or self._any_running)
                         and now - self._last_reconcile >= self.reconcile_s)
            if version == self._data_version and not self._backlog and not reconcile:
                self.caught_up.emit()  # nothing committed elsewhere, nothing left to stream
                return
            self._data_version = version
            if reconcile:
                self._last_reconcile = now
                from backend.launcher import reconcile_log

                reconcile_log(log)  # its own writes do not move data_version: read below
            self._poll_runs(log)
            self._poll_stages(log)
            for table in self.tables:
                rows = log.read_since(table, self.last_ids[table], limit=self.batch)
                if rows:
                    self.last_ids[table] = int(rows[-1]["id"])
                    self.rows.emit(table, rows)
                    if len(rows) >= self.batch:
                        backlog = True
            self._last_error = ""
            self._backlog = backlog
            if not backlog:
                self.caught_up.emit()
        except Exception as exc:  # noqa: BLE001 - a locked/corrupt log must not kill the thread
            msg = f"run log: {type(exc).__name__}: {exc}"
            if msg != self._last_error:  # report each distinct problem once
                self._last_error = msg
                self.error.emit(msg)
            if self._log is not None:
                self.stop_log()  # reopen on the next tick (file replaced, lock, corruption)
        finally:
            self._busy = False
            if self._timer is not None:
                # a backlog streams in quickly (but lets the UI thread breathe between batches)
                self._timer.start(30 if backlog else self.interval_ms)

    def stop_log(self) -> None:
        self._runs_sig = self._stages_sig = self._data_version = None
        try:
            self._log.close()
        except Exception:  # noqa: BLE001
            pass
        self._log = None

    def _poll_runs(self, log) -> None:
        sig = queries.table_signature(log, "runs")
        if sig != self._runs_sig:
            runs = log.list_runs()
            self._runs_sig = sig
            self._any_running = any(r["status"] == Status.RUNNING for r in runs)
            self.runs_changed.emit(runs)

    def _poll_stages(self, log) -> None:
        sig = queries.table_signature(log, "stages")
        if sig != self._stages_sig:
            stages = queries.all_stages(log)
            self._stages_sig = sig
            self.stages_changed.emit(stages)


class PollerThread(QObject):
    """Owns a QThread running a RunLogPoller; ``shutdown()`` stops both cleanly."""

    _stop = Signal()
    _now = Signal()

    def __init__(self, runlog_path: str | Path, parent: QObject | None = None, **kwargs: Any):
        super().__init__(parent)
        self.thread = QThread(objectName="RunLogPoller")
        self.poller = RunLogPoller(runlog_path, **kwargs)
        self.poller.moveToThread(self.thread)
        self.thread.started.connect(self.poller.start)
        self._stop.connect(self.poller.stop, Qt.ConnectionType.BlockingQueuedConnection)
        self._now.connect(self.poller.poll_now, Qt.ConnectionType.QueuedConnection)
        self._running = False

    def start(self) -> None:
        if not self._running:
            self._running = True
            self.thread.start()

    def poll_now(self) -> None:
        if self._running:
            self._now.emit()

    def shutdown(self) -> None:
        if not self._running:
            return
        self._running = False
        if self.thread.isRunning():
            self._stop.emit()
            self.thread.quit()
            self.thread.wait(5000)


class _Relay(QObject):
    """Parentless, so a result can still be handed over while the owner is being destroyed."""
    done = Signal(object, object)  # callback, its argument


class Background(QObject):
    """Runs blocking calls off the UI thread and hands each outcome to a callback on the UI thread.

    ``Background(parent)`` runs ``work()`` (launch, cancel, a data preview) on two threads. With
    ``runlog_path`` it runs ``work(log)`` on one thread that keeps its own read-only ``RunLog``
    (the views' heavier reads through ``backend.queries``), so results come back in order.
    Then ``on_ok(result)`` or ``on_error(exc)`` runs on the UI thread, unless ``shutdown()`` came
    first; an error with no ``on_error`` is printed.
    """

    def __init__(self, parent: QObject | None = None, *, runlog_path: str | Path | None = None):
        super().__init__(parent)
        self.runlog_path = Path(runlog_path) if runlog_path is not None else None
        self.pool = QThreadPool()  # its own threads, not the application's global pool
        self.pool.setMaxThreadCount(1 if self.runlog_path else 2)
        self.pool.setExpiryTimeout(-1)  # threads, and their read connections, live with the pool
        self._local = threading.local()
        self._relay = _Relay()
        self._relay.done.connect(self._deliver, Qt.ConnectionType.QueuedConnection)
        self._closed = False
        self.pending = 0
        app = QCoreApplication.instance()
        if app is not None:  # stop the threads before Qt tears down (else a crash at exit)
            app.aboutToQuit.connect(self.shutdown)

    def _log(self):
        if getattr(self._local, "log", None) is None:
            from backend.runlog import RunLog

            self._local.log = RunLog(self.runlog_path, readonly=True)
        return self._local.log

    def submit(self, work: Callable[..., Any], on_ok: Callable[[Any], None] | None = None,
               on_error: Callable[[BaseException], None] | None = None) -> None:
        if self._closed:
            return
        relay, self.pending = self._relay, self.pending + 1

        def deliver(callback, value) -> None:
            try:
                relay.done.emit(callback, value)
            except RuntimeError:  # the window and its relay are gone: nobody to deliver to
                pass

        def job() -> None:
            try:
                result = work(self._log()) if self.runlog_path is not None else work()
            except BaseException as exc:  # noqa: BLE001 - delivered to the UI thread
                deliver(on_error or _print_error, exc)
            else:
                deliver(on_ok, result)

        self.pool.start(job)

    @Slot(object, object)
    def _deliver(self, callback: Callable[[Any], None] | None, value: Any) -> None:
        self.pending -= 1
        if not self._closed and callback is not None:
            callback(value)

    def shutdown(self, timeout_ms: int = 3000) -> None:
        self._closed = True
        self.pool.waitForDone(timeout_ms)


def _print_error(exc: BaseException) -> None:
    print("reset_gui: background task failed:\n"
          + "".join(traceback.format_exception(exc)), file=sys.stderr, flush=True)
