"""The study preset: resolves and validates, runs every plan of the comparison under 3 seeds, holds
out >= 40 eval items per category, and stays within the sizing its time estimate rests on (the
counts come from the real data layer; nothing is trained here)."""
from __future__ import annotations

import math

from backend import presets
from backend.config import EvaluateStage, TrainStage, load_preset
from backend.data import eval_sets, split_records
from backend.experiments import seed_configs
from backend.stages.context import StageContext
from backend.vocab import GROUNDED_KINDS

# per-step costs measured on a 2-core CPU (DESIGN.md): LoRA step of 4 x 256 tokens, batched
# sampling, greedy probe generation
STEP_S, BATCH_TOK_S, GREEDY_TOK_S = 5.0, 67.0, 17.0
OVERHEAD_S = 60.0  # worker start, model loads, saves (per seed)


def test_study_resolves_validates_and_runs_every_plan():
    resolved = presets.resolve_file(presets.preset_path("study"))
    assert "extends" not in resolved and "stage_defaults" not in resolved
    cfg = load_preset("study")
    assert cfg.seeds == [1, 2, 3] and len(seed_configs(cfg)) == 3
    st = {s.name: s for s in cfg.stages}
    grounded = ["squad_qa", "abstractive_qa", "news_summaries"]
    instr = ["alpaca_instructions", "ifeval_instructions"]
    # two-stage both ways, MTL, ReSet, ReSet-S and the control
    assert (st["g2i_grounded"].data, st["g2i_instructions"].data) == (grounded, instr)
    assert st["g2i_instructions"].init == "g2i_grounded" and st["i2g_grounded"].init == "i2g_instructions"
    assert (st["i2g_instructions"].data, st["i2g_grounded"].data) == (instr, grounded)
    assert st["mtl"].data == [] and st["mtl"].init == "base"
    assert st["sample"].source == "mtl"
    assert (st["reset"].init, st["reset"].selection) == ("mtl", "select")
    assert (st["reset_s"].init, st["reset_s"].selection) == ("mtl", "select_s")
    assert st["select_s"].threshold > st["select"].threshold == st["select_s"].reset_threshold
    assert set(st["select_s"].per_kind_quota) == {"qa_extractive", "qa_abstractive", "summarization",
                                                  "instruction"}
    assert (st["control"].targets, st["control"].selection, st["control"].init) == ("reference", "select", "mtl")
    ev = [s for s in cfg.stages if isinstance(s, EvaluateStage)]
    assert len(ev) == 1 and ev[0].checkpoints == ["g2i_instructions", "i2g_grounded", "mtl", "reset",
                                                  "reset_s", "control"]


def test_study_holds_out_forty_items_per_category_and_fits_the_time_budget():
    cfg = load_preset("study")
    ev = cfg.stages[-1]
    sets = eval_sets(cfg.data, size=ev.eval_size)
    n_grounded = sum(len(v) for v in sets.values() if v and v[0].kind in GROUNDED_KINDS)
    ifeval = sets["ifeval_instructions"]
    assert n_grounded >= 40  # faithfulness items
    assert len(ifeval) >= 40 and all(r.instruction_id_list for r in ifeval)  # IFEval-scored items
    train, held = split_records(next(d for d in cfg.data if d.name == "ifeval_instructions"))
    assert not {r.id for r in train} & {r.id for r in held}  # held out, never trained on
    n_items = sum(len(v) for v in sets.values())

    # the sizing the estimate in study.toml rests on, from the real mixture of seed 1
    from backend.stages.sample import prompt_records  # noqa: F401  (same module the run uses)
    from backend.stages.train import training_examples

    one = seed_configs(cfg)[0]
    ctx = StageContext(run_id="study", home=None, run_dir=None, cfg=one, log=None)
    steps = 0
    for i, s in enumerate(one.stages):
        if isinstance(s, TrainStage) and not s.selection:
            steps += math.ceil(len(training_examples(ctx, i, s)) / s.batch_size) * int(s.epochs)
    sample = next(s for s in one.stages if s.type == "sample")
    prompts = sum(sample.budget_per_kind.values())
    quota = one.stages[one.stage_index("select_s")].per_kind_quota
    # selections: at most one candidate per prompt; ReSet and the control train on ReSet's
    steps += 2 * math.ceil(prompts / 4) + math.ceil(sum(quota.values()) / 4)
    assert steps <= 44
    probes = steps / 6 * 2 * 24 / GREEDY_TOK_S
    sampling = prompts * len(sample.decoding) * sample.max_new_tokens / BATCH_TOK_S
    evaluating = len(ev.checkpoints) * n_items * ev.max_new_tokens / BATCH_TOK_S  # every item at the cap
    per_seed = steps * STEP_S + probes + sampling + evaluating + OVERHEAD_S
    total_min = 3 * per_seed / 60
    print(f"\nstudy: {steps} train steps, {prompts} prompts sampled, {n_items} eval items x "
          f"{len(ev.checkpoints)} checkpoints per seed; upper estimate {per_seed / 60:.1f} min per "
          f"seed, {total_min:.1f} min for 3 seeds")
    assert n_items == 88 and total_min <= 45
