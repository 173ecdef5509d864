"""GUI shell: runs list, events pane, setup validation/launch, save/load, poller, no torch.

Headless (QT_QPA_PLATFORM=offscreen) against a real SQLite run log written through RunLog.
No real training is started here.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402

from backend.runlog import RunLog  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DIED_TAIL = "Traceback (most recent call last):\n  File \"worker.py\", line 1\nMemoryError: out of RAM"
PID = os.getpid()  # the running run: a live pid, so reconcile leaves it running
PLAN = 'name = "x"\n[[stages]]\ntype = "train"\nname = "mtl"\n[[stages]]\ntype = "evaluate"\nname = "ev"\n'


def populate(log: RunLog) -> dict[str, str]:
    """Runs in every status; the running one has this test's pid so reconcile keeps it alive."""
    now = time.time()
    ids = {}
    for i, status in enumerate(["succeeded", "running", "died", "failed", "cancelled", "queued"]):
        rid = f"r{i}-{status}"
        ids[status] = rid
        log.create_run(rid, name=f"{status}-run", preset="reset_demo", config_toml=PLAN,
                       run_dir=str(Path(log.path).parent / "runs" / rid),
                       parent_run_id=ids["succeeded"] if status == "cancelled" else None)
        fields = {"status": status, "created_at": now - 1000 + i}
        if status != "queued":
            fields["started_at"] = now - 600 + i
        if status in ("succeeded", "died", "failed", "cancelled"):
            fields["ended_at"] = now - 100
        if status == "running":
            fields["pid"] = PID
        if status == "died":
            fields.update(error="process gone without reporting (killed)", stderr_tail=DIED_TAIL,
                          signal=9)
        if status == "failed":
            fields.update(error="ValueError: bad data", error_tail="Traceback...\nValueError: bad data",
                          exit_code=1)
        log.update_run(rid, **fields)
        if status != "queued":
            log.stage_start(rid, 0, "mtl", "train", total=40)
            log.stage_progress(rid, 0, 10 if status == "running" else 40, 40)
        log.event(rid, f"run {status} event")
    log.event(ids["died"], "worker process gone without reporting: marked died", level="error")
    return ids


@pytest.fixture
def window(qtbot, home):
    from reset_gui.main_window import MainWindow

    created = []

    def make(**kw):
        kw.setdefault("poll_interval_ms", 100)
        win = MainWindow(home, **kw)
        qtbot.addWidget(win)
        win.show()
        created.append(win)
        return win

    yield make
    for w in created:
        w.shutdown()


def test_runs_list_statuses_and_colours(window, home, qtbot):
    from reset_gui.runs_panel import COL
    from reset_gui.style import STATUS_COLORS

    with RunLog(home / "runlog.db") as log:
        ids = populate(log)
    win = window()
    model = win.runs_panel.model
    qtbot.waitUntil(lambda: model.rowCount() == 6, timeout=5000)
    seen = {}
    for row in range(model.rowCount()):
        status = model.data(model.index(row, COL["Status"]))
        colour = model.data(model.index(row, COL["Status"]), Qt.ItemDataRole.ForegroundRole)
        seen[status] = colour.name()
    assert seen == {s: STATUS_COLORS[s] for s in seen}
    assert set(seen) == {"succeeded", "running", "died", "failed", "cancelled", "queued"}
    assert seen["running"] == "#1f6fd1" and seen["died"] == "#8b0000"
    # stage and progress of the running run; the clone's parent shows by name
    qtbot.waitUntil(lambda: model.progress(model.rows[model.row_of(ids["running"])]) == (10, 40),
                    timeout=5000)
    row = model.row_of(ids["running"])
    assert model.data(model.index(row, COL["Stage"])) == "1/2 mtl"
    assert model.data(model.index(row, COL["Progress"])) == "10/40"
    assert model.data(model.index(row, COL["ETA"]))  # from the progress rate
    assert model.data(model.index(model.row_of(ids["cancelled"]), COL["Started from"])) == "succeeded-run"
    # newest run selected on start; the running run stays running (its pid is alive)
    assert win.current_run_id == ids["queued"]
    assert model.rows[row]["status"] == "running"
    assert "runlog.db" in win.path_label.text()
    assert win.windowTitle() == "ReSet Studio"


