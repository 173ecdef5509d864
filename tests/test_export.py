"""backend/export.py: adapter copy, selection JSONL, eval CSV (the merged export needs torch)."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from backend.data import chat_messages
from backend.export import (ExportError, export_adapter, export_evals_csv, export_merged,
                            export_selection_jsonl)
from backend.records import Record
from backend.runlog import RunLog

from tests.test_gui_tabs_data import build_runlog

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return build_runlog(home, n_prompts=200)


def test_export_is_torch_free_at_import():
    code = ("import sys, backend.export\n"
            "bad = [m for m in ('torch', 'transformers', 'peft') if m in sys.modules]\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


def test_selection_jsonl_is_chat_messages(demo, tmp_path):
    out = tmp_path / "sel" / "select.jsonl"
    with RunLog(demo["path"]) as log:
        n = export_selection_jsonl(log, demo["reset"], "select", out)
        sel = log.query("SELECT * FROM selections WHERE run_id = ? AND name = 'select'", (demo["reset"],))[0]
        first = log.query(
            "SELECT p.*, s.text FROM selection_items it JOIN samples s ON s.id = it.sample_id "
            "JOIN prompts p ON p.id = s.prompt_id WHERE it.selection_id = ? ORDER BY it.id LIMIT 1",
            (sel["id"],))[0]
    lines = out.read_text(encoding="utf-8").splitlines()
    assert n == len(lines) == sel["n_selected"] > 0
    rows = [json.loads(line) for line in lines]
    assert all(list(r) == ["messages"] for r in rows)
    assert all([m["role"] for m in r["messages"]] == ["user", "assistant"] for r in rows)
    rec = Record(id=first["key"], kind=first["kind"], prompt=first["prompt"], context=first["context"],
                 reference=first["reference"])
    assert rows[0]["messages"] == chat_messages(rec, first["text"])
    with RunLog(demo["path"]) as log, pytest.raises(ExportError, match="no selection"):
        export_selection_jsonl(log, demo["reset"], "nope", tmp_path / "x.jsonl")


def test_evals_csv(demo, tmp_path):
    with RunLog(demo["path"]) as log:
        n_all = export_evals_csv(log, None, tmp_path / "all.csv")
        n_one = export_evals_csv(log, demo["mtl"], tmp_path / "one.csv")
        total = log.count("evals")
    rows = list(csv.DictReader((tmp_path / "all.csv").open(encoding="utf-8")))
    assert n_all == len(rows) == total == 16
    assert n_one == 8
    assert {"run_id", "checkpoint_tag", "dataset", "faithfulness", "instruction_following",
            "task_score", "mean_length", "faithfulness_judge"} <= set(rows[0])
    alls = [r for r in rows if r["dataset"] == "_all"]
    assert len(alls) == 4 and all(0 <= float(r["faithfulness"]) <= 1 for r in alls)
    assert rows[0]["run_name"] == "mtl-demo"


def test_export_adapter_copies_without_trainer_state(demo, tmp_path):
    with RunLog(demo["path"]) as log:
        ck = log.find_checkpoint(demo["mtl"], "mtl")
        src = Path(ck["path"])
        src.mkdir(parents=True, exist_ok=True)
        (src / "adapter_config.json").write_text('{"peft_type": "LORA", "r": 8}')
        (src / "adapter_model.safetensors").write_bytes(b"\x00" * 64)
        (src / "tokenizer.json").write_text("{}")
        (src / "optimizer.pt").write_bytes(b"pickle")
        (src / "rng_state.pth").write_bytes(b"pickle")
        out = export_adapter(log, demo["mtl"], "mtl", tmp_path / "adapter")
        assert sorted(p.name for p in out.iterdir()) == [  # + the card and the chat template
            "README.md", "adapter_config.json", "adapter_model.safetensors", "chat_template.jinja",
            "reset_studio_export.json", "tokenizer.json"]
        meta = json.loads((out / "reset_studio_export.json").read_text())
        assert meta["run_id"] == demo["mtl"] and meta["checkpoint_tag"] == "mtl"
        with pytest.raises(ExportError, match="not an empty folder"):
            export_adapter(log, demo["mtl"], "mtl", out)
        with pytest.raises(ExportError, match="missing on disk"):
            export_adapter(log, demo["mtl"], "mtl@10", tmp_path / "a2")
        with pytest.raises(ExportError, match="no checkpoint"):
            export_adapter(log, demo["mtl"], "nope", tmp_path / "a3")


def test_export_merged_reports_missing_checkpoint_without_loading(demo, tmp_path):
    with RunLog(demo["path"]) as log, pytest.raises(ExportError, match="missing on disk"):
        export_merged(log, demo["reset"], "reset", tmp_path / "merged")
