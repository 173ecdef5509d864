"""Controls and ReSet-S on a run log scored by the real judge and select stages: the control trains on
the original references of exactly the prompts ReSet selected (same count, same settings: the same
steps), and ReSet-S keeps per-kind budgets and records its size next to ReSet's on the same samples."""
from __future__ import annotations

import json
import random

import pytest

from backend.config import (ConfigError, DatasetSpec, JudgeSpec, JudgeStage, RunConfig, SampleStage,
                            SelectStage, TrainStage, config_from_dict, load_preset)
from backend.records import Record
from backend.runlog import RunLog
from backend.stages.context import StageContext

RUN = "20250101-000000-controls-abcd"
W = {"task": 0.2, "faithfulness": 0.5, "instruction_following": 0.3}
QUOTA = {"qa_extractive": 3, "summarization": 2, "instruction": 4}


def _records(rng: random.Random, n: int) -> list[Record]:
    out = []
    for i in range(n):
        kind = ("qa_extractive", "summarization", "instruction")[i % 3]
        if kind == "instruction":
            out.append(Record(id=f"x:i{i}", kind=kind, prompt=f"Describe tower {i} in under 12 words.",
                              reference=f"Tower {i} is a tall old tower.", source="x",
                              instruction_id_list=["length_constraints:number_words"],
                              kwargs=[{"relation": "less than", "num_words": 12}]))
            continue
        ctx = (f"Tower {i} was built in {rng.randint(1800, 1990)}. It was designed by "
               f"{rng.choice(['Ana', 'Ivo', 'Lea'])}. It is {rng.randint(10, 300)} metres tall.")
        out.append(Record(id=f"x:g{i}", kind=kind, context=ctx, source="x",
                          prompt=f"When was tower {i} built?" if kind == "qa_extractive"
                          else f"Summarize the text about tower {i}.", reference=ctx.split(". ")[0] + "."))
    return out


def _response(rng: random.Random, rec: Record) -> str:
    if rec.context is None:
        return " ".join(["The tower is tall and old."] * rng.randint(1, 4))
    sents = [s if s.endswith(".") else s + "." for s in rec.context.split(". ")]
    junk = ["It was moved to the capital.", "The queen opened it with a parade."]
    return " ".join(rng.sample(sents, rng.randint(1, 3)) + rng.sample(junk, rng.randint(0, 2)))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from backend.stages import stage_runner
    from backend.vocab import Status

    tmp = tmp_path_factory.mktemp("controls")
    cfg = RunConfig(
        name="controls", data=[DatasetSpec(name="x", source=str(tmp / "x.jsonl"), format="records")],
        judges=JudgeSpec(task=["rouge_l", "token_f1"], faithfulness="faith_lexical",
                         instruction_following=["ifeval"], weights=W),
        stages=[SampleStage(name="sample", source="base"), JudgeStage(name="judge", samples="sample"),
                SelectStage(name="select", samples="sample", threshold=0.45),
                SelectStage(name="select_s", samples="sample", threshold=0.6, per_kind_quota=QUOTA,
                            reset_threshold=0.45),
                TrainStage(name="reset", init="base", selection="select"),
                TrainStage(name="control", init="base", selection="select", targets="reference")])
    log = RunLog(tmp / "runlog.db")
    log.create_run(RUN, name="controls", preset="custom", config_toml=cfg.to_toml(),
                   run_dir=str(tmp / "runs" / RUN))
    rng = random.Random(11)
    records = _records(rng, 60)
    ids = log.add_prompts(RUN, 0, records)
    log.add_samples([{"run_id": RUN, "stage_idx": 0, "prompt_id": ids[r.id], "cand_idx": c,
                      "decoding": "t1.0", "params": {}, "seed": c, "text": _response(rng, r),
                      "n_tokens": 10, "finish_reason": "stop"} for r in records for c in range(4)])
    ctx = StageContext(run_id=RUN, home=tmp, run_dir=tmp / "runs" / RUN, cfg=cfg, log=log)
    for idx in (1, 2, 3):
        st = cfg.stages[idx]
        log.stage_start(RUN, idx, st.name, st.type)
        stage_runner(st.type)(ctx, idx, st)
        log.stage_end(RUN, idx, Status.SUCCEEDED)
    yield {"ctx": ctx, "records": {r.id: r for r in records}}
    log.close()


