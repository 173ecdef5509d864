"""Plot building blocks shared by the Live and Compare tabs (drawing only; data lives in views.py).

``PlotPanel`` = titled pyqtgraph PlotWidget + an "Export…" button + an empty-state message.
``TradeoffPlot`` = the instruction-following × faithfulness scatter, updated in place.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from backend.eval_details import EvalDetails
from backend.scoring import Coverage, coverage

from .base import boxed
from .style import bold
from .views import TradeoffData, TradeoffPoint, pareto_front, run_color, tradeoff_tip

pg.setConfigOptions(antialias=True, background="w", foreground="#222")  # before any plot is made

AXIS_FONT = QtGui.QFont()
AXIS_FONT.setPointSize(8)
LABEL_FONT = bold(AXIS_FONT)
X_LABEL = "instruction following"


class PlotPanel(QtWidgets.QFrame):
    """A titled plot with an export button and an empty-state overlay."""

    def __init__(self, title: str, x_label: str = "", y_label: str = "",
                 empty_text: str = "No data yet", parent: QtWidgets.QWidget | None = None):
        super().__init__(parent, objectName="PlotPanel", frameShape=QtWidgets.QFrame.Shape.StyledPanel)
        # a long title or empty text may be clipped on a narrow window, never widen the whole grid
        clipped = QtWidgets.QSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                        QtWidgets.QSizePolicy.Policy.Preferred)
        self.title_label = QtWidgets.QLabel(f"<b>{title}</b>", toolTip=title, sizePolicy=clipped,
                                            minimumWidth=60)
        self.extra = QtWidgets.QHBoxLayout()  # room for per-plot controls (combos)
        self.export_button = QtWidgets.QToolButton(text="Save…", toolTip="Save this plot as PNG or SVG",
                                                   autoRaise=True, clicked=self._export)
        self.plot = pg.PlotWidget()
        self.plot.setMinimumHeight(150)
        pi = self.plot.getPlotItem()
        pi.showGrid(x=True, y=True, alpha=0.25)
        for ax in ("left", "bottom"):
            pi.getAxis(ax).setTickFont(AXIS_FONT)
        if x_label:
            pi.setLabel("bottom", x_label)
        if y_label:
            pi.setLabel("left", y_label)
        self.empty_label = QtWidgets.QLabel(
            empty_text, alignment=QtCore.Qt.AlignmentFlag.AlignCenter, wordWrap=True, sizePolicy=clipped,
            styleSheet="color: #777; font-style: italic; padding: 16px;")
        self.stack = QtWidgets.QStackedLayout()
        self.stack.addWidget(self.plot)
        self.stack.addWidget(self.empty_label)
        lay = boxed(QtWidgets.QVBoxLayout, [
            boxed(QtWidgets.QHBoxLayout, [(self.title_label, 1), self.extra, self.export_button]),
            (self.stack, 1)], self, margins=4)
        lay.setSpacing(2)
        self.set_empty(True)

    @property
    def item(self) -> pg.PlotItem:
        return self.plot.getPlotItem()

    def set_empty(self, empty: bool, text: str | None = None) -> None:
        if text is not None:
            self.empty_label.setText(text)
        self.stack.setCurrentWidget(self.empty_label if empty else self.plot)
        self.export_button.setEnabled(not empty)

    @property
    def is_empty(self) -> bool:
        return self.stack.currentWidget() is self.empty_label

    def _export(self) -> None:
        from .export import export_plot_dialog

        export_plot_dialog(self.plot, self, default_name=self.title_label.text()
                           .replace("<b>", "").replace("</b>", ""))


class CurveSet:
    """Named PlotDataItems on one plot, created on first use and then only setData'd."""

    def __init__(self, plot: pg.PlotItem):
        self.plot = plot
        self.curves: dict[Any, pg.PlotDataItem] = {}

    def set(self, key: Any, x: np.ndarray, y: np.ndarray, color: str, name: str | None = None,
            width: float = 1.6, style: QtCore.Qt.PenStyle = QtCore.Qt.PenStyle.SolidLine,
            symbol: str | None = None) -> pg.PlotDataItem:
        c = self.curves.get(key)
        if c is None:
            pen = pg.mkPen(color, width=width, style=style)
            c = self.plot.plot(name=name, pen=pen, symbol=symbol, symbolSize=5,
                               symbolBrush=color, symbolPen=None, connect="finite")
            self.curves[key] = c
        c.setData(x, y)
        return c

    def remove_except(self, keep: set) -> None:
        for key in list(self.curves):
            if key not in keep:
                self.plot.removeItem(self.curves.pop(key))

    def clear(self) -> None:
        self.remove_except(set())