def test_events_pane_shows_died_stderr_tail(window, home, qtbot):
    with RunLog(home / "runlog.db") as log:
        ids = populate(log)
    win = window()
    qtbot.waitUntil(lambda: win.runs_panel.model.rowCount() == 6, timeout=5000)
    qtbot.waitUntil(lambda: len(win.events.model.all) >= 7, timeout=5000)
    assert win.select_run(ids["died"])
    assert win.current_run_id == ids["died"]
    assert win.events.problem_box.isVisible()
    assert "MemoryError: out of RAM" in win.events.problem_text()
    assert "process gone" in win.events.problem_text()
    assert "died" in win.events.problem_title.text() and "signal 9" in win.events.problem_title.text()
    shown = [e["message"] for e in win.events.model.rows]
    assert "worker process gone without reporting: marked died" in shown
    assert all(e["run_id"] == ids["died"] for e in win.events.model.rows)
    err_row = shown.index("worker process gone without reporting: marked died")
    colour = win.events.model.data(win.events.model.index(err_row, 4), Qt.ItemDataRole.ForegroundRole)
    assert colour.name() == "#c62828"
    # failed run: traceback; succeeded run: no problem box
    win.select_run(ids["failed"])
    assert "ValueError: bad data" in win.events.problem_text()
    win.select_run(ids["succeeded"])
    assert not win.events.problem_box.isVisible()
    win.events.all_runs.setChecked(True)
    assert len(win.events.model.rows) == len(win.events.model.all)
    # actions follow the selected run's status
    assert win.act_clone.isEnabled() and not win.act_resume.isEnabled()
    win.select_run(ids["died"])
    assert win.act_resume.isEnabled() and not win.act_cancel.isEnabled()


def test_reconcile_on_start_marks_dead_worker_died(window, home, qtbot):
    with RunLog(home / "runlog.db") as log:
        log.create_run("ghost", name="ghost", preset="mtl_demo", config_toml=PLAN,
                       run_dir=str(home / "runs" / "ghost"))
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        log.update_run("ghost", status="running", pid=dead.pid, started_at=time.time())
    win = window()
    qtbot.waitUntil(lambda: bool(win.runs) and win.runs[0]["status"] == "died", timeout=8000)


def test_runs_list_shows_slurm_job_and_node(window, home, qtbot):
    """The job id and node the Slurm supervisor records (backend.slurm's slurm.json) show in a
    Job column that exists only while some run has a job; the node appears once the job runs."""
    from backend import slurm
    from reset_gui.runs_panel import COL

    with RunLog(home / "runlog.db") as log:
        log.create_run("local", name="local-run", preset="mtl_demo", config_toml=PLAN,
                       run_dir=str(home / "runs" / "local"))
        log.update_run("local", status="succeeded", started_at=time.time() - 60,
                       ended_at=time.time())
    win = window()
    model, view = win.runs_panel.model, win.runs_panel.view
    qtbot.waitUntil(lambda: model.rowCount() == 1, timeout=5000)
    assert view.isColumnHidden(COL["Job"])  # no run went through Slurm
    rdir = home / "runs" / "onslurm"
    rdir.mkdir(parents=True)
    slurm._record(rdir, job_id="4242", attempt=1, active=True, state="PENDING",
                  reason="Resources", node="(null)")
    with RunLog(home / "runlog.db") as log:
        log.create_run("onslurm", name="slurm-run", preset="mtl_demo", run_dir=str(rdir),
                       config_toml=PLAN + '[compute]\nexecutor = "slurm"\n')
        log.update_run("onslurm", status="running", pid=PID, started_at=time.time())
    qtbot.waitUntil(lambda: model.rowCount() == 2, timeout=5000)
    job = lambda rid: model.data(model.index(model.row_of(rid), COL["Job"]))  # noqa: E731
    qtbot.waitUntil(lambda: job("onslurm") == "4242", timeout=5000)
    assert job("local") == "" and not view.isColumnHidden(COL["Job"])
    tip = model.data(model.index(model.row_of("onslurm"), 0), Qt.ItemDataRole.ToolTipRole)
    assert "Slurm job 4242 PENDING (Resources), attempt 1" in tip
    # the supervisor sees the job start: no run-log row changes, the list still follows
    slurm._record(rdir, state="RUNNING", reason="None", node="node7")
    qtbot.waitUntil(lambda: job("onslurm") == "4242 on node7", timeout=5000)
    tip = model.data(model.index(model.row_of("onslurm"), 0), Qt.ItemDataRole.ToolTipRole)
    assert "Slurm job 4242 RUNNING on node7, attempt 1" in tip


