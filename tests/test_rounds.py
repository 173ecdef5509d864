"""Multi-round ReSet: ``rounds = k`` expands into explicit stages (round r samples round r-1's
checkpoint on ALL prompts seen since MTL, judges, selects, continues training it), and round 2's
prompt set, computed by the real sample stage's code on a real run log after the real judge and
select stages of round 1, is every MTL prompt, not only round 1's selected ones."""
from __future__ import annotations

import json
import random

import pytest

from backend import presets
from backend.config import ConfigError, config_from_dict, load_preset, loads
from backend.records import Record
from backend.runlog import RunLog
from backend.stages.context import StageContext

RUN = "20250101-000000-rounds-abcd"


def _reset_demo(**extra) -> dict:
    data = presets.resolve_file(presets.preset_path("reset_demo"))
    data.update(extra)
    return data


def test_rounds_expand_into_one_block_per_round_after_round_one():
    cfg = config_from_dict(_reset_demo(rounds=3), "reset_demo + rounds")
    names = [s.name for s in cfg.stages]
    assert names == ["mtl", "sample", "judge", "select", "reset",
                     "sample_r2", "judge_r2", "select_r2", "reset_r2",
                     "sample_r3", "judge_r3", "select_r3", "reset_r3", "evaluate"]
    st = {s.name: s for s in cfg.stages}
    # each round samples the latest checkpoint on everything MTL saw, and continues that checkpoint
    assert (st["sample_r2"].source, st["sample_r2"].prompts) == ("reset", "mtl")
    assert (st["sample_r3"].source, st["sample_r3"].prompts) == ("reset_r2", "mtl")
    assert (st["reset_r2"].init, st["reset_r2"].selection) == ("reset", "select_r2")
    assert (st["reset_r3"].init, st["reset_r3"].selection) == ("reset_r2", "select_r3")
    assert st["judge_r3"].samples == st["select_r3"].samples == "sample_r3"
    # same sampling, selection rule and training settings as round 1
    for a, b in (("sample", "sample_r2"), ("select", "select_r3"), ("reset", "reset_r3")):
        differ = {f for f in type(st[a]).model_fields if getattr(st[a], f) != getattr(st[b], f)}
        assert differ <= {"name", "source", "prompts", "samples", "init", "selection"}, differ
    # evaluate (checkpoints = []) takes every train stage before it: each round is a point
    ev = cfg.stages[-1]
    assert ev.checkpoints == [] and [s.name for s in cfg.stages if s.type == "train"] == \
        ["mtl", "reset", "reset_r2", "reset_r3"]
    # the expanded plan is what the run log stores: reading it back expands nothing again
    again = loads(cfg.to_toml())
    assert [s.name for s in again.stages] == names and "rounds" not in cfg.to_toml()
    assert config_from_dict(_reset_demo(rounds=1)).stages == load_preset("reset_demo").stages


def test_rounds_with_a_control_and_listed_checkpoints_and_reset_s():
    data = presets.resolve_file(presets.preset_path("control_demo"))
    data["stages"][-1]["checkpoints"] = ["mtl", "reset", "control"]
    cfg = config_from_dict({**data, "rounds": 2})
    st = {s.name: s for s in cfg.stages}
    assert "control_r2" not in st and st["control"].selection == "select"  # the control is round 1's
    assert st["evaluate"].checkpoints == ["mtl", "reset", "reset_r2", "control"]
    s_cfg = config_from_dict({**presets.resolve_file(presets.preset_path("reset_s_demo")), "rounds": 2})
    s = {x.name: x for x in s_cfg.stages}
    assert s["select_r2"].per_kind_quota == s["select"].per_kind_quota != {}
    assert (s["select_r2"].threshold, s["select_r2"].budget) == (s["select"].threshold, s["select"].budget)
    assert s["reset_s_r2"].init == "reset_s"


@pytest.mark.parametrize("rounds, message", [
    (0, "rounds must be a whole number"), ("2", "rounds must be a whole number"),
    (True, "rounds must be a whole number")])
def test_bad_rounds_are_a_problem_at_rounds(rounds, message):
    from backend.config import check_dict

    cfg, found = check_dict(_reset_demo(rounds=rounds))
    assert cfg is None and found[0][0] == ("rounds",) and message in found[0][1]


def test_rounds_need_a_reset_plan_and_free_names():
    mtl = presets.resolve_file(presets.preset_path("mtl_demo"))
    with pytest.raises(ConfigError, match="rounds > 1 needs a ReSet plan"):
        config_from_dict({**mtl, "rounds": 2})
    data = _reset_demo(rounds=2)
    data["stages"][0]["name"] = "reset_r2"  # MTL named like round 2's train stage
    data["stages"][1]["source"] = data["stages"][4]["init"] = "reset_r2"
    with pytest.raises(ConfigError, match="round 2's stage name 'reset_r2' is taken"):
        config_from_dict(data)


