"""Stage plans built from earlier runs (no Qt, no torch).

``continue_from_selection``: a new run that continues the parent's MTL checkpoint on a selection
saved from the GUI's what-if panel (ReSet's step 6 with a hand-tuned selection), then evaluates.
"""
from __future__ import annotations

import os
from typing import Any

from . import paths, queries
from .config import ConfigError, EvaluateStage, RunConfig, TrainStage, loads
from .errors import StudioError
from .runlog import RunLog


class PlanError(StudioError, ValueError):
    """A plan that cannot be built; the message says what is missing."""


def _mtl_stage(cfg: RunConfig) -> TrainStage | None:
    """The parent's MTL / first train stage: the first train stage that trains on data, not on a
    selection (else simply the first train stage)."""
    trains = [s for s in cfg.stages if isinstance(s, TrainStage)]
    for st in trains:
        if not st.selection:
            return st
    return trains[0] if trains else None


def _continued_stage(cfg: RunConfig) -> TrainStage | None:
    for st in cfg.stages:
        if isinstance(st, TrainStage) and st.selection:
            return st
    return None


def continue_from_selection(run_id: str, selection_name: str,
                            home: str | os.PathLike | None = None) -> RunConfig:
    """Config for: train (init = the parent's MTL checkpoint, data = the saved selection) + evaluate.

    Same model, data mixture, judges and seed as the parent; training parameters copied from the
    parent's continued-train stage (the one that trained on a selection) or, when it has none,
    its first train stage. When the parent is itself a continuation (its first train stage starts
    from ``run:...``), the new run starts from that same MTL checkpoint.
    """
    with RunLog(paths.runlog_path(home)) as log:
        run = log.find_run(run_id)
        if run is None:
            raise PlanError(f"no run {run_id!r} in {log.path}")
        run_id = run["id"]
        try:
            parent = loads(run["config_toml"] or "", f"config of run {run_id}")
        except ConfigError as exc:
            raise PlanError(str(exc)) from None
        sel = queries.selection(log, run_id, selection_name)
        if not sel:
            raise PlanError(f"run {run_id} has no selection named {selection_name!r}")
        n_items = log.count("selection_items", selection_id=sel["id"])
        if n_items == 0:
            raise PlanError(f"selection {selection_name!r} of run {run_id} is empty")

        mtl = _mtl_stage(parent)
        if mtl is None:
            raise PlanError(f"run {run_id} has no train stage to continue from")
        if mtl.selection is None:
            init = f"run:{run_id}:{mtl.name}"
            if log.find_checkpoint(run_id, mtl.name) is None:
                raise PlanError(f"run {run_id} has no final checkpoint of its train stage "
                                f"{mtl.name!r} yet (is the stage finished?)")
        else:
            init = mtl.init if mtl.init.startswith("run:") else f"run:{run_id}:{mtl.name}"

    template = _continued_stage(parent) or mtl
    params: dict[str, Any] = template.model_dump(exclude={"name", "type", "init", "data", "selection"})
    train = TrainStage(name="continue", init=init, selection=f"sel:{run_id}:{selection_name}",
                       **params)
    ev_template = next((s for s in parent.stages if isinstance(s, EvaluateStage)), None)
    ev_params = ev_template.model_dump(exclude={"name", "type", "checkpoints", "include_base"}) \
        if ev_template else {}
    evaluate = EvaluateStage(name="evaluate", checkpoints=["continue"], include_base=False,
                             **ev_params)
    base_name = (parent.name or "run")[:40]
    return RunConfig(
        name=f"{base_name}+{selection_name}"[:64],
        preset="continue_from_selection",
        description=(f"Continue {run_id}'s checkpoint {init.split(':', 2)[-1]!r} on its selection "
                     f"{selection_name!r} ({n_items} samples), then evaluate."),
        seed=parent.seed,
        model=parent.model.model_copy(deep=True),
        data=[d.model_copy(deep=True) for d in parent.data],
        judges=parent.judges.model_copy(deep=True),
        stages=[train, evaluate],
    )
