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
    if suffix == ".svg":
        exporter = pg_exporters.SVGExporter(item)
    elif suffix in (".png", ".jpg", ".jpeg", ".bmp"):
        exporter = pg_exporters.ImageExporter(item)
        if width:
            exporter.parameters()["width"] = int(width)
    else:
        raise ValueError(f"unsupported plot format {suffix!r}; use .png or .svg")
    path.parent.mkdir(parents=True, exist_ok=True)
    exporter.export(str(path))
    return path


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
