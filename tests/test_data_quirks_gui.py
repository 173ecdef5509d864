"""The Setup tab's data preview states the data quirks of the whole file, counted: records without a
reference, and records longer than the plan's train window (with the truncation policy)."""
from __future__ import annotations

import json


def test_preview_states_quirk_counts(qtbot, studio, tmp_path):
    from reset_gui.setup.tab import SetupTab

    tab = SetupTab(studio)
    qtbot.addWidget(tab)
    tab.show()
    long_text = " ".join(f"Step {i}: stir the pot and wait a minute." for i in range(200))
    rows = [{"instruction": "Say hi.", "input": "", "output": "Hi."},
            {"instruction": "Say nothing.", "input": "", "output": ""},
            {"instruction": "Recite the recipe.", "input": "", "output": long_text}]
    data = tmp_path / "alpaca.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    while tab.mix.rowCount() > 1:
        tab.mix.selectRow(tab.mix.rowCount() - 1)
        tab.remove_dataset_row()
    tab.set_cell(0, "Name", "alpaca")
    tab.set_cell(0, "Source", str(data))
    tab.set_cell(0, "Format", "alpaca")
    tab.set_cell(0, "Columns", "")
    tab.set_cell(0, "Kind", "(from format)")
    trains = [s for s in tab.stages if s.get("type") == "train"]
    assert trains
    window = min(int(s.get("max_length") or 256) for s in trains)
    tab.mix.selectRow(0)
    tab.mixture.preview_selected()
    qtbot.waitUntil(lambda: tab.preview_table.rowCount() == 3, timeout=60000)
    text = tab.mixture.preview_status.text()
    assert "1 of 3 records have no reference" in text, text
    assert f"about 1 of 3 records exceed max_length={window} tokens" in text, text
    assert "END of its context" in text
