"""reset_gui/setup/draft.py: the Setup tab's config draft, checked without Qt; every problem
comes back as (location, message)."""
from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest

from backend.config import ConfigError, load_preset
from backend.paths import PRESETS, REPO_ROOT
from reset_gui.setup.draft import (ConfigDraft, Problem, dataset_from_cells, parse_mapping,
                                   within)


@pytest.fixture
def demo() -> dict:
    return load_preset("reset_demo").to_dict()


def _locs(problems: list[Problem]) -> list[tuple]:
    return [p.loc for p in problems]


def test_draft_imports_no_qt():
    code = ("import sys, reset_gui.setup.draft\n"
            "bad = [m for m in sys.modules if m.startswith(('PySide6', 'shiboken'))]\n"
            "assert not bad, bad\n")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


def test_a_preset_checks_clean_and_builds(demo):
    cfg, problems = ConfigDraft(demo, PRESETS).check()
    assert problems == []
    assert cfg is not None and cfg.to_dict()["stages"] == demo["stages"]
    assert Path(cfg.data[0].source).is_absolute()  # made absolute against the presets / repo
    assert ConfigDraft(demo, PRESETS).build().to_dict() == cfg.to_dict()


def test_schema_errors_keep_their_location(demo):
    demo["stages"][0]["learning_rate"] = 0.0
    demo["stages"][1]["decoding"] = [{"name": "hot", "temperature": -1.0}]
    cfg, problems = ConfigDraft(demo, PRESETS).check()
    assert cfg is None
    by_loc = {p.loc: p for p in problems}
    # the stage-type tag pydantic puts in union locations is dropped
    assert "greater than 0" in by_loc[("stages", 0, "learning_rate")].msg
    assert "(got 0.0)" in by_loc[("stages", 0, "learning_rate")].msg
    assert ("stages", 1, "decoding", 0, "temperature") in by_loc
    line = by_loc[("stages", 0, "learning_rate")].line(demo["stages"])
    assert line.startswith("stages.0 (mtl).learning_rate: Input should be greater than 0")


@pytest.mark.parametrize("edit, loc, words", [
    (lambda d: d["stages"].__setitem__(1, {**d["stages"][1], "name": d["stages"][0]["name"]}),
     ("stages", 1, "name"), "duplicate stage name"),
    (lambda d: d["stages"][1].__setitem__("source", "nonexistent"),
     ("stages", 1, "source"), "is not an earlier stage"),
    (lambda d: d["stages"][0].__setitem__("data", ["nope"]), ("stages", 0, "data"), "unknown data set"),
    (lambda d: d["judges"].__setitem__("weights", {"task": 0.0}), ("judges", "weights"), "zero"),
    (lambda d: d["judges"].__setitem__("faithfulness", "faith_magic"), ("judges", "faithfulness"),
     "unknown faithfulness judge 'faith_magic'"),
    (lambda d: [x.update(weight=0.0, budget=None) for x in d["data"]], ("data",), "sum to zero"),
    (lambda d: d["data"].append(copy.deepcopy(d["data"][0])), ("data",), "duplicate data set"),
    (lambda d: d.__setitem__("stages", []), ("stages",), "empty"),
    (lambda d: d["stages"][2].__setitem__("type", "juggle"), ("stages", 2, "type"),
     "unknown stage type"),
])
def test_cross_field_checks_name_the_field(demo, edit, loc, words):
    edit(demo)
    for d in demo["data"]:  # budget None means "use the weight"
        if d.get("budget") is None:
            d.pop("budget", None)
    _, problems = ConfigDraft(demo, PRESETS).check()
    assert [p.loc for p in problems] == [loc], problems
    assert words in problems[0].msg
    with pytest.raises(ConfigError, match=words):  # the CLI's message says the same
        ConfigDraft(demo, PRESETS).build()


