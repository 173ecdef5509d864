"""Small base classes and widget helpers the window's parts share: a view fed by the run-log
poller, a read-only table model over a list of rows, box layouts and combos in one call, file
and folder dialogs, and a warning that does not block."""
from __future__ import annotations

from typing import Any, Callable, Iterable

from PySide6.QtCore import QAbstractTableModel, QModelIndex, Qt
from PySide6.QtWidgets import (QAbstractItemView, QBoxLayout, QComboBox, QFileDialog, QLayout,
                               QLineEdit, QMessageBox, QPushButton, QTableView, QWidget)


class RunView(QWidget):
    """A tab the main window feeds from the poller. Every hook is optional: a view overrides the
    ones it needs and the window calls all of them on every view."""

    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        """The whole runs table, whenever a run changes."""

    def on_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        """New rows of an append-only table ("metrics", "evals", …), or all of "stages"."""

    def set_current_run(self, run_id: str | None) -> None:
        """The run selected in the runs list."""

    def shutdown(self) -> None:
        """The window is closing: stop background work."""


def boxed(kind: type[QBoxLayout], items: list, parent: QWidget | None = None,
          margins: int | None = None) -> QBoxLayout:
    """A box layout of widgets and layouts, each alone or as (item, stretch); a number is a gap."""
    lay = kind(parent)
    if margins is not None:
        lay.setContentsMargins(margins, margins, margins, margins)
    for item in items:
        if isinstance(item, int):
            lay.addSpacing(item)
            continue
        item, stretch = item if isinstance(item, tuple) else (item, 0)
        (lay.addLayout if isinstance(item, QLayout) else lay.addWidget)(item, stretch)
    return lay


def fill_combo(combo: QComboBox, items: Iterable[tuple[str, Any]]) -> QComboBox:
    """``combo`` with an item added for each (label, data) pair."""
    for label, data in items:
        combo.addItem(label, data)
    return combo


def ask_path(parent: QWidget, title: str, then: Callable[[str], Any], start: str = "",
             filters: str = "", kind: str = "open") -> None:
    """Ask for a file to open, a file to save to (``kind="save"``) or a folder (``"folder"``), and
    hand the chosen path to ``then``; nothing happens when the dialog is cancelled."""
    if kind == "folder":
        path = QFileDialog.getExistingDirectory(parent, title, start)
    else:
        ask = QFileDialog.getSaveFileName if kind == "save" else QFileDialog.getOpenFileName
        path = ask(parent, title, start, filters)[0]
    if path:
        then(path)


def browse_button(edit: QLineEdit, title: str, **props) -> QPushButton:
    """A small "…" button that writes the folder chosen in a dialog into ``edit``."""
    return QPushButton("…", edit.parentWidget(), fixedWidth=28, **props,
                       clicked=lambda: ask_path(edit, title, edit.setText, kind="folder"))


def open_warning(parent: QWidget, title: str, text: str, **props) -> QMessageBox:
    """A warning box, window-modal but not blocking, that deletes itself when closed."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, text, QMessageBox.StandardButton.Ok, parent,
                      **props)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()
    return box


def read_only_table(view: QTableView, row_height: int = 20, row_numbers: bool = False) -> QTableView:
    """``view`` made read-only, with compact rows and (unless asked) no row-number column."""
    view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    view.verticalHeader().setVisible(row_numbers)
    view.verticalHeader().setDefaultSectionSize(row_height)
    return view


class TableModel(QAbstractTableModel):
    """A flat, read-only table: subclasses set ``COLUMNS``, keep their rows in ``rows`` and answer
    ``cell(row, column, role)``."""

    COLUMNS: tuple[str, ...] = ()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list[Any] = []

    def cell(self, row: Any, column: int, role: int) -> Any:
        raise NotImplementedError

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent=QModelIndex()) -> int:  # noqa: N802
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.COLUMNS[section]
        return None

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        return self.cell(self.rows[index.row()], index.column(), role)
