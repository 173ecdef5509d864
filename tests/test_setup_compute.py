"""Setup tab's Compute box under pytest-qt: the [compute] section edited through the generated
form, the Slurm fields shown only for executor = slurm, each problem marked at its field."""
from __future__ import annotations

import os
import tomllib

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from tests.test_gui_shell import _make_valid, _setup  # noqa: E402


def _red(form, name: str) -> bool:
    return "color" in form.labels[name].styleSheet()


def test_compute_fields_reach_the_config_and_slurm_box_follows_executor(qtbot, home, tmp_path):
    tab = _setup(qtbot, home)
    _make_valid(tab, tmp_path)
    comp = tab.compute
    assert set(comp.form.editors) == {"executor", "processes", "nodes", "gpus_per_process",
                                      "strategy"}
    assert set(comp.slurm_form.editors) == {"partition", "account", "time_limit", "mem",
                                            "extra_sbatch", "setup", "max_requeues"}
    assert comp.slurm.isHidden()  # local executor: no Slurm fields on screen
    comp.form.editors["processes"].widget.setValue(2)
    assert tab.valid and tab.build_config().compute.processes == 2
    comp.form.editors["executor"].widget.setCurrentIndex(
        comp.form.editors["executor"].widget.findData("slurm"))
    assert comp.slurm.isVisible()
    ed = comp.slurm_form.editors
    ed["partition"].widget.setText("gpu")
    ed["mem"].widget.setText("32G")
    ed["extra_sbatch"].widget.setText("--qos=high, #SBATCH --exclusive")
    ed["setup"].widget.setPlainText("module load cuda/12.4\nsource ~/venv/bin/activate")
    comp.form.editors["nodes"].widget.setValue(2)
    assert tab.valid, tab.last_errors
    c = tab.build_config().compute
    assert (c.executor, c.nodes, c.processes, c.world_size) == ("slurm", 2, 2, 4)
    assert (c.slurm.partition, c.slurm.mem, c.slurm.extra_sbatch) == \
        ("gpu", "32G", ["--qos=high", "--exclusive"])
    assert c.slurm.setup.splitlines() == ["module load cuda/12.4", "source ~/venv/bin/activate"]

    # saved and loaded back: every field, the setup script's lines included
    path = tab.save_toml(tmp_path / "slurm.toml")
    assert tomllib.loads(path.read_text())["compute"]["slurm"]["partition"] == "gpu"
    other = _setup(qtbot, home)
    other.load_toml(path)
    assert other.compute.slurm.isVisible()
    assert other.compute.slurm_form.editors["setup"].widget.toPlainText().splitlines()[0] == \
        "module load cuda/12.4"
    assert other.build_config().compute == c


def test_compute_problems_mark_their_fields(qtbot, home, tmp_path):
    tab = _setup(qtbot, home)
    _make_valid(tab, tmp_path)
    comp = tab.compute
    execu = comp.form.editors["executor"].widget
    execu.setCurrentIndex(execu.findData("slurm"))
    comp.slurm_form.editors["mem"].widget.setText("lots")
    comp.slurm_form.editors["time_limit"].widget.setText("soon")
    assert not tab.valid and not tab.launch_btn.isEnabled()
    assert {p.loc for p in tab.problems} == {("compute", "slurm", "mem"),
                                             ("compute", "slurm", "time_limit")}
    assert _red(comp.slurm_form, "mem") and _red(comp.slurm_form, "time_limit")
    assert not _red(comp.slurm_form, "partition") and not _red(comp.form, "nodes")
    assert "compute.slurm.mem" in tab.error_label.text()
    # a bad Slurm field stays on screen under the local executor, so its mark can be found
    execu.setCurrentIndex(execu.findData("local"))
    assert comp.slurm.isVisible()
    comp.slurm_form.editors["mem"].widget.setText("16G")
    comp.slurm_form.editors["time_limit"].widget.setText("2:00:00")
    assert tab.valid and comp.slurm.isHidden()
    assert not _red(comp.slurm_form, "mem")
    # the section's own check (several nodes need Slurm) marks the two fields it ties together
    comp.form.editors["nodes"].widget.setValue(3)
    assert [p.loc for p in tab.problems] == [("compute",)]
    assert _red(comp.form, "nodes") and _red(comp.form, "executor")
    assert not _red(comp.form, "processes")
    execu.setCurrentIndex(execu.findData("slurm"))
    assert tab.valid and not _red(comp.form, "nodes")
    # a cross-section check (GPUs on a CPU model) names gpus_per_process
    tab.checkpoint.form.editors["device"].widget.setCurrentIndex(
        tab.checkpoint.form.editors["device"].widget.findData("cpu"))
    comp.form.editors["gpus_per_process"].widget.setValue(1)
    assert [p.loc for p in tab.problems] == [("compute", "gpus_per_process")]
    assert _red(comp.form, "gpus_per_process") and not _red(comp.form, "nodes")


def test_compute_box_fits_the_setup_column(qtbot, home):
    """The box lives in the left column's scroll area: no wider than the column, so nothing
    beside it is pushed away and no horizontal scroll bar appears."""
    from reset_gui.setup.tab import LEFT_WIDTH

    tab = _setup(qtbot, home)
    tab.resize(1000, 760)
    execu = tab.compute.form.editors["executor"].widget
    execu.setCurrentIndex(execu.findData("slurm"))
    qtbot.waitUntil(lambda: tab.compute.slurm.isVisible())
    area = tab.checkpoint.parentWidget().parentWidget().parentWidget()
    assert area.width() == LEFT_WIDTH
    for box in (tab.checkpoint, tab.compute):
        assert box.minimumSizeHint().width() <= LEFT_WIDTH - 20
    assert not area.horizontalScrollBar().isVisible()
