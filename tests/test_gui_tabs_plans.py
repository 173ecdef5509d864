"""backend/plans.py: a continuation run config from a saved selection; what-if == select stage."""
from __future__ import annotations

from pathlib import Path

import pytest

from backend.config import EvaluateStage, TrainStage, loads
from backend.plans import PlanError, continue_from_selection
from backend.runlog import RunLog

from tests.test_gui_tabs_data import build_runlog


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return build_runlog(home, n_prompts=200)


def test_continue_from_selection(demo):
    home = Path(demo["path"]).parent
    cfg = continue_from_selection(demo["reset"], "select", home)
    train, ev = cfg.stages
    assert isinstance(train, TrainStage) and isinstance(ev, EvaluateStage)
    assert train.init == f"run:{demo['reset']}:mtl"
    assert train.selection == f"sel:{demo['reset']}:select"
    with RunLog(demo["path"], readonly=True) as log:
        parent = loads(log.get_run(demo["reset"])["config_toml"])
    cont = next(s for s in parent.stages if isinstance(s, TrainStage) and s.selection)
    assert train.learning_rate == cont.learning_rate == 1e-4  # the parent's continued-train params
    assert train.epochs == cont.epochs and train.lora_r == cont.lora_r
    assert ev.checkpoints == ["continue"]
    assert [d.name for d in cfg.data] == [d.name for d in parent.data]
    assert cfg.model == parent.model and cfg.judges == parent.judges
    again = loads(cfg.to_toml())  # the validator accepts run:/sel: refs
    assert again.stages[0].init == train.init


def test_continue_from_selection_errors(demo):
    home = Path(demo["path"]).parent
    with pytest.raises(PlanError, match="no selection"):
        continue_from_selection(demo["reset"], "nope", home)
    with pytest.raises(PlanError, match="no run"):
        continue_from_selection("no-such-run", "select", home)


def test_whatif_matches_select_stage():
    """The what-if preview (numpy) keeps exactly what the select stage would keep."""
    select = pytest.importorskip("backend.stages.select")
    import random

    from reset_gui.views import CandidateArrays, selection_items, whatif_select

    rng = random.Random(3)
    rows = []
    for pid in range(300):
        kind = ("instruction", "qa_extractive", "summarization")[pid % 3]
        for c in range(4):
            rows.append({"sample_id": pid * 4 + c, "prompt_id": pid, "kind": kind,
                         "task": round(rng.random(), 2),
                         "faithfulness": None if kind == "instruction" else round(rng.random(), 2),
                         "instruction_following": round(rng.random(), 2) if kind == "instruction" else None})
    arrays = CandidateArrays(rows)
    for w, thr, quota, budget in (({"task": .3, "faithfulness": .4, "instruction_following": .3}, .5, {}, None),
                                  ({"task": 1, "faithfulness": 0, "instruction_following": 0}, .3,
                                   {"summarization": 10}, 50),
                                  ({"task": .2, "faithfulness": .8, "instruction_following": 0}, .6, {}, 7)):
        idx, comb = whatif_select(arrays, w, thr, budget, quota)
        mine = [(i["sample_id"], i["rank"]) for i in selection_items(arrays, idx, comb)]
        theirs = [(i["sample_id"], i["rank"]) for i in select.select_samples(rows, thr, w, quota, budget)]
        assert mine == theirs
