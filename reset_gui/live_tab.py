"""Live tab: the trade-off plot across runs and the current run's training/selection plots.

Rows come in through ``on_rows`` (the poller's incremental reads); every plot item is created
once and then updated with ``setData``/``setOpts``. The only query this tab makes is the
accepted-vs-rejected score histogram (one aggregate, on a worker thread, debounced).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from backend.queries import score_values
from backend.vocab import KINDS

from .base import RunView
from .plots import CurveSet, PlotPanel, TradeoffPlot, bar_item, set_bars, set_category_ticks
from .poller import Background
from .views import (MetricSeries, ema, accept_rates_from_rows, histogram_pair, length_buckets,
                    run_color)

HIST_JUDGES = ("combined", "cat:faithfulness", "cat:instruction_following", "cat:task",
               "rouge_l", "token_f1", "faith_lexical", "faith_minilm", "faith_lm", "faith_summac",
               "ifeval", "llm_judge")
BUCKET_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


class LiveTab(RunView):
    checkpoint_clicked = QtCore.Signal(str, str)  # run id, checkpoint tag

    def __init__(self, runlog_path: Path, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.runlog_path = Path(runlog_path)
        self.db = Background(self, runlog_path=self.runlog_path)
        self.runs: dict[str, dict[str, Any]] = {}
        self.current_run: str | None = None
        self.metrics = MetricSeries()
        self.eval_details: dict[str, dict[str, tuple[int, Any]]] = {}  # run -> tag -> (ck id, details)
        self.selections: dict[str, list[dict[str, Any]]] = {}  # run -> selection rows
        self._hist_timer = QtCore.QTimer(self, singleShot=True, interval=300, timeout=self._query_hist)
        self._hist_token = 0
        self._hist_rates: dict[str, float] = {}
        self._build()
        self._update_header()

    # ---- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        grid = QtWidgets.QGridLayout(self, contentsMargins=QtCore.QMargins(6, 6, 6, 6), spacing=6)
        self.header = QtWidgets.QLabel("", styleSheet="color: #333;")
        grid.addWidget(self.header, 0, 0, 1, 3)

        self.tradeoff_panel = PlotPanel(
            "Trade-off: instruction following × faithfulness", empty_text=(
                "No evaluated checkpoints yet — each checkpoint appears here as a point when an "
                "evaluate stage finishes it (x = instruction following, y = faithfulness)."))
        self.tradeoff = TradeoffPlot(self.tradeoff_panel, run_name=self._run_name)
        self.tradeoff.point_clicked.connect(self.checkpoint_clicked)
        grid.addWidget(self.tradeoff_panel, 1, 0, 2, 1)

        self.loss_panel = PlotPanel("Training loss", "step (stages end to end)", "loss",
                                    "No training metrics yet — the loss curve starts at the first "
                                    "logged step.")
        self.lr_panel = PlotPanel("Learning rate", "step (stages end to end)", "learning rate",
                                  "No learning-rate values yet.")
        self.genlen_panel = PlotPanel("Generation length during training", "step (stages end to end)",
                                      "mean generated tokens",
                                      "No generation-length probes yet — due every eval_steps "
                                      "within probe_budget; a LoRA stage generates its probes in "
                                      "batches, by its last step at the latest (paper Fig. 4).")
        self.bylen_panel = PlotPanel("Faithfulness by response length", "response length bucket",
                                     "faithfulness",
                                     "No evaluation with length buckets yet — faithfulness split "
                                     "by response length (paper Fig. 5).")
        self.accept_panel = PlotPanel("Acceptance rate per kind", "", "accepted fraction",
                                      "No selection yet — acceptance per kind appears after the "
                                      "select stage.")
        self.hist_panel = PlotPanel("Judge scores: accepted vs rejected", "score", "samples",
                                    "No judged samples yet — score histograms appear after the "
                                    "judge stage.")
        self.judge_combo = QtWidgets.QComboBox(toolTip="Judge whose scores are histogrammed")
        self.judge_combo.addItems(HIST_JUDGES)
        self.judge_combo.currentTextChanged.connect(lambda _t: self._hist_timer.start(0))
        self.hist_panel.extra.addWidget(self.judge_combo)

        grid.addWidget(self.loss_panel, 1, 1)
        grid.addWidget(self.lr_panel, 1, 2)
        grid.addWidget(self.genlen_panel, 2, 1)
        grid.addWidget(self.bylen_panel, 2, 2)
        grid.addWidget(self.accept_panel, 3, 0)
        grid.addWidget(self.hist_panel, 3, 1, 1, 2)
        for i, stretch in enumerate((5, 4, 4)):
            grid.setColumnStretch(i, stretch)
            grid.setRowStretch(i + 1, 1)

        self.loss_curves = CurveSet(self.loss_panel.item)
        self.lr_curves = CurveSet(self.lr_panel.item)
        self.genlen_curves = CurveSet(self.genlen_panel.item)
        self.boundaries: dict[str, list[pg.InfiniteLine]] = {"loss": [], "lr": [], "genlen": []}
        self.bylen_bars: list[pg.BarGraphItem] = []
        self.bylen_legend = self.bylen_panel.item.addLegend(offset=(-8, 8), labelTextSize="8pt")
        self.bylen_panel.item.setYRange(0, 1.3, padding=0)  # headroom: the legend sits above the bars
        self.bylen_legend.setColumnCount(3)
        self.accept_bars = bar_item("#009E73", 0.6)
        self.accept_panel.item.addItem(self.accept_bars)
        self.accept_panel.item.setYRange(0, 1.15, padding=0)
        self.accept_text: list[pg.TextItem] = []
        self.hist_acc = bar_item("#009E73", 0.045)
        self.hist_rej = bar_item("#D55E00", 0.045)
        self.hist_acc.setOpacity(0.75)
        self.hist_rej.setOpacity(0.6)
        self.hist_panel.item.addItem(self.hist_rej)
        self.hist_panel.item.addItem(self.hist_acc)
        leg = self.hist_panel.item.addLegend(offset=(8, 8), labelTextSize="8pt")
        leg.addItem(self.hist_acc, "accepted")
        leg.addItem(self.hist_rej, "rejected")
        self.hist_panel.item.setXRange(0, 1, padding=0.02)

    # ---- helpers --------------------------------------------------------------------------------
    def _run_name(self, run_id: str) -> str:
        run = self.runs.get(run_id)
        return (run.get("name") or run_id) if run else run_id

    def _focus_run(self) -> str | None:
        if self.current_run:
            return self.current_run
        known = list(self.runs) or self.metrics.runs() or list(self.tradeoff.data.points)
        return known[-1] if known else None

    # ---- interface ------------------------------------------------------------------------------
    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        new = {r["id"]: r for r in runs}
        names_changed = any(self.runs.get(k, {}).get("name") != v.get("name") for k, v in new.items())
        self.runs = new
        for r in runs:  # colours follow creation order, the same in every tab
            self.tradeoff.color_of(r["id"])
        if names_changed:
            self.tradeoff.refresh_names()
        self._update_header()
        if self.current_run is None:
            self._refresh_run_plots()

    def set_current_run(self, run_id: str | None) -> None:
        if run_id == self.current_run:
            return
        self.current_run = run_id
        self._update_header()
        self._refresh_run_plots()

    def on_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        focus = self._focus_run()
        if table == "evals":
            self.tradeoff.add_rows(rows)
            touched = False
            for r in rows:
                if r.get("dataset") == "_all":
                    self.eval_details.setdefault(r["run_id"], {})[r.get("checkpoint_tag") or "?"] = (
                        r.get("checkpoint_id") if r.get("checkpoint_id") is not None else -1,
                        r.get("details"))
                    touched = touched or r["run_id"] == self._focus_run()
            if touched:
                self._update_bylen()
        elif table == "metrics":
            touched = self.metrics.add(rows)
            focus = self._focus_run()
            if any(run == focus for run, _ in touched):
                names = {n for run, n in touched if run == focus}
                self._update_curves(names)
                if any(n.startswith("accept_rate/") for n in names):
                    self._update_accept()
        elif table == "stages":
            self.metrics.add_stages(rows)
            self._update_boundaries()
        elif table == "selections":
            for r in rows:
                self.selections.setdefault(r["run_id"], []).append(r)
            if any(r["run_id"] == focus for r in rows):
                self._hist_timer.start(300)
        elif table == "scores":
            if any(r.get("run_id") == focus for r in rows):
                self._hist_timer.start(1500)

    # ---- updates --------------------------------------------------------------------------------
    def _update_header(self) -> None:
        run = self._focus_run()
        if run is None:
            self.header.setText("<i>No runs yet — start one from the Setup tab.</i>")
        else:
            r = self.runs.get(run, {})
            self.header.setText(f"Run <b>{self._run_name(run)}</b> "
                                f"<span style='color:#777'>({run}, {r.get('status', '?')})</span> — "
                                f"the trade-off plot shows every run")

    def _refresh_run_plots(self) -> None:
        run = self._focus_run()
        for cs in (self.loss_curves, self.lr_curves, self.genlen_curves):
            cs.remove_except({(run, "loss"), (run, "learning_rate"), (run, "gen_length")})
        self._update_curves({"loss", "learning_rate", "gen_length"})
        self._update_bylen()
        self._update_accept()
        self._hist_timer.start(0)

    def _update_curves(self, names: set[str]) -> None:
        run = self._focus_run()
        color = run_color(self.tradeoff.run_order.index(run)) if run in self.tradeoff.run_order \
            else run_color(0)
        for name, panel, curves in (("loss", self.loss_panel, self.loss_curves),
                                    ("learning_rate", self.lr_panel, self.lr_curves),
                                    ("gen_length", self.genlen_panel, self.genlen_curves)):
            if name not in names:
                continue
            if run is None or not self.metrics.has(run, name):
                panel.set_empty(True)
                continue
            x, y = self.metrics.xy(run, name)
            if name == "loss":  # raw steps jump with length-grouped batches: add a smoothed trend
                curves.set((run, name), x, y, "#b8b8b8", width=1.0)
                curves.set((run, "loss_ema"), x, ema(y), color, name="smoothed (EMA 0.8)")
            else:
                curves.set((run, name), x, y, color, symbol="o" if name == "gen_length" else None)
            panel.set_empty(False)
        self._update_boundaries()

    def _update_boundaries(self) -> None:
        run = self._focus_run()
        bounds = self.metrics.boundaries(run, ("loss", "learning_rate", "gen_length")) if run else []
        for key, panel in (("loss", self.loss_panel), ("lr", self.lr_panel),
                           ("genlen", self.genlen_panel)):
            lines = self.boundaries[key]
            while len(lines) < len(bounds):
                ln = pg.InfiniteLine(angle=90, movable=False,
                                     pen=pg.mkPen("#999", width=1, style=QtCore.Qt.PenStyle.DotLine),
                                     label="", labelOpts={"position": 0.92, "color": "#666",
                                                          "fill": (255, 255, 255, 200)})
                panel.item.addItem(ln)
                lines.append(ln)
            for i, ln in enumerate(lines):
                ln.setVisible(i < len(bounds))
                if i < len(bounds):
                    ln.setValue(bounds[i][0])
                    ln.label.setFormat(bounds[i][1])

    def _update_bylen(self) -> None:
        run = self._focus_run()
        per_ck = sorted(self.eval_details.get(run, {}).items(), key=lambda kv: kv[1][0]) if run else []
        series = [(tag, length_buckets(det)) for tag, (_ck, det) in per_ck]
        series = [(t, b) for t, b in series if b]
        if not series:
            for b in self.bylen_bars:
                b.setOpts(x=[], height=[])
            self.bylen_panel.set_empty(True)
            return
        labels = list(dict.fromkeys(label for _t, buckets in series for label, _v, _n in buckets))
        k = len(series)
        width = 0.8 / k
        while len(self.bylen_bars) < k:
            i = len(self.bylen_bars)
            item = bar_item(BUCKET_COLORS[i % len(BUCKET_COLORS)], width)
            self.bylen_panel.item.addItem(item)
            self.bylen_bars.append(item)
        self.bylen_legend.clear()
        for i, bar in enumerate(self.bylen_bars):
            if i >= k:
                bar.setOpts(x=[], height=[])
                continue
            tag, buckets = series[i]
            vals = {label: v for label, v, _n in buckets}
            xs = [j - 0.4 + width * (i + 0.5) for j, lab in enumerate(labels) if lab in vals]
            hs = [vals[lab] for lab in labels if lab in vals]
            set_bars(bar, xs, hs, width * 0.92)
            self.bylen_legend.addItem(bar, tag)
        set_category_ticks(self.bylen_panel.item, labels)
        self.bylen_panel.item.setXRange(-0.6, len(labels) - 0.4, padding=0)
        self.bylen_panel.set_empty(False)

    def _update_accept(self) -> None:
        run = self._focus_run()
        rates = self.metrics.latest(run, "accept_rate/") if run else {}
        if not rates:
            rates = self._hist_rates
        if not rates:
            set_bars(self.accept_bars, [], [])
            self.accept_panel.set_empty(True)
            return
        kinds = sorted(rates, key=lambda k: (KINDS.index(k) if k in KINDS else 99, k))
        set_bars(self.accept_bars, range(len(kinds)), [rates[k] for k in kinds])
        set_category_ticks(self.accept_panel.item, [k.replace("_", " ") for k in kinds])
        while len(self.accept_text) < len(kinds):
            t = pg.TextItem("", color="#222", anchor=(0.5, 1.0))
            self.accept_panel.item.addItem(t)
            self.accept_text.append(t)
        for i, t in enumerate(self.accept_text):
            t.setVisible(i < len(kinds))
            if i < len(kinds):
                t.setText(f"{rates[kinds[i]]:.0%}")
                t.setPos(i, rates[kinds[i]])
        self.accept_panel.item.setXRange(-0.6, len(kinds) - 0.4, padding=0)
        self.accept_panel.set_empty(False)

    # ---- histogram (worker query) ---------------------------------------------------------------
    def _query_hist(self) -> None:
        run = self._focus_run()
        if run is None:
            self._show_hist(None)
            return
        judge = self.judge_combo.currentText()
        sels = self.selections.get(run) or []
        sel = sels[-1]["id"] if sels else None  # the latest selection
        self._hist_token += 1
        token = self._hist_token

        def work(log):
            rows = score_values(log, run, judge, sel)
            vals = np.array([np.nan if r["value"] is None else r["value"] for r in rows], dtype=float)
            acc = np.array([bool(r["accepted"]) for r in rows], dtype=bool)
            rates = accept_rates_from_rows(rows) if sel is not None else {}
            return token, judge, histogram_pair(vals, acc), rates, len(rows), sel

        self.db.submit(work, self._show_hist, lambda exc: self._show_hist(None))

    def _show_hist(self, result: Any) -> None:
        if result is None:
            set_bars(self.hist_acc, [], [])
            set_bars(self.hist_rej, [], [])
            self.hist_panel.set_empty(True)
            return
        token, judge, (edges, acc, rej), rates, n, sel = result
        if token != self._hist_token:
            return  # superseded
        if n == 0:
            self._show_hist(None)
            return
        centers = (edges[:-1] + edges[1:]) / 2
        w = (edges[1] - edges[0]) * 0.9
        if sel is None:  # no selection yet: everything is "rejected"-coloured, label it honestly
            set_bars(self.hist_acc, [], [])
        else:
            set_bars(self.hist_acc, centers, acc, w)
        set_bars(self.hist_rej, centers, rej, w)
        self.hist_panel.item.setYRange(0, max(1, int(max(acc.max(), rej.max()) * 1.1)), padding=0)
        self.hist_panel.title_label.setText(
            f"<b>Judge scores: accepted vs rejected</b> <span style='color:#777'>({judge}, "
            f"{n} samples{'' if sel is not None else ', no selection yet'})</span>")
        self.hist_panel.set_empty(False)
        self._hist_rates = rates
        if not self.metrics.latest(self._focus_run() or "", "accept_rate/"):
            self._update_accept()

    def shutdown(self) -> None:
        self.db.shutdown()