def _selection(log: RunLog, name: str) -> tuple[dict, list[dict]]:
    sel = log.query("SELECT * FROM selections WHERE run_id = ? AND name = ?", (RUN, name))[0]
    items = log.query("SELECT it.*, p.kind FROM selection_items it JOIN prompts p ON p.id = it.prompt_id "
                      "WHERE it.selection_id = ? ORDER BY it.rank", (sel["id"],))
    return json.loads(sel["policy"]), items


def test_reset_s_keeps_per_kind_budgets_and_records_its_size_next_to_reset(run):
    log = run["ctx"].log
    _p, reset_items = _selection(log, "select")
    policy, s_items = _selection(log, "select_s")
    kinds = {k: sum(1 for it in s_items if it["kind"] == k) for k in QUOTA}
    assert all(kinds[k] <= QUOTA[k] for k in QUOTA) and all(kinds.values())  # every kind keeps some
    vs = policy["vs_reset"]
    # the ReSet selection of the same samples is what the ReSet select stage stored
    assert vs["reset_n_selected"] == len(reset_items) and vs["n_selected"] == len(s_items)
    assert vs["ratio"] == pytest.approx(len(s_items) / len(reset_items)) and vs["ratio"] < 1
    assert sum(vs["reset_per_kind"].values()) == len(reset_items)
    metric = log.query("SELECT value FROM metrics WHERE run_id = ? AND stage_idx = 3 AND name = "
                       "'size_vs_reset'", (RUN,))
    assert metric and metric[0]["value"] == pytest.approx(vs["ratio"])
    print(f"\nReSet-S kept {len(s_items)} of ReSet's {len(reset_items)} ({vs['ratio']:.0%}); per kind "
          f"{kinds} vs {vs['reset_per_kind']}")
    _p0, _ = _selection(log, "select")
    assert "vs_reset" not in _p0  # a plain ReSet selection has no reference to compare with


def test_control_trains_on_the_references_of_the_same_prompts(run):
    from backend.stages.train import training_examples

    ctx, recs = run["ctx"], run["records"]
    reset = training_examples(ctx, 4, ctx.cfg.stages[4])
    control = training_examples(ctx, 5, ctx.cfg.stages[5])
    assert [r.id for r, _ in reset] == [r.id for r, _ in control]  # same prompts, same order
    assert len(control) == len(reset) > 0  # same examples, same settings: same number of steps
    assert all(text == recs[r.id].reference for r, text in control)
    assert any(text != recs[r.id].reference for r, text in reset)  # ReSet trains on samples


def test_control_needs_a_selection_and_the_preset_matches_reset():
    with pytest.raises(ConfigError, match="targets"):
        config_from_dict({"stages": [{"type": "train", "name": "c", "targets": "reference"}]})
    cfg = load_preset("control_demo")
    st = {s.name: s for s in cfg.stages}
    assert st["control"].targets == "reference" and st["control"].selection == st["reset"].selection
    assert st["control"].init == st["reset"].init == "mtl"
    same = {f for f in type(st["reset"]).model_fields if getattr(st["reset"], f) == getattr(st["control"], f)}
    assert set(type(st["reset"]).model_fields) - same == {"name", "targets"}
    assert st["evaluate"].checkpoints == []  # evaluates every train stage: mtl, reset, control
    s = {x.name: x for x in load_preset("reset_s_demo").stages}["select"]
    assert s.per_kind_quota and s.reset_threshold == {x.name: x for x in load_preset("reset_demo").stages}[
        "select"].threshold
