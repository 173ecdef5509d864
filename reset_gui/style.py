"""Colours, fonts and small formatting helpers shared by the GUI panes."""
from __future__ import annotations

import functools
import time

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QIcon, QPainter, QPixmap

from backend.vocab import Status

APP_NAME = "ReSet Studio"

STATUS_COLORS: dict[str, str] = {
    Status.RUNNING: "#1f6fd1",    # blue
    Status.SUCCEEDED: "#1e8a3a",  # green
    Status.FAILED: "#d12c2c",     # red
    Status.DIED: "#8b0000",       # dark red
    Status.CANCELLED: "#7a7a7a",  # grey
    Status.QUEUED: "#c98a00",     # amber
}
LEVEL_COLORS = {"error": "#c62828", "warning": "#b26a00", "info": "#222222", "debug": "#777777"}
ERROR_RED = "#c62828"
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter

STYLESHEET = """
QMainWindow, QWidget { font-size: 10pt; }
QLabel#ErrorLabel { color: #c62828; }
QLabel#HintLabel { color: #1f4e8c; background: #eaf2fc; border: 1px solid #b9d2f0;
                   border-radius: 4px; padding: 6px 8px; }
QLabel#DefaultsNote { color: #666666; font-style: italic; }
QLabel#SectionTitle { font-weight: 600; }
QLabel#Placeholder { color: #777777; font-size: 11pt; }
QGroupBox { font-weight: 600; margin-top: 10px; }
QGroupBox::title { subcontrol-origin: margin; left: 8px; padding: 0 3px; }
QGroupBox > QWidget { font-weight: normal; }
QTableView { gridline-color: #e3e3e3; }
QHeaderView::section { padding: 3px 6px; }
QPlainTextEdit#ProblemText { background: #fff5f5; border: 1px solid #f0c4c4; }
"""


def status_color(status: str | None) -> QColor:
    return QColor(STATUS_COLORS.get(status or "", "#444444"))


@functools.cache
def status_icon(status: str | None) -> QIcon:
    pm = QPixmap(12, 12)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setBrush(status_color(status))
    p.setPen(Qt.PenStyle.NoPen)
    p.drawEllipse(1, 1, 10, 10)
    p.end()
    return QIcon(pm)


def bold(font: QFont | None = None) -> QFont:
    """A bold copy of ``font`` (default: the application font)."""
    font = QFont() if font is None else QFont(font)
    font.setBold(True)
    return font


def mono_font() -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setPointSize(9)
    return font


def fmt_duration(seconds: float | None) -> str:
    if seconds is None or seconds < 0:
        return ""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def fmt_time(t: float | None) -> str:
    if not t:
        return ""
    if time.time() - t < 20 * 3600:
        return time.strftime("%H:%M:%S", time.localtime(t))
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
