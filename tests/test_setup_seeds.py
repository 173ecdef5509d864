"""The Setup tab launches a config that lists several seeds as one experiment (one real run per
seed, tagged with one experiment id through backend.launcher.Studio.launch_seeds), not as one run;
bad seed text is a problem at the Seeds field."""
from __future__ import annotations

import os
import tomllib

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")



def _tab(qtbot, home, tmp_path):
    from backend.launcher import Studio
    from reset_gui.setup.tab import SetupTab

    tab = SetupTab(Studio(home))
    qtbot.addWidget(tab)
    tab.show()
    tab.load_preset("mtl_demo")
    data = tmp_path / "alpaca.jsonl"
    data.write_text('{"instruction": "Say hi.", "input": "", "output": "Hi."}\n'
                    '{"instruction": "Count to 3.", "input": "", "output": "1 2 3"}\n')
    while tab.mix.rowCount() > 1:
        tab.mix.selectRow(tab.mix.rowCount() - 1)
        tab.remove_dataset_row()
    for col, value in (("Name", "alpaca"), ("Source", str(data)), ("Format", "alpaca"),
                       ("Columns", ""), ("Kind", "(from format)"), ("Eval", ""), ("Budget", "2")):
        tab.set_cell(0, col, value)
    # a real worker that fails at once (no model is loaded): the selection does not exist
    tab.set_stage_field(0, "selection", "sel:no-such-run:nothing")
    assert tab.validate(), tab.last_errors
    return tab


def test_setup_launches_several_seeds_as_one_experiment(qtbot, home, studio, tmp_path):
    tab = _tab(qtbot, home, tmp_path)
    tab.seeds_edit.setText("1, 2")
    assert tab.valid and tab.launch_btn.isEnabled()
    assert "2 seeds, launched as one experiment of 2 runs" in tab.ok_label.text()
    with qtbot.waitSignal(tab.launched, timeout=60000) as sig:
        tab.launch()
    exp = tab.last_experiment
    assert exp and exp.startswith("exp-") and exp in tab.ok_label.text()
    with studio.open_log(readonly=True) as log:
        runs = sorted(log.list_runs(), key=lambda r: r["created_at"])
    assert len(runs) == 2 and {r["experiment"] for r in runs} == {exp}
    by_seed = {tomllib.loads(r["config_toml"])["seed"]: r for r in runs}
    assert set(by_seed) == {1, 2}
    assert by_seed[1]["name"].endswith("-s1") and by_seed[2]["name"].endswith("-s2")
    assert sig.args[0] in {r["id"] for r in runs}
    assert all("seeds" not in tomllib.loads(r["config_toml"]) or
               not tomllib.loads(r["config_toml"])["seeds"] for r in runs)  # each run is one seed

    def finished() -> bool:
        with studio.open_log(readonly=True) as log:
            return all(r["status"] in ("failed", "died", "succeeded", "cancelled")
                       for r in log.list_runs())

    qtbot.waitUntil(finished, timeout=180000)  # no worker outlives the test


def test_bad_seeds_are_a_problem_at_the_seeds_field(qtbot, home, tmp_path):
    tab = _tab(qtbot, home, tmp_path)
    tab.seeds_edit.setText("1, 1")
    assert not tab.valid and not tab.launch_btn.isEnabled()
    assert any(e.startswith("seeds:") and "distinct" in e for e in tab.last_errors)
    assert "border" in tab.seeds_edit.styleSheet()  # the field itself is marked
    tab.seeds_edit.setText("")
    assert tab.valid and "launched as one experiment" not in tab.ok_label.text()
    assert tab.seeds_edit.styleSheet() == ""
    # a config that lists seeds opens with them in the Seeds field
    tab.set_config_dict({**tab.draft.data, "seeds": [3, 4, 5]})
    assert tab.seeds_edit.text() == "3,4,5" and "3 seeds" in tab.ok_label.text()
    shots = os.environ.get("RESET_SHOTS")
    if shots:
        tab.resize(1300, 900)
        assert tab.grab().save(os.path.join(shots, "setup_seeds.png"))