def test_file_problems(demo, tmp_path):
    draft = ConfigDraft(demo, PRESETS)
    draft.data["model"]["base"] = str(tmp_path / "missing")
    draft.base_mode = "local"
    assert _locs(draft.file_problems()) == [("model", "base")]
    assert "not found" in draft.file_problems()[0].msg
    (tmp_path / "empty").mkdir()
    draft.data["model"]["base"] = str(tmp_path / "empty")
    assert "no config.json" in draft.file_problems()[0].msg
    (tmp_path / "empty" / "config.json").write_text("{}")
    assert draft.file_problems() == []
    draft.base_mode, draft.data["model"]["base"] = "hub", "not a hub id"
    assert "not a hub id" in draft.file_problems()[0].msg
    draft.data["model"]["base"] = "org/model"
    draft.data["data"][1]["eval_source"] = "assets/demo/nowhere.jsonl"
    draft.data["judges"]["nli_model"] = str(tmp_path / "nli")
    cfg, problems = draft.check()
    assert cfg is not None  # launchable: the launcher re-checks files in depth
    assert _locs(problems) == [("data", 1, "eval_source"), ("judges", "nli_model")]


def test_parse_problems_come_first_and_block_build(demo):
    parse = [Problem(("data", 0, "weight"), "'lots' is not a number")]
    demo["stages"][0]["learning_rate"] = 0.0
    draft = ConfigDraft(demo, PRESETS, parse_problems=parse)
    _, problems = draft.check()
    assert _locs(problems) == [("data", 0, "weight"), ("stages", 0, "learning_rate")]
    assert within(problems, "stages") == [(0, "learning_rate")]
    assert within(problems, "data") == [(0, "weight")]
    with pytest.raises(ConfigError, match=r"data\.0\.weight: 'lots' is not a number"):
        draft.build()


def test_dataset_cells_and_mappings():
    d, errors = dataset_from_cells({"name": "a", "source": "x.jsonl", "format": "custom",
                                    "kind": "", "columns": "prompt=q, context=p", "weight": "",
                                    "budget": "3", "eval_source": ""}, {"split": "train"})
    assert errors == {}
    assert d == {"split": "train", "name": "a", "source": "x.jsonl", "format": "custom",
                 "columns": {"prompt": "q", "context": "p"}, "weight": None, "budget": 3}
    _, errors = dataset_from_cells({"name": "a", "source": "", "format": "auto",
                                    "columns": "prompt", "weight": "lots", "budget": "2.5"})
    assert set(errors) == {"columns", "weight", "budget"}
    assert "whole number" in errors["budget"] and "key=value" in errors["columns"]
    assert parse_mapping("a=1, b = 2", int) == {"a": 1, "b": 2}
    with pytest.raises(ValueError, match="b: 'x' is not a number"):
        parse_mapping("a=1, b=x", float)


def test_save_read_and_clone(demo, tmp_path):
    demo["compute"] = {"processes": 2}  # a section the tab has no editor for rides along
    path = ConfigDraft(demo, PRESETS).save(tmp_path / "ok.toml")
    back = ConfigDraft.read(path)
    assert back.config_dir == tmp_path and back.check()[1] == []
    assert back.data["compute"]["processes"] == 2
    demo["stages"][0]["learning_rate"] = 0.0  # work in progress is saved as it is
    wip = ConfigDraft.read(ConfigDraft(demo, PRESETS).save(tmp_path / "wip.toml"))
    assert _locs(wip.check()[1]) == [("stages", 0, "learning_rate")]
    with pytest.raises(ConfigError, match="not found"):
        ConfigDraft.read(tmp_path / "none.toml")
    (tmp_path / "child.toml").write_text('extends = "reset_demo"\nname = "child"\n')
    child = ConfigDraft.read(tmp_path / "child.toml")  # a composed config loads resolved
    cfg, problems = child.check()
    assert problems == [] and "extends" not in child.data
    assert cfg.name == "child"
    assert cfg.to_dict()["stages"] == load_preset("reset_demo").to_dict()["stages"]
    clone = ConfigDraft.clone_of({"id": "r1", "name": "x", "config_toml": path.read_text(),
                                  "run_dir": str(tmp_path)})
    assert clone.data["name"] == f"{demo['name']}-clone" and clone.config_dir == tmp_path
    with pytest.raises(ConfigError, match="unreadable config"):
        ConfigDraft.clone_of({"id": "r2", "config_toml": "name = ["})