def test_empty_home_shows_demo_hint(window, qtbot):
    win = window()
    assert win.tabs.currentWidget() is win.setup
    assert win.setup.hint.isVisible()
    assert "Press Launch to run the ReSet demo" in win.setup.hint.text()
    assert win.setup.preset_combo.currentData() == "reset_quick"  # the Setup tab's default
    assert win.runs_panel.empty.isVisible()


def _setup(qtbot, home):
    from backend.launcher import Studio
    from reset_gui.setup.tab import SetupTab

    tab = SetupTab(Studio(home))
    qtbot.addWidget(tab)
    tab.show()
    return tab


def _make_valid(tab, tmp_path):
    """The demo preset, pointed at a small data file that exists."""
    data = tmp_path / "alpaca.jsonl"
    data.write_text('{"instruction": "Say hi.", "input": "", "output": "Hi."}\n'
                    '{"instruction": "Count to 3.", "input": "", "output": "1 2 3"}\n')
    while tab.mix.rowCount() > 1:
        tab.mix.selectRow(tab.mix.rowCount() - 1)
        tab.remove_dataset_row()
    tab.set_cell(0, "Name", "alpaca")
    tab.set_cell(0, "Source", str(data))
    tab.set_cell(0, "Format", "alpaca")
    tab.set_cell(0, "Columns", "")
    tab.set_cell(0, "Kind", "(from format)")
    tab.set_cell(0, "Eval", "")
    tab.set_cell(0, "Budget", "2")
    assert tab.valid, tab.last_errors
    return data


def test_setup_refuses_invalid_input_naming_the_field(qtbot, home, tmp_path):
    tab = _setup(qtbot, home)
    _make_valid(tab, tmp_path)
    assert tab.launch_btn.isEnabled()
    # learning rate 0
    tab.set_stage_field(0, "learning_rate", 0.0)
    assert not tab.valid and not tab.launch_btn.isEnabled()
    assert any("stages.0 (mtl).learning_rate" in e and "greater than 0" in e for e in tab.last_errors)
    assert "learning_rate" in tab.error_label.text()
    tab.set_stage_field(0, "learning_rate", 3e-4)
    assert tab.valid
    # all judge weights zero
    for sp in tab.judges.weight_spins.values():
        sp.setValue(0.0)
    assert not tab.valid
    assert any(e.startswith("judges.weights") and "zero" in e for e in tab.last_errors)
    tab.judges.weight_spins["task"].setValue(1.0)
    assert tab.valid
    # a local checkpoint folder that does not exist
    tab.set_base(str(tmp_path / "no-such-model"))
    assert tab.base_combo.currentData() == "local"
    assert not tab.valid
    assert any(e.startswith("model.base") and "not found" in e for e in tab.last_errors)
    tab.set_base("embedded")
    assert tab.valid
    # unparsable mixture cell and an unknown stage reference
    tab.set_cell(0, "Weight", "lots")
    assert any(e.startswith("data.0.weight") for e in tab.last_errors)
    tab.set_cell(0, "Weight", "1")
    tab.set_stage_field(1, "source", "nonexistent")
    assert any("stages.1 (sample).source" in e for e in tab.last_errors)


def test_setup_marks_the_field_each_problem_names(qtbot, home, tmp_path):
    """Problems carry their location, and the editor that owns it marks exactly that field."""
    from reset_gui.setup.forms import BAD_FILL
    from reset_gui.setup.mixture import MC

    tab = _setup(qtbot, home)
    _make_valid(tab, tmp_path)
    tab.set_stage_field(0, "learning_rate", 0.0)
    tab.set_cell(0, "Budget", "many")
    assert {("stages", 0, "learning_rate"), ("data", 0, "budget")} <= {p.loc for p in tab.problems}
    red = lambda name: "color" in tab.plan.form.labels[name].styleSheet()  # noqa: E731
    assert red("learning_rate") and not red("epochs")
    fill = lambda c: tab.mix.item(0, MC[c]).background().color().name()  # noqa: E731
    assert fill("Budget") == BAD_FILL and fill("Weight") != BAD_FILL
    tab.select_stage(1)
    assert not any(red(name) for name in tab.plan.form.labels)
    tab.select_stage(0)  # the mark survives rebuilding the form
    assert red("learning_rate")
    tab.set_stage_field(0, "learning_rate", 3e-4)
    tab.set_cell(0, "Budget", "2")
    assert not red("learning_rate") and fill("Budget") != BAD_FILL and tab.valid
    tab.set_stage_field(1, "name", tab.stages[0]["name"])  # a cross-field check names its field
    assert [p.loc for p in tab.problems] == [("stages", 1, "name")] and red("name")


