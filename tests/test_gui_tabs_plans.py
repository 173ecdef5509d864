"""backend/plans.py: a continuation run config from a saved selection; what-if == select stage."""
from __future__ import annotations

from pathlib import Path

import pytest

from backend.config import EvaluateStage, TrainStage, loads
from backend.launcher import Studio
from backend.plans import PlanError, continue_from_selection
from backend.runlog import RunLog

from tests.test_gui_tabs_data import build_runlog


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return build_runlog(home, n_prompts=200)


def test_continue_from_selection(demo):
    cfg = continue_from_selection(demo["reset"], "select", Studio(Path(demo["path"]).parent))
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
    studio = Studio(Path(demo["path"]).parent)
    with pytest.raises(PlanError, match="no selection"):
        continue_from_selection(demo["reset"], "nope", studio)
    with pytest.raises(PlanError, match="no run"):
        continue_from_selection("no-such-run", "select", studio)
