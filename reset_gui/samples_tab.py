"""Samples tab: browse prompts and every candidate response, with judge scores and highlights.

The prompt list is a lazy QAbstractTableModel over keyset-paged reads (``queries.fetch_prompt_page``,
200 rows a page, on a worker thread), so it stays fast on 100 000 samples. Choosing a prompt loads
its candidates (one small query) and shows them side by side, accepted ones first; unsupported
response sentences are red, words absent from the context darker red, and the context sentences
that support the chosen candidate green. The what-if selection panel sits on the right.
"""
from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

from PySide6 import QtCore, QtGui, QtWidgets

from backend.queries import (PAGE_SIZE, PromptFilter, count_prompts, fetch_candidates,
                             fetch_prompt_page, prompt_stages, selections)
from backend.vocab import KINDS

from .base import RunView, TableModel, boxed, fill_combo, read_only_table
from .poller import Background
from .style import RIGHT
from .views import faith_highlights, fmt, judge_why, loads_json, spans_html
from .whatif import WhatIfPanel

UNSUPPORTED_CSS = "background-color: #ffd0d0;"
MISSING_CSS = "background-color: #ff9c9c; font-weight: bold;"
SUPPORT_CSS = "background-color: #c9f2c7;"
PLACEHOLDER_HTML = (f"<p style='color:#777'><i>Choose a prompt on the left to see its context and "
                    f"every candidate response. Unsupported sentences are <span style='"
                    f"{UNSUPPORTED_CSS}'>red</span>; the context that supports the chosen candidate "
                    f"is <span style='{SUPPORT_CSS}'>green</span>.</i></p>")
FAITH_PREFERENCE = ("faith_summac", "faith_lm", "faith_factcc", "faith_minilm", "faith_lexical")
JUDGE_ORDER = ("combined", "cat:task", "cat:faithfulness", "cat:instruction_following", "rouge_l",
               "token_f1", "faith_summac", "faith_lm", "faith_factcc", "faith_minilm",
               "faith_lexical", "ifeval", "llm_judge")