def test_stage_plan_editing_covers_every_field(qtbot, home, tmp_path):
    from backend.config import TrainStage
    from reset_gui.setup.tab import SetupTab

    tab = _setup(qtbot, home)
    tab.select_stage(0)
    assert set(tab.plan.form.editors) == set(TrainStage.model_fields) - {"type"}
    n = len(tab.stages)
    tab.add_stage("evaluate")
    assert len(tab.stages) == n + 1 and tab.stages[-1]["type"] == "evaluate"
    assert tab.stages[-1]["name"] != "evaluate"  # a fresh, unique name
    tab.set_stage_field(n, "name", "evaluate")
    assert any("duplicate stage name" in e for e in tab.last_errors)
    tab.set_stage_field(n, "name", "evaluate2")
    tab.set_stage_field(n, "include_base", True)
    tab.set_stage_field(n, "eval_size", 3)
    raw, errors = tab.raw_config()
    assert raw["stages"][-1] == {"type": "evaluate", "name": "evaluate2", "include_base": True,
                                 "eval_size": 3}
    tab.move_stage(n, -1)
    assert tab.stages[n - 1]["name"] == "evaluate2"
    tab.remove_stage(n - 1)
    assert len(tab.stages) == n
    # sample decoding (a list of models) is edited as JSON
    tab.set_stage_field(1, "decoding", [{"name": "greedy", "temperature": 0.0}])
    assert tab.stages[1]["decoding"] == [{"name": "greedy", "temperature": 0.0}]
    tab.plan.form.editors["decoding"].widget.setPlainText("[{oops")
    assert any("stages.1 (sample).decoding" in e and "JSON" in e for e in tab.last_errors)
    assert isinstance(tab, SetupTab)


def test_launch_shows_launch_error_for_missing_checkpoint(qtbot, home, tmp_path, monkeypatch):
    tab = _setup(qtbot, home)
    _make_valid(tab, tmp_path)
    missing = tmp_path / "missing-model"
    tab.set_base(str(missing))
    assert not tab.valid  # refused inline ...
    tab.launch()  # ... and by the launcher when forced
    qtbot.waitUntil(lambda: tab.last_message is not None, timeout=15000)
    assert "model.base" in tab.last_message and "refused" in tab.last_message
    assert "model.base" in tab.error_label.text()
    assert tab.message_box.isVisible()
    tab.message_box.close()
    with RunLog(home / "runlog.db") as log:
        assert log.list_runs() == []  # nothing was started


def test_launch_error_on_valid_config_from_launcher(qtbot, home, tmp_path, monkeypatch):
    """A config that passes the inline checks but the launcher refuses: the message is shown."""
    from backend import launcher

    tab = _setup(qtbot, home)
    _make_valid(tab, tmp_path)
    seen = {}

    def refuse(self, cfg, parent_run_id=None):
        seen["cfg"] = cfg
        raise launcher.LaunchError("run refused:\n  model.base: checkpoint folder vanished")

    monkeypatch.setattr(launcher.Studio, "launch", refuse)
    tab.launch()
    qtbot.waitUntil(lambda: tab.last_message is not None, timeout=5000)
    assert "checkpoint folder vanished" in tab.error_label.text()
    assert seen["cfg"].data[0].name == "alpaca"
    assert tab.launch_btn.isEnabled()


