"""What-if selection: move the judge weights, threshold and budget, see at once what a selection
would keep; save it as a selection or continue training from it.

Candidates (category scores of every sample of a sample stage) are loaded once per run on a
worker thread; every slider move recomputes the selection in memory with the select stage's own
rule (backend.scoring, numpy), debounced by 50 ms.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6 import QtCore, QtWidgets

from backend import queries
from backend.scoring import CandidateArrays, select, selection_items, summarize_selection
from backend.stages.select import policy_from_config
from backend.vocab import CATEGORIES

from .base import boxed, read_only_table
from .poller import Background
from .style import RIGHT, bold
from .views import fmt

KIND_SHORT = {"instruction": "instruction", "qa_extractive": "QA extractive",
              "qa_abstractive": "QA abstractive", "summarization": "summarization", "all": "all"}
CAT_LABELS = {"task": "task", "faithfulness": "faithfulness",
              "instruction_following": "instruction following"}


class _Slider(QtWidgets.QWidget):
    """Label + slider + value; value in [lo, hi] with `steps` positions."""

    changed = QtCore.Signal()

    def __init__(self, label: str, lo: float, hi: float, steps: int = 100, decimals: int = 2,
                 special_zero: str | None = None, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.lo, self.hi, self.steps, self.decimals = lo, hi, steps, decimals
        self.special_zero = special_zero
        self.label = QtWidgets.QLabel(label, minimumWidth=118)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal, maximum=steps,
                                        valueChanged=self._moved)
        self.value_label = QtWidgets.QLabel(minimumWidth=52, alignment=RIGHT)
        boxed(QtWidgets.QHBoxLayout, [self.label, (self.slider, 1), self.value_label], self, margins=0)
        self._moved(self.slider.value())

    def set_range(self, lo: float, hi: float, steps: int) -> None:
        v = self.value()
        self.lo, self.hi, self.steps = lo, hi, max(1, steps)
        with QtCore.QSignalBlocker(self.slider):
            self.slider.setRange(0, self.steps)
        self.set_value(v)

    def value(self) -> float:
        return self.lo + (self.hi - self.lo) * self.slider.value() / self.steps

    def set_value(self, v: float) -> None:
        pos = round((min(max(v, self.lo), self.hi) - self.lo) / ((self.hi - self.lo) or 1) * self.steps)
        self.slider.setValue(int(pos))
        self._moved(self.slider.value())

    def _moved(self, _pos: int) -> None:
        v = self.value()
        if self.special_zero and v == 0:
            self.value_label.setText(self.special_zero)
        else:
            self.value_label.setText(f"{v:.{self.decimals}f}" if self.decimals else f"{int(round(v))}")
        self.changed.emit()


class WhatIfPanel(QtWidgets.QGroupBox):
    selection_saved = QtCore.Signal(str, str)      # run id, selection name
    run_launched = QtCore.Signal(str)              # new run id
    recomputed = QtCore.Signal()

    def __init__(self, runlog_path: Path, db: Background | None = None,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__("What-if selection", parent)
        self.runlog_path = Path(runlog_path)
        self.db = db or Background(self, runlog_path=self.runlog_path)
        self.run_id: str | None = None
        self.config_toml: str | None = None
        self.stage_idx: int | None = None
        self.arrays: CandidateArrays | None = None
        self.last_idx = np.zeros(0, dtype=np.int64)
        self.last_comb = np.zeros(0)
        self.last_ms = 0.0
        self._load_token = 0
        self.defaults: dict[str, Any] = policy_from_config(None)
        self._timer = QtCore.QTimer(self, singleShot=True, interval=50, timeout=self.recompute)
        self._build()

    def _build(self) -> None:
        self.stage_combo = QtWidgets.QComboBox(currentIndexChanged=self._stage_chosen)
        self.sliders = {c: _Slider(f"weight: {CAT_LABELS[c]}", 0.0, 1.0) for c in CATEGORIES}
        self.threshold = _Slider("threshold", 0.0, 1.0)
        self.budget = _Slider("budget (samples)", 0, 100, steps=100, decimals=0, special_zero="no limit")
        for s in (*self.sliders.values(), self.threshold, self.budget):
            s.changed.connect(self.schedule)
        self.reset_button = QtWidgets.QPushButton("Reset to the run's policy", clicked=self.apply_defaults)
        note = QtWidgets.QLabel("Rule (our default): weighted mean of the category scores; the best "
                                "candidate per prompt is kept if it reaches the threshold, then the "
                                "budget keeps the highest.", wordWrap=True,
                                styleSheet="color: #666; font-size: 8pt;")
        self.table = read_only_table(QtWidgets.QTableWidget(
            0, 6, selectionMode=QtWidgets.QAbstractItemView.SelectionMode.NoSelection,
            horizontalScrollBarPolicy=QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff, minimumHeight=150,
            toolTip="kept = kept / prompts of that kind; means over the kept samples"))
        self.table.setHorizontalHeaderLabels(["kind", "kept", "comb.", "faith.", "instr.", "task"])
        hh = self.table.horizontalHeader()
        hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.status = QtWidgets.QLabel("No run chosen — pick a run to try selection policies on its "
                                       "judged samples.", wordWrap=True, styleSheet="color: #444;")
        self.name_edit = QtWidgets.QLineEdit(placeholderText="whatif-1")
        self.save_button = QtWidgets.QPushButton("Save as selection",
                                                 clicked=lambda: self.save_selection())
        self.continue_button = QtWidgets.QPushButton("Continue training from this selection…",
                                                     clicked=lambda: self.continue_training())
        lay = boxed(QtWidgets.QVBoxLayout, [
            boxed(QtWidgets.QHBoxLayout, [QtWidgets.QLabel("Samples of"), (self.stage_combo, 1)]),
            *self.sliders.values(), self.threshold, self.budget, self.reset_button, note,
            (self.table, 1), self.status,
            boxed(QtWidgets.QHBoxLayout, [QtWidgets.QLabel("Name"), (self.name_edit, 1)]),
            self.save_button, self.continue_button], self)
        lay.setSpacing(4)
        self._set_enabled(False)

    def _set_enabled(self, on: bool) -> None:
        for w in (*self.sliders.values(), self.threshold, self.budget, self.save_button,
                  self.continue_button, self.reset_button, self.name_edit):
            w.setEnabled(on)

    # ---- run / stage ------------------------------------------------------------------------------
    def set_run(self, run_id: str | None, config_toml: str | None = None) -> None:
        if run_id == self.run_id and self.arrays is not None:
            return
        self.run_id, self.config_toml = run_id, config_toml
        self.defaults = policy_from_config(config_toml)
        self.arrays = None
        self.stage_idx = None
        self._set_enabled(False)
        self.table.setRowCount(0)
        with QtCore.QSignalBlocker(self.stage_combo):
            self.stage_combo.clear()
        if run_id is None:
            self.status.setText("No run chosen.")
            return
        self.status.setText("Looking for judged samples…")
        self._load_token += 1
        token = self._load_token

        self.db.submit(lambda log: (token, queries.sample_stages(log, run_id)), self._got_stages,
                       self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.status.setText(f"Could not read the run log: {exc}")

    def _got_stages(self, result: Any) -> None:
        token, stages = result
        if token != self._load_token:
            return
        if not stages:
            self.status.setText("This run has no sampled candidates yet — the what-if panel works "
                                "once a sample + judge stage has run.")
            return
        with QtCore.QSignalBlocker(self.stage_combo):
            for idx, n, name in stages:
                self.stage_combo.addItem(f"{name or 'stage ' + str(idx)} ({n} samples)", idx)
        self._stage_chosen(0)

    def _stage_chosen(self, i: int) -> None:
        idx = self.stage_combo.itemData(i)
        if idx is None or self.run_id is None:
            return
        self.stage_idx = idx
        self.status.setText("Loading candidates…")
        self._load_token += 1
        token, run_id = self._load_token, self.run_id

        def work(log):
            t0 = time.perf_counter()
            arrays = CandidateArrays(queries.candidates(log, run_id, idx))
            return token, arrays, (time.perf_counter() - t0) * 1000

        self.db.submit(work, self._got_candidates, self._failed)

    def _got_candidates(self, result: Any) -> None:
        token, arrays, ms = result
        if token != self._load_token:
            return
        self.arrays = arrays
        self.load_ms = ms
        n_prompts = int(np.unique(arrays.prompt_id).size) if arrays.n else 0
        self.budget.set_range(0, max(1, n_prompts), max(1, n_prompts))
        self._set_enabled(arrays.n > 0)
        self.apply_defaults()

    def apply_defaults(self) -> None:
        values = [(s, self.defaults["weights"].get(c, 0.0)) for c, s in self.sliders.items()]
        for s, v in [*values, (self.threshold, self.defaults["threshold"]),
                     (self.budget, self.defaults["budget"] or 0)]:
            with QtCore.QSignalBlocker(s):
                s.set_value(float(v))
        self.recompute()

    # ---- recompute --------------------------------------------------------------------------------
    def policy(self) -> dict[str, Any]:
        b = int(round(self.budget.value()))
        return {"weights": {c: round(s.value(), 4) for c, s in self.sliders.items()},
                "threshold": round(self.threshold.value(), 4), "budget": b or None,
                "per_kind_quota": dict(self.defaults.get("per_kind_quota") or {}),
                "one_per_prompt": True, "source": "what-if", "samples_stage_idx": self.stage_idx}

    def schedule(self) -> None:
        self._timer.start()

    def recompute(self) -> None:
        if self.arrays is None:
            return
        t0 = time.perf_counter()
        pol = self.policy()
        if sum(pol["weights"].values()) <= 0:
            self.status.setText("All weights are zero — give at least one category a weight.")
            self.last_idx = np.zeros(0, dtype=np.int64)
            self.table.setRowCount(0)
            return
        idx, comb = select(self.arrays, pol["weights"], pol["threshold"], pol["per_kind_quota"],
                           pol["budget"])
        summary = summarize_selection(self.arrays, idx, comb)
        self.last_idx, self.last_comb = idx, comb
        self.table.setRowCount(len(summary))
        for r, s in enumerate(summary):
            vals = [KIND_SHORT.get(s.kind, s.kind), f"{s.kept} / {s.prompts}", fmt(s.mean_combined, 2),
                    fmt(s.means["faithfulness"], 2), fmt(s.means["instruction_following"], 2),
                    fmt(s.means["task"], 2)]
            for c, v in enumerate(vals):
                item = QtWidgets.QTableWidgetItem(v)
                if c:
                    item.setTextAlignment(RIGHT)
                if s.kind == "all":
                    item.setFont(bold(item.font()))
                self.table.setItem(r, c, item)
        self.last_ms = (time.perf_counter() - t0) * 1000
        self.status.setText(f"{idx.size} of {self.arrays.n} candidates kept · recomputed in "
                            f"{self.last_ms:.0f} ms")
        if not self.name_edit.text():
            self.name_edit.setPlaceholderText(f"whatif-t{pol['threshold']:.2f}-{idx.size}")
        self.recomputed.emit()

    def shutdown(self) -> None:
        self.db.shutdown()

    def kept_count(self) -> int:
        return int(self.last_idx.size)

    # ---- save / continue --------------------------------------------------------------------------
    def selection_name(self) -> str:
        return self.name_edit.text().strip() or self.name_edit.placeholderText()

    def save_selection(self, name: str | None = None, then: Any = None) -> None:
        """Store the current what-if selection (on a worker thread); emits selection_saved."""
        if self.arrays is None or self.run_id is None:
            return
        self._timer.stop()
        self.recompute()
        name = name or self.selection_name()
        run_id, pol = self.run_id, self.policy()
        items = selection_items(self.arrays, self.last_idx, self.last_comb)
        path = self.runlog_path
        self.save_button.setEnabled(False)
        self.status.setText(f"Saving {len(items)} samples as {name!r}…")

        def work(_log):
            from backend.runlog import RunLog

            with RunLog(path) as log:  # the worker's own log is read-only
                if queries.selection(log, run_id, name):
                    raise ValueError(f"run {run_id} already has a selection named {name!r}")
                log.add_selection(run_id, None, name, pol, items)
            return name

        def done(saved: str) -> None:
            self.save_button.setEnabled(True)
            self.status.setText(f"Saved {len(items)} samples as selection {saved!r}.")
            self.selection_saved.emit(run_id, saved)
            if then:
                then(saved)

        def failed(exc: BaseException) -> None:
            self.save_button.setEnabled(True)
            self.status.setText(f"Not saved: {exc}")

        self.db.submit(work, done, failed)

    def continue_training(self, name: str | None = None, confirm: bool = True) -> None:
        """Save the selection if needed, build the continuation config (backend.plans) and launch."""
        if self.arrays is None or self.run_id is None:
            return
        name = name or self.selection_name()
        if confirm:
            ans = QtWidgets.QMessageBox.question(
                self, "Continue training",
                f"Start a new run that continues this run's MTL checkpoint on the selection "
                f"{name!r} ({self.kept_count()} samples), then evaluates it?")
            if ans != QtWidgets.QMessageBox.StandardButton.Yes:
                return
        run_id, path = self.run_id, self.runlog_path

        def launch(saved: str) -> None:
            self.status.setText("Starting the continuation run…")

            def work(_log):
                from backend.launcher import Studio
                from backend.plans import continue_from_selection

                studio = Studio(path.parent)
                cfg = continue_from_selection(run_id, saved, studio)
                return studio.launch(cfg, parent_run_id=run_id)

            def done(new_id: str) -> None:
                self.status.setText(f"Started run {new_id}.")
                self.run_launched.emit(new_id)

            self.db.submit(work, done, lambda exc: self.status.setText(f"Not started: {exc}"))

        def exists(log):
            return queries.selection(log, run_id, name) is not None

        self.db.submit(exists, lambda there: launch(name) if there else self.save_selection(name, launch),
                       lambda exc: self.status.setText(f"Not started: {exc}"))