class PromptListModel(TableModel):
    COLUMNS = ("id", "kind", "prompt", "cand.", "best", "acc.")
    page_loaded = QtCore.Signal(int, float)  # rows in the model, ms for the page
    count_known = QtCore.Signal(int)

    def __init__(self, db: Background, parent: QtCore.QObject | None = None):
        super().__init__(parent)
        self.db = db
        self.filter = PromptFilter()
        self.gen = 0
        self.loading = False
        self.exhausted = True
        self.total: int | None = None
        self.last_page_ms = 0.0

    # Qt model API
    def cell(self, r: dict[str, Any], col: int, role: int) -> Any:
        if role == QtCore.Qt.ItemDataRole.DisplayRole:
            return (str(r["id"]), (r.get("kind") or "").replace("_", " "),
                    " ".join((r.get("prompt") or "").split())[:160], str(r.get("n") or 0),
                    fmt(r.get("best"), 2), "" if r.get("n_acc") is None else str(r["n_acc"]))[col]
        if role == QtCore.Qt.ItemDataRole.ToolTipRole and col == 2:
            return f"{r.get('key')}\n\n{r.get('prompt')}"
        if role == QtCore.Qt.ItemDataRole.TextAlignmentRole and col in (0, 3, 4, 5):
            return int(RIGHT)
        if role == QtCore.Qt.ItemDataRole.ForegroundRole and col == 5 and r.get("n_acc"):
            return QtGui.QColor("#087f23")
        return None

    def canFetchMore(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> bool:
        return not parent.isValid() and not self.exhausted and not self.loading

    def fetchMore(self, parent: QtCore.QModelIndex = QtCore.QModelIndex()) -> None:
        self._request()

    # paging
    def set_filter(self, flt: PromptFilter) -> None:
        self.gen += 1
        self.beginResetModel()
        self.rows = []
        self.filter = flt
        self.loading = False
        self.exhausted = flt.run_id is None
        self.total = None
        self.endResetModel()
        if not self.exhausted:
            self._request()
            gen = self.gen
            self.db.submit(lambda log: (gen, count_prompts(log, flt)), self._got_count)

    def _request(self) -> None:
        if self.loading or self.exhausted:
            return
        self.loading = True
        gen, flt = self.gen, self.filter
        after = self.rows[-1]["id"] if self.rows else 0

        def work(log):
            t0 = time.perf_counter()
            page = fetch_prompt_page(log, flt, after, PAGE_SIZE)
            return gen, page, (time.perf_counter() - t0) * 1000

        self.db.submit(work, self._got_page, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.loading = False
        self.exhausted = True

    def _got_page(self, result: Any) -> None:
        gen, page, ms = result
        if gen != self.gen:
            return
        self.loading = False
        self.last_page_ms = ms
        if len(page) < PAGE_SIZE:
            self.exhausted = True
        if page:
            self.beginInsertRows(QtCore.QModelIndex(), len(self.rows), len(self.rows) + len(page) - 1)
            self.rows.extend(page)
            self.endInsertRows()
        self.page_loaded.emit(len(self.rows), ms)

    def _got_count(self, result: Any) -> None:
        gen, n = result
        if gen == self.gen:
            self.total = n
            self.count_known.emit(n)


class CandidateCard(QtWidgets.QFrame):
    chosen = QtCore.Signal(object)  # the card

    def __init__(self, cand: dict[str, Any], context_len: int, has_selection: bool = True,
                 parent: QtWidgets.QWidget | None = None):
        super().__init__(parent, objectName="CandidateCard", frameShape=QtWidgets.QFrame.Shape.StyledPanel,
                         cursor=QtCore.Qt.CursorShape.PointingHandCursor, fixedWidth=330)
        self.cand = cand
        accepted = cand.get("accepted")
        self.accepted = bool(accepted)
        self.set_chosen(False)
        params = cand.get("params") or {}
        if not has_selection:
            badge = ""
        elif accepted:
            badge = "<span style='color:#fff; background:#2e7d32;'>&nbsp;ACCEPTED&nbsp;</span> &nbsp;"
        else:
            badge = "<span style='color:#fff; background:#9e9e9e;'>&nbsp;rejected&nbsp;</span> &nbsp;"
        dec = html.escape(str(cand.get("decoding") or "?"))
        par = ", ".join(f"{k} {v}" for k, v in params.items() if k in ("temperature", "top_p"))
        head = QtWidgets.QLabel(
            f"{badge}<b>#{cand.get('cand_idx')}</b> · <b>{dec}</b>"
            f"{' (' + html.escape(par) + ')' if par else ''}<br>"
            f"<span style='color:#555'>{cand.get('n_tokens') or 0} tokens"
            f"{' · seed ' + str(cand['seed']) if cand.get('seed') is not None else ''}"
            f"{' · ' + html.escape(str(cand['finish_reason'])) if cand.get('finish_reason') else ''}"
            f"</span> &nbsp; combined <b>{fmt(cand.get('combined'))}</b>", wordWrap=True)
        self.scores_label = QtWidgets.QLabel(self._scores_html(), wordWrap=True,
                                             textFormat=QtCore.Qt.TextFormat.RichText)
        text = cand.get("text") or ""
        self.faith_judge, details = self._faith_details()
        hl = faith_highlights(details, len(text), context_len)
        self.support_spans = hl.support
        self.unsupported = hl.unsupported
        spans = spans_html(text, [(hl.unsupported, UNSUPPORTED_CSS), (hl.missing, MISSING_CSS)])
        self.response = QtWidgets.QTextBrowser(openLinks=False,
                                               html=f"<div style='font-size:9pt'>{spans}</div>")
        self.response.viewport().setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
        self.response.viewport().installEventFilter(self)
        lay = boxed(QtWidgets.QVBoxLayout, [head, self.scores_label, (self.response, 1)], self)
        lay.setContentsMargins(8, 6, 8, 6)
        lay.setSpacing(4)

    def _faith_details(self) -> tuple[str | None, Any]:
        scores = self.cand.get("scores") or {}
        for j in FAITH_PREFERENCE:
            if j in scores:
                return j, scores[j][2]
        for j, (_v, cat, det) in scores.items():
            if cat == "faithfulness" and not j.startswith("cat:"):
                return j, det
        return None, None

    def _scores_html(self) -> str:
        scores = self.cand.get("scores") or {}
        order = [j for j in JUDGE_ORDER if j in scores] + sorted(j for j in scores if j not in JUDGE_ORDER)
        rows = []
        for j in order:
            value, _cat, details = scores[j]
            why = judge_why(j, value, details)
            name = j.replace("cat:", "")
            style = "font-weight:bold;" if j == "combined" or j.startswith("cat:") else ""
            rows.append(f"<tr><td style='{style} padding-right:6px'>{html.escape(name)}</td>"
                        f"<td align='right' style='{style} padding-right:6px'>{fmt(value)}</td>"
                        f"<td style='color:#666'>{html.escape(why)}</td></tr>")
        if not rows:
            return "<i style='color:#777'>not judged yet</i>"
        return "<table cellspacing='0' style='font-size:8pt'>" + "".join(rows) + "</table>"

    def set_chosen(self, on: bool) -> None:
        bg, border = ("#f3fbf3", "#6cbf6c") if self.accepted else ("#fafafa", "#c8c8c8")
        if on:
            border = "#1b5e20" if self.accepted else "#1565c0"
        self.setStyleSheet(f"QFrame#CandidateCard {{ background: {bg}; border: {2 if on else 1}px "
                           f"solid {border}; border-radius: 4px; }}")

    def mousePressEvent(self, ev: QtGui.QMouseEvent) -> None:
        self.chosen.emit(self)
        super().mousePressEvent(ev)

    def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:
        if ev.type() == QtCore.QEvent.Type.MouseButtonPress:
            self.chosen.emit(self)
        return False


class SamplesTab(RunView):
    run_launched = QtCore.Signal(str)

    def __init__(self, runlog_path: Path, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.runlog_path = Path(runlog_path)
        self.db = Background(self, runlog_path=self.runlog_path)
        self.runs: dict[str, dict[str, Any]] = {}
        self.current_run: str | None = None
        self.stage_choices: list[dict[str, Any]] = []
        self.selections: dict[str, list[dict[str, Any]]] = {}
        self.prompt: dict[str, Any] | None = None
        self.cands: list[dict[str, Any]] = []
        self.cards: list[CandidateCard] = []
        self._pending_tag: str | None = None
        self._stage_token = 0
        self._cand_token = 0
        self._build()

    # ---- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        self.splitter = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        boxed(QtWidgets.QHBoxLayout, [self.splitter], self, margins=6)

        # left: filters + list
        self.stage_combo = QtWidgets.QComboBox(
            toolTip="Sampling stage, or the generations of one checkpoint's evaluation")
        self.selection_combo = QtWidgets.QComboBox(
            toolTip="Accepted/rejected are relative to this selection")
        self.kind_combo = fill_combo(QtWidgets.QComboBox(), [
            ("all kinds", None), *((k.replace("_", " "), k) for k in KINDS)])
        self.accept_combo = fill_combo(QtWidgets.QComboBox(), [
            ("all prompts", None), ("with an accepted candidate", True), ("with none accepted", False)])
        self.min_spin, self.max_spin = (
            QtWidgets.QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.05, decimals=2, value=v,
                                     toolTip=f"Best combined score of the prompt's candidates {op} this")
            for v, op in ((0.0, "≥"), (1.0, "≤")))
        self.search_edit = QtWidgets.QLineEdit(placeholderText="search prompt text…",
                                               clearButtonEnabled=True,
                                               textChanged=lambda _t: self._search_timer.start())
        form = QtWidgets.QGridLayout(horizontalSpacing=6, verticalSpacing=3)
        for row, label in enumerate(("Stage", "Selection", "Kind", "Best score")):
            form.addWidget(QtWidgets.QLabel(label), row, 0)
        form.addWidget(self.stage_combo, 0, 1, 1, 3)
        form.addWidget(self.selection_combo, 1, 1, 1, 3)
        form.addWidget(self.kind_combo, 2, 1)
        form.addWidget(self.accept_combo, 2, 2, 1, 2)
        form.addWidget(self.min_spin, 3, 1)
        form.addWidget(QtWidgets.QLabel("to"), 3, 2, QtCore.Qt.AlignmentFlag.AlignCenter)
        form.addWidget(self.max_spin, 3, 3)
        form.addWidget(self.search_edit, 4, 0, 1, 4)
        form.setColumnStretch(1, 1)
        form.setColumnStretch(3, 1)
        self.count_label = QtWidgets.QLabel("", styleSheet="color:#555;")
        self.model = PromptListModel(self.db, self)
        self.view = read_only_table(QtWidgets.QTableView(
            selectionBehavior=QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows,
            selectionMode=QtWidgets.QAbstractItemView.SelectionMode.SingleSelection,
            wordWrap=False), 22)
        self.view.setModel(self.model)
        hh = self.view.horizontalHeader()
        hh.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.Stretch)
        self.view.selectionModel().currentRowChanged.connect(self._row_changed)
        self.empty_label = QtWidgets.QLabel("", wordWrap=True,
                                            styleSheet="color:#777; font-style: italic;")
        left = QtWidgets.QWidget()
        boxed(QtWidgets.QVBoxLayout, [form, self.count_label, (self.view, 1), self.empty_label], left,
              margins=0)
        # the what-if panel shares the left column with the prompt list, so the candidates get
        # the width they need to stand side by side
        self.side_tabs = QtWidgets.QTabWidget(minimumWidth=360)
        self.side_tabs.addTab(left, "Prompts")
        self.splitter.addWidget(self.side_tabs)

        # middle: prompt + context, candidates
        mid = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.context_view = QtWidgets.QTextBrowser(openLinks=False, html=PLACEHOLDER_HTML)
        mid.addWidget(self.context_view)
        self.cand_header = QtWidgets.QLabel("", wordWrap=True)
        self.cards_host = QtWidgets.QWidget()
        self.cards_layout = boxed(QtWidgets.QHBoxLayout, [], self.cards_host, margins=2)
        self.cards_layout.addStretch(1)
        self.cards_area = QtWidgets.QScrollArea(
            widgetResizable=True, horizontalScrollBarPolicy=QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.cards_area.setWidget(self.cards_host)
        cand_box = QtWidgets.QWidget()
        boxed(QtWidgets.QVBoxLayout, [self.cand_header, (self.cards_area, 1)], cand_box, margins=0)
        mid.addWidget(cand_box)
        mid.setStretchFactor(0, 2)
        mid.setStretchFactor(1, 3)
        mid.setSizes([330, 520])
        self.splitter.addWidget(mid)

        # right: what-if
        self.whatif = WhatIfPanel(self.runlog_path)  # own worker: loading never delays paging
        self.whatif.selection_saved.connect(self._selection_saved)
        self.whatif.run_launched.connect(self.run_launched)
        self.side_tabs.addTab(self.whatif, "What-if selection")
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 5)
        self.splitter.setSizes([390, 700])

        self._search_timer = QtCore.QTimer(self, singleShot=True, interval=250,
                                           timeout=self.apply_filter)
        for combo in (self.stage_combo, self.selection_combo, self.kind_combo, self.accept_combo):
            combo.currentIndexChanged.connect(lambda _i: self.apply_filter())
        for spin in (self.min_spin, self.max_spin):
            spin.valueChanged.connect(lambda _v: self._search_timer.start())
        self.model.page_loaded.connect(self._page_loaded)
        self.model.count_known.connect(self._count_known)
        self._update_empty()

    # ---- interface ------------------------------------------------------------------------------
    def set_runs(self, runs: list[dict[str, Any]]) -> None:
        self.runs = {r["id"]: r for r in runs}
        if self.current_run is None and runs:
            self.set_current_run(runs[-1]["id"])

    def set_current_run(self, run_id: str | None) -> None:
        if run_id == self.current_run:
            return
        self.current_run = run_id
        self.whatif.set_run(run_id, (self.runs.get(run_id) or {}).get("config_toml") if run_id else None)
        self._load_stages()

    def open_checkpoint(self, run_id: str, tag: str) -> None:
        """Show the evaluation generations of one checkpoint (else the run's sampling stage)."""
        self._pending_tag = tag
        if run_id != self.current_run:
            self.set_current_run(run_id)
        else:
            self._load_stages()

    def on_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows or self.current_run is None:
            return
        mine = [r for r in rows if r.get("run_id") == self.current_run]
        if not mine:
            return
        if table == "selections":
            self._load_stages(keep=True)
        elif table == "prompts":
            known = {(c["stage_idx"], c.get("key_prefix")) for c in self.stage_choices}
            if any((r["stage_idx"], (r.get("key") or "").split("|", 1)[0] if "|" in (r.get("key") or "")
                    else None) not in known for r in mine):
                self._load_stages(keep=True)
            elif self.model.exhausted and self.model.filter.stage_idx in {r["stage_idx"] for r in mine}:
                self.model.exhausted = False  # more rows exist past the last page: fetch lazily
                self.model._request()
        elif table == "scores" and self.whatif.arrays is None:
            self.whatif.set_run(self.current_run, (self.runs.get(self.current_run) or {}).get("config_toml"))

    # ---- stages / selections --------------------------------------------------------------------
    def _load_stages(self, keep: bool = False) -> None:
        run_id = self.current_run
        self._stage_token += 1
        token = self._stage_token
        if run_id is None:
            self._got_stages((token, [], []))
            return

        def work(log):
            return token, prompt_stages(log, run_id), selections(log, run_id)

        prev = self.stage_combo.currentData() if keep else None
        prev_sel = self.selection_combo.currentData() if keep else None
        self.db.submit(work, lambda res: self._got_stages(res, prev, prev_sel))

    def _got_stages(self, result: Any, prev: Any = None, prev_sel: Any = None) -> None:
        token, stages, sels = result
        if token != self._stage_token:
            return
        self.stage_choices = stages
        self.selections[self.current_run or ""] = sels
        # choose: the pending checkpoint, else the previous choice, else the first sampling stage
        pick = 0
        if self._pending_tag is not None:
            pick = next((i for i, st in enumerate(stages) if st.get("tag") == self._pending_tag), 0)
            self._pending_tag = None
        elif prev is not None and prev < len(stages):
            pick = prev
        with QtCore.QSignalBlocker(self.stage_combo), QtCore.QSignalBlocker(self.selection_combo):
            self.stage_combo.clear()
            self.selection_combo.clear()
            fill_combo(self.stage_combo, [(st["label"], i) for i, st in enumerate(stages)])
            fill_combo(self.selection_combo, [("(no selection)", None), *(
                (f"{s['name']} ({s['n_selected']} kept)", s["id"]) for s in sels)])
            if stages:
                self.stage_combo.setCurrentIndex(pick)
            if prev_sel is not None and self.selection_combo.findData(prev_sel) >= 0:
                self.selection_combo.setCurrentIndex(self.selection_combo.findData(prev_sel))
            elif sels:
                self.selection_combo.setCurrentIndex(self.selection_combo.count() - 1)
        self.apply_filter()

    def _selection_saved(self, run_id: str, name: str) -> None:
        if run_id == self.current_run:
            self._load_stages(keep=True)

    # ---- filtering ------------------------------------------------------------------------------
    def current_filter(self) -> PromptFilter:
        i = self.stage_combo.currentData()
        st = self.stage_choices[i] if i is not None and i < len(self.stage_choices) else None
        is_eval = bool(st and st.get("type") == "evaluate")
        self.selection_combo.setEnabled(not is_eval)
        self.accept_combo.setEnabled(not is_eval and self.selection_combo.currentData() is not None)
        sel = None if is_eval else self.selection_combo.currentData()
        lo, hi = self.min_spin.value(), self.max_spin.value()
        return PromptFilter(
            run_id=self.current_run if st else None,
            stage_idx=st["stage_idx"] if st else None,
            key_prefix=st.get("key_prefix") if st else None,
            kind=self.kind_combo.currentData(),
            selection_id=sel,
            accepted=self.accept_combo.currentData() if sel is not None else None,
            min_score=lo if lo > 0 else None,
            max_score=hi if hi < 1 else None,
            text=self.search_edit.text().strip() or None)

    def apply_filter(self) -> None:
        self.count_label.setText("loading…")
        self.model.set_filter(self.current_filter())
        self._clear_inspector()
        self._update_empty()

    def _page_loaded(self, n_rows: int, ms: float) -> None:
        total = self.model.total
        self.count_label.setText(f"{total if total is not None else n_rows}"
                                 f"{'' if total is not None or self.model.exhausted else '+'} prompts"
                                 f" · page in {ms:.0f} ms")
        self._update_empty()
        if n_rows and not self.view.currentIndex().isValid():
            self.view.setCurrentIndex(self.model.index(0, 0))

    def _count_known(self, n: int) -> None:
        self.count_label.setText(f"{n} prompts" + (f" · page in {self.model.last_page_ms:.0f} ms"
                                                   if self.model.rows else ""))
        self._update_empty()

    def _update_empty(self) -> None:
        if self.current_run is None:
            msg = "No run chosen — pick a run to browse its prompts and samples."
        elif not self.stage_choices:
            msg = "This run has no sampled or evaluated prompts yet — they appear after its sample " \
                  "or evaluate stage."
        elif not self.model.rows and (self.model.exhausted and not self.model.loading):
            msg = "No prompt matches these filters."
        else:
            msg = ""
        self.empty_label.setText(msg)
        self.empty_label.setVisible(bool(msg))

    # ---- inspector ------------------------------------------------------------------------------
    def _clear_inspector(self) -> None:
        self.prompt, self.cands = None, []
        for c in self.cards:
            c.setParent(None)
            c.deleteLater()
        self.cards = []
        self.cand_header.setText("")
        self.context_view.setHtml(PLACEHOLDER_HTML)

    def _row_changed(self, cur: QtCore.QModelIndex, _prev: QtCore.QModelIndex) -> None:
        if not cur.isValid() or cur.row() >= len(self.model.rows):
            return
        self.show_prompt(self.model.rows[cur.row()]["id"])

    def show_prompt(self, prompt_id: int) -> None:
        self._cand_token += 1
        token = self._cand_token
        sel = self.model.filter.selection_id

        def work(log):
            return token, *fetch_candidates(log, prompt_id, sel)

        self.db.submit(work, self._got_candidates)

    def _got_candidates(self, result: Any) -> None:
        token, prompt, cands = result
        if token != self._cand_token:
            return
        self._clear_inspector()
        self.prompt, self.cands = prompt, cands
        if prompt is None:
            return
        n_acc = sum(1 for c in cands if c["accepted"])
        self.cand_header.setText(
            f"<b>{len(cands)} candidate{'s' if len(cands) != 1 else ''}</b>"
            + (f" · <span style='color:#2e7d32'>{n_acc} accepted</span>"
               if self.model.filter.selection_id is not None else "")
            + " · click a card to show its supporting context")
        ctx_len = len(prompt.get("context") or "")
        self.cards_layout.takeAt(self.cards_layout.count() - 1)  # the stretch
        for c in cands:
            card = CandidateCard(c, ctx_len, self.model.filter.selection_id is not None)
            card.chosen.connect(self.choose_card)
            self.cards_layout.addWidget(card)
            self.cards.append(card)
        self.cards_layout.addStretch(1)
        self.choose_card(self.cards[0] if self.cards else None)

    def choose_card(self, card: CandidateCard | None) -> None:
        for c in self.cards:
            c.set_chosen(c is card)
        self.context_view.setHtml(self._context_html(card))

    def _context_html(self, card: CandidateCard | None) -> str:
        p = self.prompt or {}
        parts = [f"<p style='color:#555; font-size:8pt'>{html.escape(str(p.get('kind', '')))} · "
                 f"{html.escape(str(p.get('source') or ''))} · key {html.escape(str(p.get('key', '')))}</p>",
                 f"<h4 style='margin:2px 0'>Prompt</h4><p>{html.escape(p.get('prompt') or '').replace(chr(10), '<br>')}</p>"]
        cons = loads_json(p.get("constraints"))
        if isinstance(cons, dict) and cons.get("instruction_id_list"):
            parts.append("<p style='color:#555'><b>Verifiable instructions:</b> "
                         + html.escape(", ".join(cons["instruction_id_list"])) + "</p>")
        if p.get("context"):
            spans = card.support_spans if card else []
            judge = f" <span style='color:#777; font-size:8pt'>(support from {card.faith_judge}, " \
                    f"candidate #{card.cand.get('cand_idx')})</span>" if card and card.faith_judge else ""
            parts.append(f"<h4 style='margin:2px 0'>Context{judge}</h4><p>"
                         f"{spans_html(p['context'], [(spans, SUPPORT_CSS)])}</p>")
        if p.get("reference"):
            parts.append(f"<h4 style='margin:2px 0'>Reference</h4><p style='color:#333'>"
                         f"{html.escape(p['reference']).replace(chr(10), '<br>')}</p>")
        return "".join(parts)

    def shutdown(self) -> None:
        self.db.shutdown()
        self.whatif.shutdown()