# ---- round 2's prompts on a real run log --------------------------------------------------------
def _records(n: int) -> list[dict]:
    rng = random.Random(5)
    out = []
    for i in range(n):
        if i % 3 == 2:
            out.append({"id": f"i{i}", "kind": "instruction", "prompt": f"Describe tower {i} in under "
                        "12 words.", "reference": f"Tower {i} is tall.",
                        "instruction_id_list": ["length_constraints:number_words"],
                        "kwargs": [{"relation": "less than", "num_words": 12}]})
            continue
        ctx = (f"Tower {i} was built in {rng.randint(1800, 1990)}. It was designed by "
               f"{rng.choice(['Ana', 'Ivo', 'Lea'])}. It is {rng.randint(10, 300)} metres tall.")
        out.append({"id": f"g{i}", "kind": "qa_extractive", "context": ctx,
                    "prompt": f"When was tower {i} built?", "reference": ctx.split(". ")[0] + "."})
    return out


def _answer(rng: random.Random, rec: Record) -> str:
    if rec.context is None:
        return " ".join(["The tower is tall."] * rng.randint(1, 4))
    sents = [s if s.endswith(".") else s + "." for s in rec.context.split(". ")]
    return " ".join(rng.sample(sents, rng.randint(1, 3))
                    + rng.sample(["It was moved to the capital.", "A queen opened it."], rng.randint(0, 2)))


def test_round_two_samples_every_prompt_mtl_saw_from_round_ones_checkpoint(tmp_path):
    from backend.stages import stage_runner
    from backend.stages.sample import prompt_records
    from backend.stages.train import training_examples
    from backend.vocab import Status

    src = tmp_path / "x.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in _records(36)), encoding="utf-8")
    cfg = config_from_dict({
        "name": "rounds", "rounds": 2,
        "data": [{"name": "x", "source": str(src), "format": "records", "eval_fraction": 0.0}],
        "judges": {"task": ["rouge_l"], "faithfulness": "faith_lexical",
                   "instruction_following": ["ifeval"]},
        "stages": [{"type": "train", "name": "mtl"},
                   {"type": "sample", "name": "sample", "source": "mtl"},
                   {"type": "judge", "name": "judge", "samples": "sample"},
                   {"type": "select", "name": "select", "samples": "sample", "threshold": 0.5},
                   {"type": "train", "name": "reset", "init": "mtl", "selection": "select"},
                   {"type": "evaluate", "name": "evaluate"}]})
    log = RunLog(tmp_path / "runlog.db")
    log.create_run(RUN, name="rounds", preset="custom", config_toml=cfg.to_toml(),
                   run_dir=str(tmp_path / "runs" / RUN))
    ctx = StageContext(run_id=RUN, home=tmp_path, run_dir=tmp_path / "runs" / RUN, cfg=cfg, log=log)
    idx = {s.name: i for i, s in enumerate(cfg.stages)}
    seen = {r.id for r, _ in training_examples(ctx, idx["mtl"], cfg.stages[idx["mtl"]])}

    # round 1, as the sample stage stores it (texts written here; no model), then the real
    # judge and select stages
    round1 = prompt_records(ctx, idx["sample"], cfg.stages[idx["sample"]])
    assert {r.id for r in round1} == seen
    ids = log.add_prompts(RUN, idx["sample"], round1)
    rng = random.Random(3)
    log.add_samples([{"run_id": RUN, "stage_idx": idx["sample"], "prompt_id": ids[r.id], "cand_idx": c,
                      "decoding": "t1.0", "params": {}, "seed": c, "text": _answer(rng, r),
                      "n_tokens": 10, "finish_reason": "stop"} for r in round1 for c in range(3)])
    for name in ("judge", "select"):
        st = cfg.stages[idx[name]]
        log.stage_start(RUN, idx[name], st.name, st.type)
        stage_runner(st.type)(ctx, idx[name], st)
        log.stage_end(RUN, idx[name], Status.SUCCEEDED)
    selected = {r.id for r, _ in training_examples(ctx, idx["reset"], cfg.stages[idx["reset"]])}
    assert selected and selected < seen  # round 1 kept some prompts, not all

    # round 2: every prompt MTL saw (not only round 1's selected ones), from round 1's checkpoint
    r2 = cfg.stages[idx["sample_r2"]]
    round2 = prompt_records(ctx, idx["sample_r2"], r2)
    assert {r.id for r in round2} == seen and len(round2) == len(seen)
    with pytest.raises(RuntimeError, match="'reset' has no final checkpoint"):
        ctx.model_ref_for(idx["sample_r2"], r2.source)  # never the MTL checkpoint by mistake
    log.add_checkpoint(RUN, idx["reset"], 4, "reset", str(tmp_path / "ck"), "adapter", "embedded")
    assert ctx.model_ref_for(idx["sample_r2"], r2.source) == f"run:{RUN}:reset"
    assert ctx.model_ref_for(idx["reset_r2"], cfg.stages[idx["reset_r2"]].init) == f"run:{RUN}:reset"
    # a per-kind budget caps round 2 as it caps round 1, still drawing from all seen prompts
    capped = r2.model_copy(update={"budget_per_kind": {"qa_extractive": 5, "instruction": 2}})
    got = prompt_records(ctx, idx["sample_r2"], capped)
    assert {r.id for r in got} <= seen and sorted(r.kind for r in got) == \
        ["instruction"] * 2 + ["qa_extractive"] * 5
    log.close()