def test_launch_real_process_that_fails_fast(window, home, qtbot, tmp_path):
    """Launch through the toolbar. A data file whose columns do not match its format is refused
    before any process starts; a run whose selection does not exist starts a real worker that
    fails, and the window shows the run as failed with its traceback."""
    win = window(poll_interval_ms=200)
    s = win.setup
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q?", "answer": "a"}\n{"question": "q2?", "answer": "b"}\n')
    s.load_preset("mtl_demo")
    good_source = s.dataset_row(0)[0]["source"]
    while s.mix.rowCount() > 1:
        s.mix.selectRow(s.mix.rowCount() - 1)
        s.remove_dataset_row()
    s.set_cell(0, "Source", str(bad))
    s.set_cell(0, "Eval", "")
    s.set_cell(0, "Format", "squad")
    assert s.valid, s.last_errors
    assert win.act_launch.isEnabled()
    win.act_launch.trigger()
    qtbot.waitUntil(lambda: s.last_message is not None, timeout=60000)
    assert "missing column" in s.error_label.text()
    assert win.runs == []

    s.set_cell(0, "Source", good_source)
    s.set_stage_field(0, "selection", "sel:no-such-run:nothing")
    assert s.validate(), s.last_errors
    win.act_launch.trigger()
    qtbot.waitUntil(lambda: len(win.runs) == 1, timeout=60000)
    assert win.current_tab() == "Live"
    qtbot.waitUntil(lambda: win.runs[0]["status"] in ("failed", "died", "succeeded"), timeout=180000)
    assert win.runs[0]["status"] == "failed"
    qtbot.waitUntil(lambda: win.current_run_id == win.runs[0]["id"], timeout=5000)
    qtbot.waitUntil(lambda: "does not exist" in win.events.problem_text(), timeout=5000)
    # the run row (problem text) and the events arrive on separate polls
    qtbot.waitUntil(lambda: any(e["level"] == "error" for e in win.events.model.rows),
                    timeout=10000)
    assert win.act_resume.isEnabled()


def test_config_save_load_round_trip(qtbot, home, tmp_path):
    from backend.config import load_preset

    tab = _setup(qtbot, home)
    tab.set_stage_field(0, "lora_r", 4)
    tab.name_edit.setText("round-trip")
    path = tab.save_toml(tmp_path / "cfg.toml")
    before = tab.build_config().to_dict()
    other = _setup(qtbot, home)
    other.load_preset("mtl_demo")
    other.load_toml(path)
    assert other.valid, other.last_errors
    assert other.build_config().to_dict() == before
    assert other.name_edit.text() == "round-trip"
    assert other.stages[0]["lora_r"] == 4
    # the same config as the default preset apart from the two edits
    want = load_preset("reset_quick").to_dict()
    want["name"] = "round-trip"
    want["stages"][0]["lora_r"] = 4
    assert before == want
    # an invalid work-in-progress config is saved as it is, and loads back with its error
    tab.set_stage_field(0, "learning_rate", 0.0)
    wip = tab.save_toml(tmp_path / "wip.toml")
    other.load_toml(wip)
    assert not other.valid
    assert any("learning_rate" in e for e in other.last_errors)


def test_clone_run_loads_its_config(window, home, qtbot):
    with RunLog(home / "runlog.db") as log:
        ids = populate(log)
    win = window()
    qtbot.waitUntil(lambda: win.runs_panel.model.rowCount() == 6, timeout=5000)
    win.select_run(ids["succeeded"])
    win.clone_selected()
    assert win.tabs.currentWidget() is win.setup
    assert win.setup.name_edit.text() == "x-clone"
    assert [s["name"] for s in win.setup.stages] == ["mtl", "ev"]
    assert win.setup.parent_run_id == ids["succeeded"]


def test_preview_shows_records_and_errors(qtbot, home, tmp_path):
    tab = _setup(qtbot, home)
    _make_valid(tab, tmp_path)
    tab.mix.selectRow(0)
    tab.mixture.preview_selected()
    qtbot.waitUntil(lambda: tab.preview_table.rowCount() == 2, timeout=30000)
    assert tab.preview_table.item(0, 2).text() == "Say hi."
    tab.set_cell(0, "Format", "squad")
    tab.mixture.preview_selected()
    qtbot.waitUntil(lambda: "Preview failed" in tab.mixture.preview_status.text(), timeout=30000)
    assert "missing column" in tab.mixture.preview_status.text()
    # (that the GUI never imports torch is checked in a fresh subprocess: other tests in this
    # pytest process load models, so sys.modules here says nothing)


