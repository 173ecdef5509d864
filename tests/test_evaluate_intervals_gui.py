"""Intervals on screen: the trade-off plot's interval bars and Compare's paired differences, on a
run log written with the evaluate stage's own summaries (tests/test_gui_tabs_data.py)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from backend.eval_details import EvalDetails  # noqa: E402
from backend.runlog import RunLog  # noqa: E402
from backend.stats import compare_details  # noqa: E402
from reset_gui.compare_tab import CompareTab, diff_text  # noqa: E402
from reset_gui.live_tab import LiveTab  # noqa: E402
from tests.test_gui_tabs_data import build_runlog  # noqa: E402



@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    """Where the screenshots go: $RESET_SHOTS to keep them, else a temporary folder."""
    d = Path(os.environ["RESET_SHOTS"]) if os.environ.get("RESET_SHOTS") else tmp_path_factory.mktemp("shots")
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_runlog(tmp_path_factory.mktemp("home"), n_prompts=40)


def _feed(tab, path):
    with RunLog(path, readonly=True) as log:
        tab.set_runs(log.list_runs())
        for t in ("stages", "metrics", "checkpoints", "evals"):
            tab.on_rows(t, log.read_since(t, 0))


def _all_rows(path):
    with RunLog(path, readonly=True) as log:
        return {(r["run_id"], r["checkpoint_tag"]): r for r in log.read_since("evals", 0)
                if r["dataset"] == "_all"}


def test_tradeoff_draws_interval_bars(qtbot, demo, shots):
    tab = LiveTab(Path(demo["path"]))
    qtbot.addWidget(tab)
    tab.resize(1400, 900)
    _feed(tab, demo["path"])
    rows = _all_rows(demo["path"])
    run = demo["reset"]
    bars = tab.tradeoff.errbars[run].opts
    pts = tab.tradeoff.data.series(run)
    for i, p in enumerate(pts):
        det = EvalDetails.from_row(rows[(run, p.tag)])
        fi, ii = det.intervals["faithfulness"], det.intervals["instruction_following"]
        assert bars["y"][i] == pytest.approx(p.y) and bars["top"][i] == pytest.approx(fi.hi - p.y)
        assert bars["bottom"][i] == pytest.approx(p.y - fi.lo)
        assert bars["left"][i] == pytest.approx(p.x - ii.lo) and bars["right"][i] == pytest.approx(ii.hi - p.x)
        assert 0 < fi.half_width < 0.2
    assert tab.grab().save(str(shots / "live_tradeoff_intervals.png"))
    tab.shutdown()


def test_compare_shows_paired_differences_and_noise(qtbot, demo, shots):
    tab = CompareTab(Path(demo["path"]))
    qtbot.addWidget(tab)
    tab.resize(1500, 950)
    _feed(tab, demo["path"])
    mtl, reset = demo["mtl"], demo["reset"]
    tab.set_checked([mtl, reset])
    # default reference: the first MTL checkpoint; every other checkpoint is a row
    assert tuple(tab.ref_combo.currentData()) == (mtl, "mtl")
    t = tab.delta_table
    labels = [t.item(i, 0).text() for i in range(t.rowCount())]
    assert labels == ["mtl-demo · base", "reset-demo · mtl", "reset-demo · reset"]
    rows = _all_rows(demo["path"])
    ref = EvalDetails.from_row(rows[(mtl, "mtl")])
    noise_seen = {True: 0, False: 0}
    for i, key in enumerate([(mtl, "base"), (reset, "mtl"), (reset, "reset")]):
        want = compare_details(ref, EvalDetails.from_row(rows[key]))
        for j, cat in enumerate(("faithfulness", "instruction_following", "task_score")):
            cell = t.item(i, 1 + j)
            d = want[cat]
            assert cell.text() == diff_text(d)
            assert d.paired and d.n == {"faithfulness": 24, "instruction_following": 12, "task_score": 36}[cat]
            # the difference equals the difference of the stored macro means (same items)
            assert d.diff == pytest.approx(rows[key][cat] - rows[(mtl, "mtl")][cat])
            assert cell.text().startswith("≈") == d.within_noise == (d.interval.lo <= 0 <= d.interval.hi)
            assert cell.font().bold() != d.within_noise
            noise_seen[d.within_noise] += 1
    assert noise_seen[True] and noise_seen[False]  # the demo log has both kinds
    # the base model is below MTL by more than noise on faithfulness
    base_row = labels.index("mtl-demo · base")
    assert not t.item(base_row, 1).text().startswith("≈") and t.item(base_row, 1).text().startswith("-")
    # pairing: the paired interval is narrower than the two means' intervals side by side
    d = compare_details(ref, EvalDetails.from_row(rows[(reset, "reset")]))["faithfulness"]
    a_iv = ref.intervals["faithfulness"]
    b_iv = EvalDetails.from_row(rows[(reset, "reset")]).intervals["faithfulness"]
    assert d.interval.half_width < 0.5 * np.hypot(a_iv.half_width, b_iv.half_width)
    # another reference (a user's choice, kept while listed) re-computes every row
    tab.ref_combo.setCurrentIndex(labels.index("reset-demo · reset") + 1)
    tab.set_checked([mtl, reset])
    assert tuple(tab.ref_combo.currentData()) == (reset, "reset")
    assert tuple(tab.ref_combo.currentData()) == (reset, "reset")
    assert "reset-demo · reset" not in [t.item(i, 0).text() for i in range(t.rowCount())]
    tab.ref_combo.setCurrentIndex(1)  # reference mtl-demo · mtl again
    assert tab.grab().save(str(shots / "compare_intervals.png"))
    tab.shutdown()


def test_compare_pools_the_seeds_of_an_experiment(qtbot, tmp_path, shots):
    """Three seeds of one config (one experiment) and an MTL run: the experiment gets rows of its
    own, its seeds pooled item by item, compared with paired intervals like any checkpoint."""
    import random

    from backend.experiments import merge_seeds
    from tests.test_gui_tabs_data import _evals

    path = tmp_path / "runlog.db"
    log = RunLog(path)
    log.create_run("m", name="mtl-demo", preset="mtl_demo", config_toml="seed = 1\n", run_dir=str(tmp_path))
    _evals(log, "m", 1, [("mtl", 1)], random.Random(0), 0.35, 0.55)
    for s in (1, 2, 3):
        rid = f"r{s}"
        log.create_run(rid, name=f"reset-demo-s{s}", preset="reset_demo", config_toml=f"seed = {s}\n",
                       run_dir=str(tmp_path), experiment="exp-1")
        _evals(log, rid, 5, [("mtl", 10 * s), ("reset", 10 * s + 1)], random.Random(s), 0.4, 0.6)
    log.close()
    tab = CompareTab(path)
    qtbot.addWidget(tab)
    tab.resize(1500, 950)
    _feed(tab, path)
    tab.set_checked(["m", "r1", "r2", "r3"])
    assert tab.experiments() == {"exp-1": ["r1", "r2", "r3"]}
    t = tab.delta_table
    labels = [t.item(i, 0).text() for i in range(t.rowCount())]
    assert tuple(tab.ref_combo.currentData()) == ("m", "mtl")
    assert labels[-2:] == ["reset-demo · mtl (3 seeds)", "reset-demo · reset (3 seeds)"]
    rows = _all_rows(path)
    pooled = merge_seeds([EvalDetails.from_row(rows[(r, "reset")]) for r in ("r1", "r2", "r3")])
    want = compare_details(EvalDetails.from_row(rows[("m", "mtl")]), pooled)
    i = labels.index("reset-demo · reset (3 seeds)")
    for j, cat in enumerate(("faithfulness", "instruction_following", "task_score")):
        assert t.item(i, 1 + j).text() == diff_text(want[cat])
    assert want["faithfulness"].diff == pytest.approx(
        sum(rows[(r, "reset")]["faithfulness"] for r in ("r1", "r2", "r3")) / 3 - rows[("m", "mtl")]["faithfulness"])
    assert "per-seed means" in t.item(i, 0).toolTip()
    # pooling three seeds narrows the interval of the mean against one seed's
    one = EvalDetails.from_row(rows[("r1", "reset")]).intervals["faithfulness"]
    assert pooled.intervals["faithfulness"].half_width < one.half_width
    # unchecking a seed leaves a two-seed experiment; one seed left is no experiment
    tab.set_checked(["m", "r1", "r2"])
    assert any("(2 seeds)" in t.item(i, 0).text() for i in range(t.rowCount()))
    tab.set_checked(["m", "r1"])
    assert not any("seeds)" in t.item(i, 0).text() for i in range(t.rowCount()))
    tab.set_checked(["m", "r1", "r2", "r3"])
    assert tab.grab().save(str(shots / "compare_experiment.png"))
    tab.shutdown()


def test_compare_report_button_writes_the_checked_runs(qtbot, demo, tmp_path):
    tab = CompareTab(Path(demo["path"]))
    qtbot.addWidget(tab)
    _feed(tab, demo["path"])
    tab.set_checked([demo["reset"]])
    assert tab.report_btn.isEnabled()
    out = tab.write_report(tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    assert "reset-demo · reset" in text and "mtl-demo" not in text.split("<h2>Configs</h2>")[0]
    assert text.count('<figure id="fig') == 4
    tab.shutdown()
