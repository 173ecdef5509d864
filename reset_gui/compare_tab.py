"""Compare tab: check runs, see their loss and generation-length curves overlaid, their points on
one trade-off plot (with 95 % interval bars), each checkpoint's difference from a reference
checkpoint with its paired-bootstrap interval (those within noise greyed), and the config keys on
which they differ."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from backend.eval_details import EvalDetails, with_interval
from backend.experiments import merge_seeds
from backend.stats import Diff, compare_details

from .base import RunView, boxed, read_only_table
from .plots import CurveSet, PlotPanel, TradeoffPlot
from .style import bold
from .views import MetricSeries, TradeoffData, config_diff, run_color

DIFF_CATEGORIES = (("faithfulness", "faithfulness"), ("instruction_following", "instr. following"),
                   ("task_score", "task"))
UP, DOWN, NOISE = "#1a7f37", "#b42318", "#8a8a8a"
EXP = "exp:"  # prefix of a pooled experiment's key in the differences table


def diff_text(d: Diff | None) -> str:
    """'+0.052 [+0.010, +0.094]'; within noise prefixed with '≈'; '–' without items."""
    if d is None:
        return "–"
    text = with_interval(d.diff, d.interval, "+.3f")
    return f"≈ {text}" if d.within_noise else text


class CompareTab(RunView):
    checkpoint_clicked = QtCore.Signal(str, str)

    def __init__(self, runlog_path: Path, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.runlog_path = Path(runlog_path)
        self.runs: list[dict[str, Any]] = []
        self.current_run: str | None = None
        self.metrics = MetricSeries()
        self.tradeoff_data = TradeoffData()
        self._checked: list[str] = []
        self.eval_all: dict[tuple[str, str], dict[str, Any]] = {}  # (run, tag) -> its _all evals row
        self._details: dict[int, EvalDetails] = {}  # evals row id -> parsed details
        self._pooled: dict[tuple[int, ...], EvalDetails] = {}  # seeds' row ids -> pooled details
        self._build()

    def _build(self) -> None:
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        boxed(QtWidgets.QHBoxLayout, [split], self, margins=6)
        self.run_list = QtWidgets.QListWidget(itemChanged=lambda _i: self._checked_changed())
        self.hint = QtWidgets.QLabel("Check three or more runs (two also work).", wordWrap=True,
                                     styleSheet="color:#666;")
        self.report_btn = QtWidgets.QPushButton(
            "Report of the checked runs…", clicked=self._report_clicked,
            toolTip="One HTML file: the paper's figures with 95 % intervals, the differences in "
                    "words, selections, judge coverage and configs "
                    "(the same as `reset-gui report RUN...`)")
        left = QtWidgets.QWidget()
        boxed(QtWidgets.QVBoxLayout, [QtWidgets.QLabel("<b>Runs to compare</b>"), (self.run_list, 1),
                                      self.hint, self.report_btn], left, margins=0)
        split.addWidget(left)

        right = QtWidgets.QWidget()
        grid = QtWidgets.QGridLayout(right, contentsMargins=QtCore.QMargins(0, 0, 0, 0))
        self.loss_panel = PlotPanel("Training loss", "step (stages end to end)", "loss",
                                    "Check runs on the left to overlay their loss curves.")
        self.genlen_panel = PlotPanel("Generation length during training", "step (stages end to end)",
                                      "mean generated tokens",
                                      "Check runs on the left to overlay their generation length.")
        self.tradeoff_panel = PlotPanel("Trade-off of the checked runs", empty_text=(
            "No evaluated checkpoints among the checked runs yet."))
        self.tradeoff = TradeoffPlot(self.tradeoff_panel, self.tradeoff_data, run_name=self._name)
        self.tradeoff.point_clicked.connect(self.checkpoint_clicked)
        self.tradeoff.set_visible_runs([])
        self.loss_legend = self.loss_panel.item.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.genlen_legend = self.genlen_panel.item.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.loss_curves = CurveSet(self.loss_panel.item)
        self.genlen_curves = CurveSet(self.genlen_panel.item)
        self.diff_table = read_only_table(QtWidgets.QTableWidget(0, 0, wordWrap=False), row_numbers=True)
        self.diff_empty = QtWidgets.QLabel("Check at least two runs to see how their configs differ.",
                                           styleSheet="color:#777; font-style: italic;")
        diff_box = QtWidgets.QGroupBox("Config differences")
        boxed(QtWidgets.QVBoxLayout, [self.diff_empty, (self.diff_table, 1)], diff_box)
        grid.addWidget(self.tradeoff_panel, 0, 0, 2, 1)
        grid.addWidget(self.loss_panel, 0, 1)
        grid.addWidget(self.genlen_panel, 1, 1)
        grid.addWidget(self._build_deltas(), 2, 0)
        grid.addWidget(diff_box, 2, 1)
        for i in range(3):
            grid.setRowStretch(i, 1)
        grid.setColumnStretch(0, 1)
        grid.setColumnStretch(1, 1)
        split.addWidget(right)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 5)
        split.setSizes([240, 1200])
        self._refresh_diff()

    def _build_deltas(self) -> QtWidgets.QGroupBox:
        # a change that is not ours (ours block signals) is the user's pick: kept while listed
        self.ref_combo = QtWidgets.QComboBox(
            sizeAdjustPolicy=QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents,
            currentIndexChanged=self._ref_picked)
        self._ref_chosen = False
        self.delta_table = read_only_table(QtWidgets.QTableWidget(0, 1 + len(DIFF_CATEGORIES) + 1))
        self.delta_table.setHorizontalHeaderLabels(
            ["checkpoint"] + [f"Δ {label}" for _c, label in DIFF_CATEGORIES] + ["items"])
        small = self.delta_table.font()
        small.setPointSizeF(max(7.0, small.pointSizeF() - 1))
        self.delta_table.setFont(small)  # four "±0.000 [±0.000, ±0.000]" columns fit half a window
        self.delta_note = QtWidgets.QLabel(
            "Δ = checkpoint − reference, bootstrap over the eval items both were scored on "
            "(paired); <span style='color:#8a8a8a'>≈ grey: within noise</span> (the interval "
            "contains 0); <span style='color:#1a7f37'>green</span>/<span style='color:#b42318'>"
            "red</span>: outside noise.", wordWrap=True, styleSheet="color:#555; font-size: 8pt;")
        box = QtWidgets.QGroupBox("Differences from a reference checkpoint (95 % intervals)")
        boxed(QtWidgets.QVBoxLayout, [
            boxed(QtWidgets.QHBoxLayout, [QtWidgets.QLabel("Reference:"), (self.ref_combo, 1)]),
            (self.delta_table, 1), self.delta_note], box)
        return box

    # ---- helpers --------------------------------------------------------------------------------
    def _name(self, run_id: str) -> str:
        for r in self.runs:
            if r["id"] == run_id:
                return r.get("name") or run_id
        return run_id

    def _color(self, run_id: str) -> str:
        ids = [r["id"] for r in self.runs]
        return run_color(ids.index(run_id)) if run_id in ids else run_color(0)

    def checked_runs(self) -> list[str]:
        out = []
        for i in range(self.run_list.count()):
            it = self.run_list.item(i)
            if it.checkState() == QtCore.Qt.CheckState.Checked:
                out.append(it.data(QtCore.Qt.ItemDataRole.UserRole))
        return out

    def set_checked(self, run_ids: list[str]) -> None:
        with QtCore.QSignalBlocker(self.run_list):
            for i in range(self.run_list.count()):
                it = self.run_list.item(i)
                on = it.data(QtCore.Qt.ItemDataRole.UserRole) in run_ids
                it.setCheckState(QtCore.Qt.CheckState.Checked if on else QtCore.Qt.CheckState.Unchecked)
        self._checked_changed()

    # ---- interface ------------------------------------------------------------------------------
    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        checked = set(self.checked_runs())
        if not self.runs and not checked:  # first snapshot: start with the three newest runs
            newest = sorted(runs, key=lambda r: r.get("created_at") or 0, reverse=True)[:3]
            checked = {r["id"] for r in newest}
        self.runs = list(runs)
        for r in self.runs:
            self.tradeoff.color_of(r["id"])
        with QtCore.QSignalBlocker(self.run_list):
            self.run_list.clear()
            for r in self.runs:
                it = QtWidgets.QListWidgetItem(f"{r.get('name') or r['id']}  ·  {r.get('status', '')}")
                it.setData(QtCore.Qt.ItemDataRole.UserRole, r["id"])
                it.setToolTip(f"{r['id']}\npreset {r.get('preset')}"
                              + (f"\nexperiment {r['experiment']}" if r.get("experiment") else ""))
                it.setFlags(it.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
                it.setCheckState(QtCore.Qt.CheckState.Checked if r["id"] in checked
                                 else QtCore.Qt.CheckState.Unchecked)
                pix = QtGui.QPixmap(10, 10)
                pix.fill(QtGui.QColor(self._color(r["id"])))
                it.setIcon(QtGui.QIcon(pix))
                self.run_list.addItem(it)
        if [r for r in self.checked_runs()] != self._checked:
            self._checked_changed()
        else:
            self._refresh_diff()

    def set_current_run(self, run_id: str | None) -> None:
        self.current_run = run_id

    def on_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if table == "metrics":
            touched = self.metrics.add(r for r in rows if r.get("name") in ("loss", "gen_length"))
            checked = set(self._checked)
            self._update_curves({run for run, _ in touched if run in checked})
        elif table == "stages":
            self.metrics.add_stages(rows)
        elif table == "evals":
            self.tradeoff.add_rows(rows)
            alls = [r for r in rows if r.get("dataset") == "_all"]
            for r in alls:
                self.eval_all[(r["run_id"], r.get("checkpoint_tag") or "?")] = r
            if any(r["run_id"] in self._checked for r in alls):
                self._refresh_deltas()

    # ---- drawing --------------------------------------------------------------------------------
    def _checked_changed(self) -> None:
        self._checked = self.checked_runs()
        keep = {(r, n) for r in self._checked for n in ("loss", "gen_length")}
        for cs, legend in ((self.loss_curves, self.loss_legend),
                           (self.genlen_curves, self.genlen_legend)):
            for key in list(cs.curves):
                if key not in keep:
                    legend.removeItem(cs.curves[key])
            cs.remove_except(keep)
        self._update_curves(set(self._checked))
        self.tradeoff.set_visible_runs(self._checked)
        n = len(self._checked)
        self.hint.setText(f"{n} run{'s' if n != 1 else ''} checked." if n >= 2 else
                          "Check two or more runs (three or more to see trends).")
        self._refresh_diff()
        self._refresh_deltas()

    def _update_curves(self, runs: set[str]) -> None:
        for name, panel, cs, legend in (("loss", self.loss_panel, self.loss_curves, self.loss_legend),
                                        ("gen_length", self.genlen_panel, self.genlen_curves,
                                         self.genlen_legend)):
            for run in runs:
                if not self.metrics.has(run, name):
                    continue
                new = (run, name) not in cs.curves
                x, y = self.metrics.xy(run, name)
                item = cs.set((run, name), x, y, self._color(run),
                              symbol="o" if name == "gen_length" else None)
                if new:
                    legend.addItem(item, self._name(run)[:28])
            panel.set_empty(not any(self.metrics.has(r, name) for r in self._checked))

    def _refresh_diff(self) -> None:
        chosen = [r for r in self.runs if r["id"] in self._checked]
        keys, flat = config_diff({r["id"]: r.get("config_toml") or "" for r in chosen}) \
            if len(chosen) >= 2 else ([], {})
        empty = ("Check at least two runs to see how their configs differ." if len(chosen) < 2 else
                 "" if keys else "The checked runs have identical configs.")
        self.diff_empty.setText(empty)
        self.diff_empty.setVisible(bool(empty))
        self.diff_table.setVisible(not empty)
        if empty:
            self.diff_table.setRowCount(0)
            self.diff_table.setColumnCount(0)
            return
        self.diff_table.setColumnCount(len(chosen) + 1)
        self.diff_table.setHorizontalHeaderLabels(["key"] + [self._name(r["id"]) for r in chosen])
        self.diff_table.setRowCount(len(keys))
        for i, k in enumerate(keys):
            self.diff_table.setItem(i, 0, QtWidgets.QTableWidgetItem(k))
            for j, r in enumerate(chosen):
                v = flat[r["id"]].get(k, None)
                text = "—" if k not in flat[r["id"]] else (
                    json.dumps(v) if isinstance(v, (bool, type(None))) else str(v))
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(text)
                if k not in flat[r["id"]]:
                    item.setForeground(QtGui.QColor("#999"))
                self.diff_table.setItem(i, j + 1, item)
        hh = self.diff_table.horizontalHeader()
        hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Interactive)
        self.diff_table.resizeColumnsToContents()
        for c in range(self.diff_table.columnCount()):
            self.diff_table.setColumnWidth(c, min(self.diff_table.columnWidth(c), 320))
        hh.setStretchLastSection(True)

    # ---- report -------------------------------------------------------------------------------------
    def _report_clicked(self) -> None:
        if not self._checked:
            QtWidgets.QMessageBox.information(self, "Report", "Check the runs to report on first.")
            return
        path, _ = QtWidgets.QFileDialog.getSaveFileName(self, "Save report", "report.html",
                                                        "HTML (*.html)")
        if path:
            out = self.write_report(Path(path))
            QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(out)))

    def write_report(self, path: Path) -> Path:
        """The HTML report of the checked runs (backend/report.py), written to ``path``."""
        from backend.report import write_report
        from backend.runlog import RunLog

        with RunLog(self.runlog_path, readonly=True) as log:
            return write_report(log, list(self._checked), path)

    # ---- differences with intervals ---------------------------------------------------------------
    def experiments(self) -> dict[str, list[str]]:
        """Experiment id -> its checked runs (seeds of one config), for groups of two or more."""
        groups: dict[str, list[str]] = {}
        for r in self.runs:
            if r.get("experiment") and r["id"] in self._checked:
                groups.setdefault(r["experiment"], []).append(r["id"])
        return {e: runs for e, runs in groups.items() if len(runs) >= 2}

    def details_of(self, run_id: str, tag: str) -> EvalDetails:
        if run_id.startswith(EXP):  # an experiment: its seeds pooled item by item
            runs = self.experiments().get(run_id[len(EXP):], [])
            rows = [self.eval_all[(r, tag)] for r in runs if (r, tag) in self.eval_all]
            key = tuple(int(r.get("id") or 0) for r in rows)
            if key not in self._pooled:
                self._pooled[key] = merge_seeds([self.details_of(r["run_id"], tag) for r in rows])
            return self._pooled[key]
        row = self.eval_all[(run_id, tag)]
        key = int(row.get("id") or 0)
        if key not in self._details:
            self._details[key] = EvalDetails.from_row(row)
        return self._details[key]

    def _checkpoints(self) -> list[tuple[str, str]]:
        """(run, tag) of the checked runs' evaluated checkpoints, runs in list order, base first."""
        out = []
        for run in self._checked:
            keys = [k for k in self.eval_all if k[0] == run]
            keys.sort(key=lambda k: (self.eval_all[k].get("checkpoint_id") or -1,
                                     self.eval_all[k].get("id") or 0))
            out += keys
        for exp, runs in self.experiments().items():  # seeds pooled: tags every seed evaluated
            tags = [k[1] for k in out if k[0] == runs[0]]
            out += [(EXP + exp, t) for t in tags if all((r, t) in self.eval_all for r in runs)]
        return out

    def _ckpt_label(self, key: tuple[str, str]) -> str:
        if key[0].startswith(EXP):
            runs = self.experiments().get(key[0][len(EXP):], [])
            name = self._name(runs[0]).rsplit("-s", 1)[0] if runs else key[0]
            return f"{name[:24]} · {key[1]} ({len(runs)} seeds)"
        return f"{self._name(key[0])[:28]} · {key[1]}"

    def _ref_picked(self, _index: int) -> None:
        self._ref_chosen = True
        self._refresh_deltas()

    def _refresh_deltas(self) -> None:
        cks = self._checkpoints()
        current = self.ref_combo.currentData()
        with QtCore.QSignalBlocker(self.ref_combo):
            self.ref_combo.clear()
            for k in cks:
                self.ref_combo.addItem(self._ckpt_label(k), k)
            if current in cks and self._ref_chosen:
                self.ref_combo.setCurrentIndex(cks.index(current))
            elif cks:  # default reference: the oldest run's MTL checkpoint (what ReSet and the
                # control continue from)
                created = {r["id"]: r.get("created_at") or 0 for r in self.runs}
                mtl = sorted((created.get(k[0], float("inf")), i) for i, k in enumerate(cks) if k[1] == "mtl")
                self.ref_combo.setCurrentIndex(mtl[0][1] if mtl else 0)
        ref = self.ref_combo.currentData()
        others = [k for k in cks if k != ref]
        self.delta_table.setRowCount(len(others))
        if ref is None:
            return
        ref_det = self.details_of(*ref)
        for i, key in enumerate(others):
            diffs = compare_details(ref_det, self.details_of(*key), [c for c, _l in DIFF_CATEGORIES])
            name = QtWidgets.QTableWidgetItem(self._ckpt_label(key))
            first = self.experiments().get(key[0][len(EXP):], [key[0]])[0] \
                if key[0].startswith(EXP) else key[0]
            name.setForeground(QtGui.QColor(self._color(first)))
            if key[0].startswith(EXP):
                name.setFont(bold(name.font()))
                det = self.details_of(*key)
                name.setToolTip("seeds pooled: each eval item's score is its mean over the seeds; "
                                "per-seed means: " + "; ".join(
                                    f"{c} " + ", ".join(f"{v:.3f}" for v in vs)
                                    for c, vs in det.seed_means.items() if c != "combined"))
            self.delta_table.setItem(i, 0, name)
            for j, (cat, label) in enumerate(DIFF_CATEGORIES):
                d = diffs.get(cat)
                item = QtWidgets.QTableWidgetItem(diff_text(d))
                item.setData(QtCore.Qt.ItemDataRole.UserRole, d)
                if d is not None:
                    if d.within_noise:
                        item.setForeground(QtGui.QColor(NOISE))
                    else:
                        item.setFont(bold(item.font()))
                        item.setForeground(QtGui.QColor(UP if d.diff > 0 else DOWN))
                    item.setToolTip(
                        f"{label}: {self._ckpt_label(key)} − {self._ckpt_label(ref)} = {d.diff:+.4f}\n"
                        f"95 % interval [{d.interval.lo:+.4f}, {d.interval.hi:+.4f}] "
                        f"({'paired over' if d.paired else 'unpaired: no shared item;'} {d.n} items)\n"
                        + ("within noise: the interval contains 0" if d.within_noise
                           else "outside noise: the interval excludes 0"))
                else:
                    item.setToolTip("no per-item scores on one side (a row written before "
                                    "intervals were stored), or no item of this category")
                self.delta_table.setItem(i, 1 + j, item)
            ns = sorted({d.n for d in diffs.values() if d is not None and d.paired})
            self.delta_table.setItem(i, 1 + len(DIFF_CATEGORIES), QtWidgets.QTableWidgetItem(
                "/".join(map(str, ns)) if ns else "unpaired"))
        self.delta_table.resizeColumnsToContents()
        self.delta_table.horizontalHeader().setStretchLastSection(True)

    def shutdown(self) -> None:
        pass
