"""The Setup tab offers every faithfulness judge the config accepts (faith_factcc included), each
with its blind spots and measured pair accuracy as the tooltip."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402

from backend.config import FAITHFULNESS_JUDGES, JudgeSpec  # noqa: E402
from backend.judges.registry import JUDGES  # noqa: E402


def test_config_accepts_exactly_the_registered_faithfulness_judges():
    registered = {n for n, cls in JUDGES.items() if cls.category == "faithfulness"}
    assert set(FAITHFULNESS_JUDGES) == registered | {"auto"}
    assert JudgeSpec(faithfulness="faith_factcc").faithfulness == "faith_factcc"
    with pytest.raises(ValueError, match="unknown faithfulness judge 'faith_nope'"):
        JudgeSpec(faithfulness="faith_nope")


def test_faithfulness_choices_carry_their_blind_spots(qtbot):
    from reset_gui.setup.judges import FAITH_NOTES, JudgesEditor

    ed = JudgesEditor()
    qtbot.addWidget(ed)
    combo = ed.faith_combo
    names = [combo.itemData(i) for i in range(combo.count())]
    assert names == list(FAITHFULNESS_JUDGES) and "faith_factcc" in names
    i = combo.findData("faith_factcc")
    tip = combo.itemData(i, Qt.ItemDataRole.ToolTipRole)
    # the README's table: hand-written swaps 64 %, held-out swaps 76 %, new words 100 % / 96 %
    for figure in ("hand-written swaps 64 %", "held-out swaps 76 %", "new words 96 %",
                   "reset-gui judge --prepare"):
        assert figure in tip
    assert "69 %" in combo.itemData(combo.findData("faith_minilm"), Qt.ItemDataRole.ToolTipRole)
    with qtbot.waitSignal(ed.edited):
        ed.set_values({"faithfulness": "faith_factcc"})
    assert combo.currentData() == "faith_factcc" and combo.toolTip() == FAITH_NOTES["faith_factcc"]
    assert ed.values()["faithfulness"] == "faith_factcc"
    ed.set_values({"faithfulness": "faith_lexical"})
    assert "below chance on swaps" in combo.toolTip()


def test_local_llm_judge_folder_round_trips_and_is_marked(qtbot, tmp_path):
    from backend.config import load_preset
    from backend.paths import PRESETS
    from reset_gui.setup.draft import ConfigDraft, within
    from reset_gui.setup.judges import JudgesEditor

    ed = JudgesEditor()
    qtbot.addWidget(ed)
    folder = str(tmp_path / "judge_lm")
    ed.set_values({"llm_judge": {"model_path": folder, "scoring": "generate"}})
    assert ed.llm_local_edit.text() == folder
    assert ed.values()["llm_judge"] == {"model_path": folder, "scoring": "generate"}
    # the folder does not exist: the draft's problem lands on this field
    data = load_preset("mtl_demo").to_dict()
    data["judges"] = {**data["judges"], **ed.values()}
    _, problems = ConfigDraft(data, PRESETS).check()
    assert [p.loc for p in problems] == [("judges", "llm_judge", "model_path")]
    assert "folder not found" in problems[0].msg
    ed.mark(within(problems, "judges"))
    assert "border" in ed.llm_local_edit.styleSheet() and ed.nli_edit.styleSheet() == ""
    ed.llm_local_edit.clear()
    assert "llm_judge" not in ed.values()
