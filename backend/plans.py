"""Stage plans built from earlier runs (no Qt, no torch).

``continue_from_selection``: a new run that continues the parent's MTL checkpoint on a selection
saved from the GUI's what-if panel (ReSet's step 6 with a hand-tuned selection), then evaluates.

``with_rounds``: multi-round ReSet (``rounds = k`` in a config). Round r (2..k) samples the latest
checkpoint (round r-1's) on ALL the prompts seen since MTL, not only the ones round r-1 selected,
judges, selects with round 1's rule and continues training that checkpoint; every round's
checkpoint is evaluated, so each is a point on the trade-off plot.
"""
from __future__ import annotations

from typing import Any

from . import queries
from .config import (ConfigError, EvaluateStage, FieldError, JudgeStage, RunConfig, TrainStage,
                     loads)
from .errors import StudioError
from .launcher import Studio


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


def continue_from_selection(run_id: str, selection_name: str, studio: Studio) -> RunConfig:
    """Config for: train (init = the parent's MTL checkpoint, data = the saved selection) + evaluate.

    Same model, data mixture, judges and seed as the parent; training parameters copied from the
    parent's continued-train stage (the one that trained on a selection) or, when it has none,
    its first train stage. When the parent is itself a continuation (its first train stage starts
    from ``run:...``), the new run starts from that same MTL checkpoint.
    """
    with studio.open_log() as log:
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


def reset_block(cfg: RunConfig) -> tuple[int, int, int, int]:
    """Indexes (sample, judge, select, continued train) of the config's ReSet round: the last train
    stage on a select stage's selection of this run (the control, trained on references, is not
    one), the select and sample stages behind it and the judge of those samples."""
    for t in range(len(cfg.stages) - 1, -1, -1):
        train = cfg.stages[t]
        if not isinstance(train, TrainStage) or not train.selection \
                or train.selection.startswith("sel:") or train.targets != "selected":
            continue
        s = cfg.resolve_ref(t, train.selection, "select")
        p = cfg.resolve_ref(s, cfg.stages[s].samples, "sample") if s is not None else None
        if p is None:
            continue
        judges = [j for j in range(p + 1, s) if isinstance(cfg.stages[j], JudgeStage)
                  and cfg.resolve_ref(j, cfg.stages[j].samples, "sample") == p]
        if judges:
            return p, judges[-1], s, t
    raise FieldError(("rounds",), "rounds > 1 needs a ReSet plan: sample -> judge -> select -> a "
                     "train stage on that selection")


def with_rounds(cfg: RunConfig, rounds: Any) -> RunConfig:
    """``cfg`` with its ReSet round repeated ``rounds`` times in all (see the module doc).

    Round r's stages are round 1's, named ``<name>_r<r>`` and placed after the previous round's
    train stage: sample (source = the previous round's checkpoint, prompts = the train stage round
    1 sampled the prompts of, i.e. MTL's: everything seen), judge, select (same threshold, quota,
    budget and weights), train (init = the previous round's checkpoint, same settings). Evaluate
    stages that list round 1's checkpoint list every round's.
    """
    if isinstance(rounds, bool) or not isinstance(rounds, int) or not 1 <= rounds <= 20:
        raise FieldError(("rounds",), f"rounds must be a whole number from 1 to 20, got {rounds!r}")
    if rounds == 1:
        return cfg
    p, j, s, t = reset_block(cfg)
    sample, judge = cfg.stages[p], cfg.stages[j]
    select, train = cfg.stages[s], cfg.stages[t]
    if sample.source.startswith("run:"):
        seen = sample.prompts or "base"  # another run's checkpoint: this run's mixture
    else:
        src = cfg.resolve_ref(p, sample.source, "train")
        seen = sample.prompts or (cfg.stages[src].name if src is not None else "base")
    names = {st.name for st in cfg.stages}
    added: list[Any] = []
    latest = train.name
    for r in range(2, rounds + 1):
        sfx = f"_r{r}"
        new = [sample.model_copy(update={"name": sample.name + sfx, "source": latest,
                                         "prompts": seen}, deep=True),
               judge.model_copy(update={"name": judge.name + sfx, "samples": sample.name + sfx},
                                deep=True),
               select.model_copy(update={"name": select.name + sfx, "samples": sample.name + sfx},
                                 deep=True),
               train.model_copy(update={"name": train.name + sfx, "init": latest,
                                        "selection": select.name + sfx}, deep=True)]
        clash = sorted(names & {st.name for st in new})
        if clash:
            raise FieldError(("rounds",), f"round {r}'s stage name {clash[0]!r} is taken; rename "
                             "that stage")
        added += new
        latest = train.name + sfx
    rounds_of_train = [st.name for st in added if isinstance(st, TrainStage)]
    stages: list[Any] = []
    for i, st in enumerate(cfg.stages):
        if isinstance(st, EvaluateStage) and train.name in st.checkpoints:
            at = st.checkpoints.index(train.name) + 1
            st = st.model_copy(update={"checkpoints": st.checkpoints[:at] + rounds_of_train
                                       + st.checkpoints[at:]}, deep=True)
        stages.append(st)
        if i == t:
            stages += added
    # validated again: every reference of the new stages must point at an earlier stage
    return RunConfig.model_validate({**cfg.model_dump(), "stages": [x.model_dump() for x in stages]})