class TradeoffPlot(QtCore.QObject):
    """Scatter of evaluated checkpoints: one ScatterPlotItem + joining line per run, the Pareto
    front across runs (dashed), the North Star corner (1, 1). Items are created once per run and
    updated with setData when eval rows arrive."""

    point_clicked = QtCore.Signal(str, str)  # run id, checkpoint tag

    def __init__(self, panel: PlotPanel, data: TradeoffData | None = None,
                 run_name: Callable[[str], str] | None = None):
        super().__init__(panel)
        self.panel = panel
        self.data = data or TradeoffData()
        self.run_name = run_name or (lambda r: r)
        self.visible_runs: list[str] | None = None  # None: all
        self.run_order: list[str] = []
        pi = panel.item
        pi.setLabel("bottom", X_LABEL)
        pi.setLabel("left", "faithfulness")
        pi.setXRange(0, 1.05, padding=0.02)
        pi.setYRange(0, 1.05, padding=0.02)
        self.legend = pi.addLegend(offset=(8, 8), labelTextSize="8pt")
        star = pg.ScatterPlotItem([1.0], [1.0], symbol="star", size=18,
                                  brush=pg.mkBrush("#f2b01e"), pen=pg.mkPen("#8a6400"))
        star.setZValue(5)
        pi.addItem(star)
        self.star_label = pg.TextItem("North Star (1, 1)", color="#8a6400", anchor=(1.05, 1.2))
        self.star_label.setPos(1.0, 1.0)
        pi.addItem(self.star_label)
        self.front = pg.PlotDataItem(pen=pg.mkPen("#555", width=1.2,
                                                  style=QtCore.Qt.PenStyle.DashLine),
                                     symbol="o", symbolSize=17, symbolBrush=None,
                                     symbolPen=pg.mkPen("#555", width=1))
        self.front.setZValue(1)
        pi.addItem(self.front)
        self.legend.addItem(self.front, "Pareto front")
        self.hover_text = pg.TextItem("", color="#111", fill=pg.mkBrush(255, 255, 225, 230),
                                      border=pg.mkPen("#999"), anchor=(0, 1))
        self.hover_text.setZValue(20)
        self.hover_text.hide()
        pi.addItem(self.hover_text)
        self.scatters: dict[str, pg.ScatterPlotItem] = {}
        self.lines: dict[str, pg.PlotDataItem] = {}
        self.errbars: dict[str, pg.ErrorBarItem] = {}  # 95 % bootstrap intervals, both axes
        self.labels: dict[tuple[str, str], pg.TextItem] = {}
        self.rebuilds = 0  # items created (tests check that new rows do not rebuild)
        # (run, checkpoint) -> which instruction prompts the x mean rests on: the axis says so
        self.if_coverage: dict[tuple[str, str], Coverage] = {}
        self.x_label = X_LABEL

    def color_of(self, run_id: str) -> str:
        if run_id not in self.run_order:
            self.run_order.append(run_id)
        return run_color(self.run_order.index(run_id))

    def _ensure(self, run_id: str) -> None:
        if run_id in self.scatters:
            return
        color = self.color_of(run_id)
        line = pg.PlotDataItem(pen=pg.mkPen(color, width=1.5))
        line.setZValue(2)
        sc = pg.ScatterPlotItem(size=11, pen=pg.mkPen("w", width=1), brush=pg.mkBrush(color),
                                hoverable=True, hoverSize=15, hoverPen=pg.mkPen("k", width=1.5),
                                tip=self._tip)
        sc.setZValue(3)
        sc.sigClicked.connect(self._clicked)
        sc.sigHovered.connect(self._hovered)
        err = pg.ErrorBarItem(x=np.zeros(0), y=np.zeros(0), beam=0.012,
                              pen=pg.mkPen(color, width=1.2))
        err.setZValue(2.5)
        self.panel.item.addItem(err)
        self.errbars[run_id] = err
        self.panel.item.addItem(line)
        self.panel.item.addItem(sc)
        self.legend.addItem(sc, self.run_name(run_id)[:28])
        self.scatters[run_id] = sc
        self.lines[run_id] = line
        self.rebuilds += 1

    def _tip(self, x: float, y: float, data: Any) -> str:
        if not isinstance(data, TradeoffPoint):
            return ""
        cov = self.if_coverage.get((data.run_id, data.tag))
        return tradeoff_tip(data, self.run_name(data.run_id)) + (f"\n{cov.label()}" if cov else "")

    def add_rows(self, rows: Sequence[dict[str, Any]]) -> None:
        for r in rows:
            if r.get("dataset") == "_all" and r.get("instruction_following") is not None:
                items = EvalDetails.from_json(r.get("details")).items.values()
                if items:  # rows written before per-item scores say nothing about coverage
                    self.if_coverage[(r["run_id"], r.get("checkpoint_tag") or "?")] = coverage(
                        [(it.dataset, it.kind, it.instruction_following) for it in items],
                        "instruction_following")
        self._label_x()
        changed = self.data.add_evals(rows)
        for run in sorted(changed, key=lambda r: (r not in self.run_order,
                                                  self.run_order.index(r) if r in self.run_order else 0, r)):
            self.update_run(run)
        if changed:
            self.update_front()

    def _label_x(self) -> None:
        """The x axis names a coverage gap: "IF: n = 24 of 47 instruction prompts (...);
        unscored: alpaca_instructions (23)" (one run's words, or a pointer to the tooltips)."""
        gaps = {c.label() for (run, _tag), c in self.if_coverage.items()
                if self._shown(run) and not c.complete}
        label = X_LABEL
        if len(gaps) == 1:
            label = f"{X_LABEL} — {gaps.pop()}"
        elif gaps:
            label = f"{X_LABEL} — IF covers only some instruction prompts (differs by run: see tooltips)"
        if label != self.x_label:
            self.x_label = label
            self.panel.item.setLabel("bottom", label)

    def _shown(self, run_id: str) -> bool:
        return self.visible_runs is None or run_id in self.visible_runs

    def update_run(self, run_id: str) -> None:
        if not self._shown(run_id):
            return
        self._ensure(run_id)
        pts = self.data.series(run_id)
        xs = np.array([p.x for p in pts])
        ys = np.array([p.y for p in pts])
        self.scatters[run_id].setData(x=xs, y=ys, data=pts)
        self.lines[run_id].setData(xs, ys)
        # interval bars: zero-length where a row has no interval (rows without per-item scores)
        self.errbars[run_id].setData(
            x=xs, y=ys,
            left=np.array([p.x - p.x_iv.lo if p.x_iv else 0.0 for p in pts]),
            right=np.array([p.x_iv.hi - p.x if p.x_iv else 0.0 for p in pts]),
            bottom=np.array([p.y - p.y_iv.lo if p.y_iv else 0.0 for p in pts]),
            top=np.array([p.y_iv.hi - p.y if p.y_iv else 0.0 for p in pts]))
        for p in pts:  # the checkpoint's tag beside its point, so "mtl" vs "reset" reads at once
            label = self.labels.get((run_id, p.tag))
            if label is None:
                label = pg.TextItem(p.tag, color=self.color_of(run_id), anchor=(-0.25, 0.5))
                label.setFont(LABEL_FONT)
                label.setZValue(4)
                self.panel.item.addItem(label)
                self.labels[(run_id, p.tag)] = label
            label.setPos(p.x, p.y)

    def update_front(self) -> None:
        pts = [p for r in self.data.points if self._shown(r) for p in self.data.series(r)]
        self.panel.set_empty(not pts)
        if not pts:
            self.front.setData([], [])
            return
        idx = pareto_front([(p.x, p.y) for p in pts])
        self.front.setData([pts[i].x for i in idx], [pts[i].y for i in idx])

    def set_visible_runs(self, runs: Sequence[str] | None) -> None:
        self.visible_runs = None if runs is None else list(runs)
        for run in list(self.scatters):
            if not self._shown(run):
                self.panel.item.removeItem(self.scatters.pop(run))
                self.panel.item.removeItem(self.lines.pop(run))
                self.panel.item.removeItem(self.errbars.pop(run))
                for key in [k for k in self.labels if k[0] == run]:
                    self.panel.item.removeItem(self.labels.pop(key))
                self.legend.removeItem(self.run_name(run)[:28])
        for run in self.data.points:
            self.update_run(run)
        self.update_front()
        self._label_x()

    def refresh_names(self) -> None:
        for run, sc in self.scatters.items():
            for sample, label in self.legend.items:
                if sample.item is sc:
                    label.setText(self.run_name(run)[:28])

    def point_count(self) -> int:
        return sum(len(sc.data) for sc in self.scatters.values())

    def _clicked(self, item: pg.ScatterPlotItem, points: Sequence[Any], ev: Any) -> None:
        if len(points):
            p = points[0].data()
            if isinstance(p, TradeoffPoint):
                self.point_clicked.emit(p.run_id, p.tag)

    def _hovered(self, item: pg.ScatterPlotItem, points: Sequence[Any], ev: Any) -> None:
        if len(points) and isinstance(points[0].data(), TradeoffPoint):
            p = points[0].data()
            self.hover_text.setText(tradeoff_tip(p, self.run_name(p.run_id)))
            self.hover_text.setPos(p.x, p.y)
            self.hover_text.setAnchor((1.0, 1.0) if p.x > 0.6 else (0.0, 1.0))
            self.hover_text.show()
        else:
            self.hover_text.hide()


def bar_item(color: str, width: float = 0.8) -> pg.BarGraphItem:
    return pg.BarGraphItem(x=[], height=[], width=width, brush=pg.mkBrush(color), pen=pg.mkPen(None))


def set_bars(item: pg.BarGraphItem, x: Sequence[float], heights: Sequence[float],
             width: float | None = None) -> None:
    opts: dict[str, Any] = {"x": np.asarray(x, dtype=float), "height": np.asarray(heights, dtype=float)}
    if width is not None:
        opts["width"] = width
    item.setOpts(**opts)


def set_category_ticks(plot: pg.PlotItem, labels: Sequence[str]) -> None:
    plot.getAxis("bottom").setTicks([[(i, l) for i, l in enumerate(labels)]])
