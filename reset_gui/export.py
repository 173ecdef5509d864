"""Save plots as PNG or SVG (pyqtgraph exporters), from an "Export…" button or a right-click."""
from __future__ import annotations

import re
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters as pg_exporters
from PySide6 import QtWidgets


def export_plot(plot: pg.PlotWidget | pg.PlotItem, path: str | Path, width: int | None = None) -> Path:
    """Write a plot to `path`; the suffix picks the format (.png or .svg)."""
    path = Path(path)
    item = plot.getPlotItem() if isinstance(plot, pg.PlotWidget) else plot
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".svg":
        try:
            pg_exporters.SVGExporter(item).export(str(path))
        except Exception:  # noqa: BLE001 - pyqtgraph 0.14's SVG cleanup chokes on Qt 6.12 paths
            _svg_via_qt(item, path)
        return path
    if suffix in (".png", ".jpg", ".jpeg", ".bmp"):
        exporter = pg_exporters.ImageExporter(item)
        if width:
            exporter.parameters()["width"] = int(width)
    else:
        raise ValueError(f"unsupported plot format {suffix!r}; use .png or .svg")
    exporter.export(str(path))
    return path


def _svg_via_qt(item: pg.PlotItem, path: Path) -> None:
    """Render the plot item's scene rectangle with QSvgGenerator (vector output)."""
    from PySide6 import QtCore, QtGui, QtSvg

    rect = item.sceneBoundingRect()
    gen = QtSvg.QSvgGenerator()
    gen.setFileName(str(path))
    gen.setSize(QtCore.QSize(int(rect.width()), int(rect.height())))
    gen.setViewBox(QtCore.QRectF(0, 0, rect.width(), rect.height()))
    gen.setTitle("ReSet Studio plot")
    painter = QtGui.QPainter(gen)
    try:
        painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
        item.scene().render(painter, QtCore.QRectF(0, 0, rect.width(), rect.height()), rect)
    finally:
        painter.end()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", text).strip("_").lower() or "plot"


def export_plot_dialog(plot: pg.PlotWidget, parent: QtWidgets.QWidget | None = None,
                       default_name: str = "plot") -> Path | None:
    path, _ = QtWidgets.QFileDialog.getSaveFileName(
        parent, "Export plot", f"{_slug(default_name)}.png", "PNG image (*.png);;SVG vector (*.svg)")
    if not path:
        return None
    if not Path(path).suffix:
        path += ".png"
    try:
        return export_plot(plot, path)
    except Exception as exc:  # noqa: BLE001 - show, don't crash the GUI
        QtWidgets.QMessageBox.warning(parent, "Export failed", f"Could not export the plot:\n{exc}")
        return None
