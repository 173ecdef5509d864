"""Live, Samples (+ what-if) and Compare tabs on a real run log (pytest-qt, offscreen)."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("pytestqt")
from PySide6 import QtCore  # noqa: E402

from backend.queries import PromptFilter, fetch_prompt_page  # noqa: E402
from backend.runlog import RunLog  # noqa: E402
from reset_gui.compare_tab import CompareTab  # noqa: E402
from reset_gui.export import export_plot  # noqa: E402
from reset_gui.live_tab import LiveTab  # noqa: E402
from reset_gui.samples_tab import SamplesTab  # noqa: E402
from reset_gui.views import pareto_front  # noqa: E402

from tests.test_gui_tabs_data import build_runlog  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return build_runlog(home)


def _rows(path, table):
    with RunLog(path, readonly=True) as log:
        return log.list_runs() if table == "runs" else log.read_since(table, 0)


def _feed(tab, path, tables=("stages", "metrics", "checkpoints", "evals", "selections")):
    tab.set_runs(_rows(path, "runs"))
    for t in tables:
        tab.on_rows(t, _rows(path, t))


def _make(qtbot, cls, path):
    tab = cls(Path(path))
    qtbot.addWidget(tab)
    tab.resize(1500, 900)
    return tab


@pytest.fixture
def closer():
    tabs = []
    yield tabs.append
    for t in tabs:
        t.shutdown()


# ---- pure helpers ---------------------------------------------------------------------------------
def test_pareto_front():
    pts = [(0.2, 0.9), (0.5, 0.5), (0.4, 0.4), (0.9, 0.2), (0.5, 0.6)]
    assert pareto_front(pts) == [0, 4, 3]


def test_gui_modules_do_not_import_torch():
    mods = ["reset_gui.views", "reset_gui.plots", "reset_gui.live_tab", "reset_gui.samples_tab",
            "reset_gui.whatif", "reset_gui.compare_tab", "reset_gui.export", "backend.export",
            "backend.plans"]
    code = ("import importlib, sys\n"
            f"for m in {mods!r}: importlib.import_module(m)\n"
            "try:\n    import backend.stages.select\nexcept ImportError:\n    pass\n"
            "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
            "assert not bad, bad\n")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


# ---- live tab -------------------------------------------------------------------------------------
def test_tradeoff_one_point_per_checkpoint(qtbot, demo, closer):
    tab = _make(qtbot, LiveTab, demo["path"])
    closer(tab)
    assert tab.tradeoff_panel.is_empty
    _feed(tab, demo["path"])
    n_all = sum(1 for r in _rows(demo["path"], "evals") if r["dataset"] == "_all")
    assert n_all == 4
    assert tab.tradeoff.point_count() == n_all
    assert not tab.tradeoff_panel.is_empty
    # per-run line joins the points in checkpoint order
    x, _y = tab.tradeoff.lines[demo["reset"]].getData()
    assert len(x) == 2


def test_new_eval_rows_add_points_in_place(qtbot, demo, closer):
    tab = _make(qtbot, LiveTab, demo["path"])
    closer(tab)
    evals = _rows(demo["path"], "evals")
    last_all = max(i for i, r in enumerate(evals) if r["dataset"] == "_all")
    tab.set_runs(_rows(demo["path"], "runs"))
    tab.on_rows("evals", evals[:last_all])
    before = tab.tradeoff.point_count()
    items = {k: id(v) for k, v in tab.tradeoff.scatters.items()}
    rebuilds = tab.tradeoff.rebuilds
    tab.on_rows("evals", evals[last_all:])
    assert tab.tradeoff.point_count() == before + 1
    assert {k: id(v) for k, v in tab.tradeoff.scatters.items()} == items  # same items, setData only
    assert tab.tradeoff.rebuilds == rebuilds


def test_click_on_point_emits_checkpoint_clicked(qtbot, demo, closer):
    tab = _make(qtbot, LiveTab, demo["path"])
    closer(tab)
    _feed(tab, demo["path"])
    tab.show()
    qtbot.waitExposed(tab)
    qtbot.wait(50)
    p = tab.tradeoff.data.series(demo["reset"])[-1]
    pw = tab.tradeoff_panel.plot
    vb = pw.getPlotItem().getViewBox()
    scene_pos = vb.mapViewToScene(QtCore.QPointF(p.x, p.y))
    view_pos = pw.mapFromScene(scene_pos)
    with qtbot.waitSignal(tab.checkpoint_clicked, timeout=2000) as sig:
        qtbot.mousePress(pw.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=view_pos)
        qtbot.mouseRelease(pw.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=view_pos)
    assert sig.args == [demo["reset"], p.tag]


def test_live_training_and_selection_plots(qtbot, demo, closer):
    tab = _make(qtbot, LiveTab, demo["path"])
    closer(tab)
    _feed(tab, demo["path"])
    tab.set_current_run(demo["reset"])
    x, y = tab.loss_curves.curves[(demo["reset"], "loss")].getData()
    finite = x[np.isfinite(y)]
    assert len(finite) == 50 and finite[-1] == 50  # stages laid end to end (30 + 20 steps)
    assert np.isnan(y).sum() == 1  # one gap: the two stages' curves are not joined
    smooth = tab.loss_curves.curves[(demo["reset"], "loss_ema")].getData()[1]
    assert np.nanstd(np.diff(smooth)) < np.nanstd(np.diff(y))  # the trend is smoother than the raw steps
    assert [ln.value() for ln in tab.boundaries["loss"] if ln.isVisible()] == [30]
    gx, gy = tab.genlen_curves.curves[(demo["reset"], "gen_length")].getData()
    assert len(gx[np.isfinite(gy)]) == 10
    assert not tab.bylen_panel.is_empty
    assert len(tab.accept_bars.opts["height"]) == 4
    qtbot.waitUntil(lambda: not tab.hist_panel.is_empty, timeout=5000)
    acc, rej = tab.hist_acc.opts["height"], tab.hist_rej.opts["height"]
    assert acc.sum() > 0 and rej.sum() > 0 and acc.sum() + rej.sum() == 8000
    tab.judge_combo.setCurrentText("cat:faithfulness")
    qtbot.waitUntil(lambda: "cat:faithfulness" in tab.hist_panel.title_label.text(), timeout=5000)
    # a new metrics row extends the curve in place
    curve = tab.loss_curves.curves[(demo["reset"], "loss")]
    tab.on_rows("metrics", [{"id": 10**6, "run_id": demo["reset"], "stage_idx": 4, "step": 21,
                             "name": "loss", "value": 0.5, "time": 0.0}])
    assert tab.loss_curves.curves[(demo["reset"], "loss")] is curve
    assert len(curve.getData()[0]) == 52  # 51 steps and the gap between the stages


def test_plot_export_png_and_svg(qtbot, demo, closer, tmp_path):
    tab = _make(qtbot, LiveTab, demo["path"])
    closer(tab)
    _feed(tab, demo["path"])
    png = export_plot(tab.tradeoff_panel.plot, tmp_path / "tradeoff.png")
    svg = export_plot(tab.loss_panel.plot, tmp_path / "loss.svg")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text()
    with pytest.raises(ValueError):
        export_plot(tab.loss_panel.plot, tmp_path / "loss.gif")


# ---- samples tab ----------------------------------------------------------------------------------
def _samples(qtbot, demo, closer):
    tab = _make(qtbot, SamplesTab, demo["path"])
    closer(tab)
    tab.set_runs(_rows(demo["path"], "runs"))
    tab.set_current_run(demo["reset"])
    qtbot.waitUntil(lambda: len(tab.model.rows) > 0 and tab.model.total is not None, timeout=5000)
    return tab


def test_inspector_lists_accepted_first_with_scores(qtbot, demo, closer):
    tab = _samples(qtbot, demo, closer)
    assert tab.stage_combo.currentText().startswith("sampling")
    assert tab.model.total == 2000
    row = next(r for r in tab.model.rows
               if r["n_acc"] == 1 and r["n"] == 4 and r["kind"] != "instruction")  # has a context
    tab.show_prompt(row["id"])
    qtbot.waitUntil(lambda: tab.prompt is not None and tab.prompt["id"] == row["id"], timeout=3000)
    flags = [c.cand["accepted"] for c in tab.cards]
    assert flags == [True, False, False, False]
    assert "4 candidates" in tab.cand_header.text() and "1 accepted" in tab.cand_header.text()
    heads = [c.findChildren(type(tab.cand_header))[0].text() for c in tab.cards]  # badge first
    assert "ACCEPTED" in heads[0] and all("rejected" in h and "ACCEPTED" not in h for h in heads[1:])
    card = tab.cards[0]
    assert "combined" in card.scores_label.text() and "sentences supported" in card.scores_label.text()
    # rejected candidates ordered by combined score
    combs = [c.cand["combined"] for c in tab.cards[1:]]
    assert combs == sorted(combs, reverse=True)
    # a grounded prompt: the context supporting the chosen (accepted) card is highlighted green
    assert tab.prompt["context"] and card.support_spans
    assert "#c9f2c7" in tab.context_view.toHtml().lower()
    # an unsupported sentence somewhere is highlighted red
    for r in tab.model.rows[:40]:
        tab.show_prompt(r["id"])
        qtbot.waitUntil(lambda: tab.prompt is not None and tab.prompt["id"] == r["id"], timeout=3000)
        bad = [c for c in tab.cards if c.unsupported]
        if bad:
            assert "#ffd0d0" in bad[0].response.toHtml().lower()
            break
    else:
        pytest.fail("no candidate with an unsupported sentence among 40 prompts")


def test_filters_narrow_the_list(qtbot, demo, closer):
    tab = _samples(qtbot, demo, closer)
    total = tab.model.total

    def refilter(action):
        action()
        tab.apply_filter()
        qtbot.waitUntil(lambda: tab.model.total is not None and not tab.model.loading, timeout=5000)
        return tab.model.total

    n_kind = refilter(lambda: tab.kind_combo.setCurrentIndex(tab.kind_combo.findData("summarization")))
    assert n_kind == 500 < total
    assert {r["kind"] for r in tab.model.rows} == {"summarization"}
    n_rej = refilter(lambda: tab.accept_combo.setCurrentIndex(tab.accept_combo.findData(False)))
    assert 0 < n_rej < n_kind
    assert all(r["n_acc"] == 0 for r in tab.model.rows)
    n_acc = refilter(lambda: tab.accept_combo.setCurrentIndex(tab.accept_combo.findData(True)))
    assert n_acc + n_rej == n_kind
    assert all(r["n_acc"] >= 1 for r in tab.model.rows)
    refilter(lambda: (tab.accept_combo.setCurrentIndex(0), tab.kind_combo.setCurrentIndex(0)))
    n_score = refilter(lambda: (tab.min_spin.setValue(0.8), tab.max_spin.setValue(0.9)))
    assert 0 < n_score < total
    assert all(0.8 <= r["best"] <= 0.9 for r in tab.model.rows)
    refilter(lambda: (tab.min_spin.setValue(0.0), tab.max_spin.setValue(1.0)))
    n_text = refilter(lambda: tab.search_edit.setText("#123"))  # #123, #1230..#1239
    assert n_text == 11
    assert all("#123" in r["prompt"] for r in tab.model.rows)
    n_none = refilter(lambda: tab.search_edit.setText("100%_no_such"))
    assert n_none == 0 and tab.empty_label.text().startswith("No prompt matches")


def test_open_checkpoint_shows_its_evaluation(qtbot, demo, closer):
    tab = _make(qtbot, SamplesTab, demo["path"])
    closer(tab)
    tab.set_runs(_rows(demo["path"], "runs"))
    tab.open_checkpoint(demo["reset"], "reset")
    qtbot.waitUntil(lambda: tab.model.total is not None and len(tab.model.rows) > 0, timeout=5000)
    assert tab.stage_combo.currentText() == "evaluation · reset"
    assert tab.model.total == 12
    assert all(r["key"].startswith("reset|") for r in tab.model.rows)
    assert not tab.selection_combo.isEnabled()


def test_whatif_sliders_change_counts_and_save(qtbot, demo, closer):
    tab = _samples(qtbot, demo, closer)
    w = tab.whatif
    qtbot.waitUntil(lambda: w.arrays is not None, timeout=10000)
    assert w.arrays.n == 8000
    assert abs(w.threshold.value() - 0.7) < 1e-9  # the run's select stage policy
    kept = w.kept_count()
    with qtbot.waitSignal(w.recomputed, timeout=2000):
        w.threshold.set_value(0.85)
    assert w.kept_count() < kept
    with qtbot.waitSignal(w.recomputed, timeout=2000):
        w.sliders["faithfulness"].set_value(0.0)
    assert w.kept_count() != 0
    with qtbot.waitSignal(w.recomputed, timeout=2000):
        w.budget.set_value(100)
    assert w.kept_count() == 100
    assert w.table.item(w.table.rowCount() - 1, 1).text().startswith("100 /")
    with qtbot.waitSignal(w.selection_saved, timeout=5000) as sig:
        w.save_selection("strict-100")
    assert sig.args == [demo["reset"], "strict-100"]
    with RunLog(demo["path"], readonly=True) as log:
        row = log.query("SELECT * FROM selections WHERE run_id = ? AND name = ?",
                        (demo["reset"], "strict-100"))[0]
        assert row["n_selected"] == 100
        assert log.count("selection_items", selection_id=row["id"]) == 100
    # the selection combo offers the new selection
    qtbot.waitUntil(lambda: tab.selection_combo.findText("strict-100 (100 kept)") >= 0, timeout=5000)


def test_whatif_continue_training_launches_continuation(qtbot, demo, closer, monkeypatch):
    from backend.launcher import Studio

    calls = []
    monkeypatch.setattr(Studio, "launch", lambda self, cfg, parent_run_id=None:
                        calls.append((cfg, self.home, parent_run_id)) or "new-run")
    tab = _samples(qtbot, demo, closer)
    w = tab.whatif
    qtbot.waitUntil(lambda: w.arrays is not None, timeout=10000)
    with qtbot.waitSignal(w.run_launched, timeout=10000) as sig:
        w.continue_training("select", confirm=False)  # an existing selection: not saved again
    assert sig.args == ["new-run"]
    cfg, home, parent = calls[0]
    assert parent == demo["reset"] and Path(home) == Path(demo["path"]).parent
    assert cfg.stages[0].init == f"run:{demo['reset']}:mtl"
    assert cfg.stages[0].selection == f"sel:{demo['reset']}:select"


# ---- compare tab ----------------------------------------------------------------------------------
def test_compare_tab_overlays_and_diffs(qtbot, demo, closer):
    tab = _make(qtbot, CompareTab, demo["path"])
    closer(tab)
    _feed(tab, demo["path"])
    runs = [r["id"] for r in _rows(demo["path"], "runs")]
    # the first snapshot checks the newest runs (up to three): here both
    assert set(tab.checked_runs()) == set(runs) and not tab.loss_panel.is_empty
    tab.set_checked([])
    assert tab.loss_panel.is_empty and tab.tradeoff_panel.is_empty
    tab.set_checked(runs)
    assert set(tab.loss_curves.curves) == {(r, "loss") for r in runs}
    assert set(tab.genlen_curves.curves) == {(r, "gen_length") for r in runs}
    assert tab.tradeoff.point_count() == 4
    keys = [tab.diff_table.item(i, 0).text() for i in range(tab.diff_table.rowCount())]
    assert "name" in keys and "stages[reset].learning_rate" in keys
    assert "model.base" not in keys  # same in both
    assert tab.diff_table.columnCount() == 3
    tab.set_checked(runs[:1])
    assert tab.tradeoff.point_count() == 2 and set(tab.loss_curves.curves) == {(runs[0], "loss")}


# ---- scale ----------------------------------------------------------------------------------------
def test_inspector_pages_and_whatif_on_100k_samples(qtbot, tmp_path, closer):
    """The inspector and the what-if panel work on a 100 000-sample log: every filter pages, the
    first page arrives, a threshold move recomputes. Their speed is measured side by side by
    benchmarks (runlog: first page; selection: what-if recompute), not asserted here: timings on
    these shared machines are noise; the query plans are checked in tests/test_queries.py."""
    t0 = time.perf_counter()
    big = build_runlog(tmp_path, n_prompts=25_000, n_cands=4, full_scores=False)
    build_s = time.perf_counter() - t0
    with RunLog(big["path"], readonly=True) as log:
        assert log.count("samples", run_id=big["reset"], stage_idx=1) == 100_000
        timings = {}
        for label, flt in (
                ("plain", PromptFilter(run_id=big["reset"], stage_idx=1, selection_id=1)),
                ("rejected", PromptFilter(run_id=big["reset"], stage_idx=1, selection_id=1, accepted=False)),
                ("kind+score", PromptFilter(run_id=big["reset"], stage_idx=1, selection_id=1,
                                            kind="summarization", min_score=0.8)),
                ("text", PromptFilter(run_id=big["reset"], stage_idx=1, text="#2499"))):
            t = time.perf_counter()
            page = fetch_prompt_page(log, flt)
            last = fetch_prompt_page(log, flt, after_id=page[-1]["id"]) if page else []
            timings[label] = (time.perf_counter() - t) * 1000 / 2
            assert page, label
            assert not last or last[0]["id"] > page[-1]["id"], label  # the next page moves on
    tab = _make(qtbot, SamplesTab, big["path"])
    closer(tab)
    tab.set_runs(_rows(big["path"], "runs"))
    t = time.perf_counter()
    tab.set_current_run(big["reset"])
    qtbot.waitUntil(lambda: len(tab.model.rows) > 0, timeout=10_000)
    first_ms = (time.perf_counter() - t) * 1000
    qtbot.waitUntil(lambda: tab.whatif.arrays is not None, timeout=60_000)
    w = tab.whatif
    w.threshold.set_value(0.0)
    w.recompute()
    loose = w.last_idx.size
    t = time.perf_counter()
    w.threshold.set_value(0.8)
    w.recompute()
    recompute_ms = (time.perf_counter() - t) * 1000
    assert 0 < w.last_idx.size < loose and (w.last_comb[w.last_idx] >= 0.8 - 1e-9).all()
    assert w.status.text().startswith(f"{w.last_idx.size} of 100000 candidates kept")
    print(f"\n[timing] build 100k log {build_s:.1f}s; page queries (ms): "
          + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
          + f"; inspector first page incl. stage lookup {first_ms:.0f} ms "
          f"(page query {tab.model.last_page_ms:.1f} ms); what-if load {w.load_ms:.0f} ms, "
          f"recompute {recompute_ms:.1f} ms (information only)")


def test_length_buckets_reads_the_evaluate_stage_shape():
    from backend.eval_details import EvalDetails, LengthBucket
    from reset_gui.views import length_buckets

    # rows written before the details contract (version 0)
    det = {"faithfulness_by_length": {"shorter": {"n": 2, "faithfulness": 0.5},
                                      "similar": {"n": 0, "faithfulness": None},
                                      "longer_1.5x": {"n": 3, "faithfulness": 0.25}}}
    assert length_buckets(det) == [("shorter", 0.5, 2), ("longer_1.5x", 0.25, 3)]
    # the contract's own shape
    v1 = EvalDetails(length_buckets=[LengthBucket("shorter", 4, 0.75), LengthBucket("similar", 0, None)])
    assert length_buckets(v1.to_json()) == [("shorter", 0.75, 4)]
    assert length_buckets(None) == [] and length_buckets("not json") == []