def test_poller_streams_rows_written_after_start(qtbot, home):
    from reset_gui.poller import PollerThread

    path = home / "runlog.db"
    with RunLog(path) as log:
        log.create_run("p1", name="p1", preset="x", config_toml=PLAN, run_dir=str(home / "p1"))
        log.log_metrics("p1", 0, 0, {"loss": 3.0})
    got: dict[str, list] = {"metrics": [], "events": [], "runs": []}
    pt = PollerThread(path, interval_ms=50, batch=7)
    pt.poller.rows.connect(lambda t, rows: got.setdefault(t, []).extend(rows))
    pt.poller.runs_changed.connect(lambda runs: got["runs"].append(runs))
    pt.start()
    try:
        qtbot.waitUntil(lambda: len(got["metrics"]) == 1 and bool(got["runs"]), timeout=5000)
        n_snapshots = len(got["runs"])
        with RunLog(path) as log:
            for step in range(1, 41):  # more than one batch
                log.log_metrics("p1", 0, step, {"loss": 3.0 - step / 20})
            log.event("p1", "late event")
            log.update_run("p1", status="running")
        qtbot.waitUntil(lambda: len(got["metrics"]) == 41 and bool(got["events"]), timeout=5000)
        assert [r["step"] for r in got["metrics"]] == list(range(41))  # in order, no duplicates
        qtbot.waitUntil(lambda: got["runs"][-1][0]["status"] == "running", timeout=5000)
        time.sleep(0.3)
        qtbot.wait(100)
        assert len(got["runs"]) == n_snapshots + 1  # emitted only when something changed
    finally:
        pt.shutdown()
    assert not pt.thread.isRunning()


def test_window_picks_up_live_rows(window, home, qtbot):
    win = window()
    with RunLog(home / "runlog.db") as log:
        log.create_run("late", name="late-run", preset="mtl_demo", config_toml=PLAN,
                       run_dir=str(home / "runs" / "late"))
        log.event("late", "hello from the worker")
    qtbot.waitUntil(lambda: win.runs_panel.model.rowCount() == 1, timeout=5000)
    qtbot.waitUntil(lambda: any(e["message"] == "hello from the worker"
                                for e in win.events.model.all), timeout=5000)
    with RunLog(home / "runlog.db") as log:
        log.add_checkpoint("late", 0, 5, "mtl-final", str(home / "ck"), "lora", "embedded")
    qtbot.waitUntil(lambda: win.setup.base_combo.findData("run:late:mtl-final") >= 0, timeout=5000)


def test_screenshots_render(home, tmp_path, qtbot):
    from reset_gui.screenshots import render

    with RunLog(home / "runlog.db") as log:
        populate(log)
    paths = render(tmp_path / "shots", home, settle_s=0.1, timeout_s=10)
    names = sorted(p.name for p in paths)
    assert names[:5] == ["01-setup.png", "02-live.png", "03-samples.png", "04-compare.png",
                         "05-runs-events.png"]
    assert all(p.stat().st_size > 5000 for p in paths)


def test_cli_dispatch(monkeypatch):
    import reset_gui.cli as cli

    calls = {}
    monkeypatch.setattr("reset_gui.app.main", lambda argv: calls.setdefault("gui", argv) and 0 or 0)
    monkeypatch.setattr("reset_gui.screenshots.main", lambda argv: calls.setdefault("shots", argv) and 0 or 0)
    monkeypatch.setattr("backend.cli.main", lambda argv: calls.setdefault("backend", argv) and 0 or 0)
    cli.main([])
    assert calls.pop("gui") == []
    cli.main(["--home", "/tmp/h"])
    assert calls.pop("gui") == ["--home", "/tmp/h"]
    cli.main(["gui", "--home", "/tmp/h"])
    assert calls.pop("gui") == ["--home", "/tmp/h"]
    cli.main(["--home", "/tmp/h", "screenshots", "--out", "x"])
    assert calls.pop("shots") == ["--home", "/tmp/h", "--out", "x"]
    cli.main(["--home", "/tmp/h", "list"])
    assert calls.pop("backend") == ["--home", "/tmp/h", "list"]


def test_gui_imports_no_torch():
    code = ("import sys, os; os.environ['QT_QPA_PLATFORM']='offscreen';"
            "import reset_gui.main_window, reset_gui.app, reset_gui.cli, reset_gui.screenshots;"
            "bad=[m for m in ('torch','transformers','peft') if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    out = subprocess.run([sys.executable, "-c", code], cwd=str(REPO), capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
