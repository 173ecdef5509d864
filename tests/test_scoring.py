"""backend.scoring and backend.vocab: the one scoring rule, and the what-if panel choosing exactly
what the select stage chooses on the same run log (real judges, real stages, a real Qt panel)."""
from __future__ import annotations

import math
import random
import sqlite3

import numpy as np
import pytest

from backend.config import DatasetSpec, JudgeSpec, JudgeStage, RunConfig, SampleStage, SelectStage
from backend.records import Record
from backend.runlog import RunLog
from backend.scoring import (CandidateArrays, check_weights, combine, combined_scores, covered,
                             select, summarize_selection)
from backend.stages.context import StageContext
from backend.vocab import CATEGORIES, FINAL_STATUSES, KINDS, Category, Kind, StageType, Status

W = {"task": 0.2, "faithfulness": 0.5, "instruction_following": 0.3}


# ---- the rule --------------------------------------------------------------------------------------
def test_check_weights_messages():
    assert check_weights({"task": 1, "faithfulness": "0.5"}) == {"task": 1.0, "faithfulness": 0.5}
    for bad, msg in (({"fluency": 1.0}, "unknown judge categories"), ({"task": "x"}, "not a number"),
                     ({"task": math.inf}, "finite"), ({"task": -0.1, "faithfulness": 1}, "negative"),
                     ({"task": 0.0}, "sum to zero"), ({}, "sum to zero")):
        with pytest.raises(ValueError, match=msg):
            check_weights(bad)


def test_combine_and_covered():
    cats = {"task": 0.4, "faithfulness": None, "instruction_following": 1.0, "combined": 0.0}
    assert combine(cats, W) == pytest.approx((0.2 * 0.4 + 0.3 * 1.0) / 0.5)
    assert covered(cats, W) == ["task", "instruction_following"]
    # a zero weight drops its category; nothing left -> no score
    assert covered(cats, {"faithfulness": 1.0, "task": 0.0}) == []
    assert combine(cats, {"faithfulness": 1.0, "task": 0.0}) is None
    scores = np.array([[0.4, np.nan], [np.nan, np.nan], [1.0, 0.5]])
    got = combined_scores(scores, W)
    assert got[0] == combine(cats, W) and got[1] == pytest.approx(0.5)


def test_select_ties_quota_budget_and_summary():
    rows = [  # two prompts of one kind, one of another; sample 3 ties sample 2 and loses on id
        {"sample_id": 1, "prompt_id": 10, "kind": "qa_extractive", "task": 0.2, "faithfulness": 0.2},
        {"sample_id": 3, "prompt_id": 10, "kind": "qa_extractive", "task": 0.9, "faithfulness": 0.9},
        {"sample_id": 2, "prompt_id": 10, "kind": "qa_extractive", "task": 0.9, "faithfulness": 0.9},
        {"sample_id": 4, "prompt_id": 11, "kind": "qa_extractive", "task": 0.7, "faithfulness": 0.7},
        {"sample_id": 5, "prompt_id": 12, "kind": "instruction", "instruction_following": 0.8},
        {"sample_id": 6, "prompt_id": 13, "kind": "instruction"},  # not judged: never kept
    ]
    arrays = CandidateArrays(rows)
    assert arrays.kinds == ["instruction", "qa_extractive"]  # KINDS order
    idx, comb = select(arrays, W, 0.5)
    assert arrays.sample_id[idx].tolist() == [2, 5, 4]
    idx, _ = select(arrays, W, 0.5, per_kind_quota={"qa_extractive": 1})
    assert arrays.sample_id[idx].tolist() == [2, 5]
    idx, _ = select(arrays, W, 0.5, budget=1)
    assert arrays.sample_id[idx].tolist() == [2]
    summary = {s.kind: s for s in summarize_selection(arrays, *select(arrays, W, 0.75))}
    assert (summary["qa_extractive"].kept, summary["qa_extractive"].prompts) == (1, 2)
    assert (summary["instruction"].kept, summary["instruction"].candidates) == (1, 2)
    assert summary["all"].kept == 2 and summary["all"].mean_combined == pytest.approx(0.85)
    assert math.isnan(summary["instruction"].means["task"])
    with pytest.raises(ValueError, match="sum to zero"):
        select(arrays, {"task": 0}, 0.5)


def test_vocab_values_are_the_stored_strings():
    assert [str(c) for c in CATEGORIES] == ["task", "faithfulness", "instruction_following"]
    assert KINDS == ("instruction", "qa_extractive", "qa_abstractive", "summarization")
    assert Status("died").final and not Status.RUNNING.final and set(FINAL_STATUSES) < set(Status)
    assert StageType.SELECT == "select" and Kind("summarization") is Kind.SUMMARIZATION
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE runs (status TEXT, cat TEXT)")
    conn.execute("INSERT INTO runs VALUES (?, ?)", (Status.CANCELLED, Category.TASK))
    assert conn.execute("SELECT status, cat FROM runs WHERE status = ?", ("cancelled",)).fetchone() \
        == ("cancelled", "task")


# ---- what-if panel == select stage, on a run log the real judge stage scored ------------------------
RUN = "20250101-000000-scoring-test-abcd"
FACTS = ("The {t} was built in {y}.", "It was designed by {n}.", "It is {k} metres long.",
         "A flood closed it in {f}.")
INVENTED = ("It was moved to the capital.", "The king opened it with a parade.")


def _records(rng: random.Random, n: int) -> list[Record]:
    out = []
    for i in range(n):
        kind = ("qa_extractive", "summarization", "instruction")[i % 3]
        if kind == "instruction":
            out.append(Record(id=f"i{i}", kind=kind, prompt=f"Describe bridge {i} in under 12 words.",
                              reference="A long stone bridge over a river.",
                              instruction_id_list=["length_constraints:number_words"],
                              kwargs=[{"relation": "less than", "num_words": 12}]))
            continue
        ctx = " ".join(f.format(t=f"bridge {i}", y=rng.randint(1800, 1990), n=rng.choice(["Ana", "Ivo"]),
                                k=rng.randint(10, 900), f=rng.randint(1991, 2020)) for f in FACTS)
        prompt = f"Summarize the text about bridge {i}." if kind == "summarization" else \
            f"When was bridge {i} built?"
        out.append(Record(id=f"g{i}", kind=kind, prompt=prompt, context=ctx,
                          reference=ctx.split(". ")[0] + "."))
    return out


def _response(rng: random.Random, rec: Record) -> str:
    if rec.context is None:
        return " ".join(["The bridge is long and old."] * rng.randint(1, 4))
    sents = [s if s.endswith(".") else s + "." for s in rec.context.split(". ")]
    picked = rng.sample(sents, rng.randint(1, 3)) + rng.sample(INVENTED, rng.randint(0, 2))
    return " ".join(picked)


@pytest.fixture(scope="module")
def judged_run(tmp_path_factory):
    from backend.stages import stage_runner

    tmp = tmp_path_factory.mktemp("scoring")
    cfg = RunConfig(
        name="scoring-test", data=[DatasetSpec(name="x", source=str(tmp / "x.jsonl"), format="records")],
        judges=JudgeSpec(task=["rouge_l", "token_f1"], faithfulness="faith_lexical",
                         instruction_following=["ifeval"], weights=W),
        stages=[SampleStage(name="sample", source="base"), JudgeStage(name="judge", samples="sample"),
                SelectStage(name="select", samples="sample", threshold=0.55,
                            per_kind_quota={"summarization": 6}, budget=25),
                SelectStage(name="select_task", samples="sample", threshold=0.3,
                            per_kind_quota={"summarization": 6},  # the panel keeps the run's quota
                            weights={"task": 1.0, "faithfulness": 0.0, "instruction_following": 0.0})])
    path = tmp / "runlog.db"
    log = RunLog(path)
    log.create_run(RUN, name="scoring-test", preset="custom", config_toml=cfg.to_toml(),
                   run_dir=str(tmp / "runs" / RUN))
    rng = random.Random(5)
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
    log.close()
    return {"path": path, "config": cfg.to_toml()}


def _stored(path, name):
    with RunLog(path, readonly=True) as log:
        sel = log.query("SELECT id FROM selections WHERE run_id = ? AND name = ?", (RUN, name))[0]
        return log.query("SELECT sample_id, rank, combined FROM selection_items WHERE selection_id = ? "
                         "ORDER BY rank", (sel["id"],))


def test_whatif_panel_keeps_what_the_select_stage_keeps(qtbot, judged_run):
    from reset_gui.whatif import WhatIfPanel

    stage_items = _stored(judged_run["path"], "select")
    assert 0 < len(stage_items) <= 25
    with RunLog(judged_run["path"], readonly=True) as log:  # the judge stage says what it covered
        det = log.query("SELECT details FROM scores WHERE run_id = ? AND judge = 'combined' LIMIT 1",
                        (RUN,))[0]["details"]
    assert '"covered"' in det
    panel = WhatIfPanel(judged_run["path"])
    qtbot.addWidget(panel)
    try:
        panel.set_run(RUN, judged_run["config"])
        qtbot.waitUntil(lambda: panel.arrays is not None and panel.arrays.n == 240, timeout=20_000)
        # the panel starts from the run's first select stage policy ...
        assert panel.policy()["weights"] == W and panel.policy()["threshold"] == 0.55
        assert panel.policy()["budget"] == 25
        kept = panel.arrays.sample_id[panel.last_idx].tolist()
        assert kept == [i["sample_id"] for i in stage_items]
        # ... and, moved to the second stage's policy, saves what that stage stored
        with qtbot.waitSignal(panel.recomputed, timeout=5000):
            panel.sliders["faithfulness"].set_value(0.0)
            panel.sliders["instruction_following"].set_value(0.0)
            panel.sliders["task"].set_value(1.0)
            panel.threshold.set_value(0.3)
            panel.budget.set_value(0)  # no limit
        with qtbot.waitSignal(panel.selection_saved, timeout=10_000):
            panel.save_selection("whatif-task")
        theirs, mine = _stored(judged_run["path"], "select_task"), _stored(judged_run["path"], "whatif-task")
        assert {i["sample_id"] for i in theirs} != {i["sample_id"] for i in stage_items}
        assert [(i["sample_id"], i["rank"]) for i in mine] == [(i["sample_id"], i["rank"]) for i in theirs]
        assert [i["combined"] for i in mine] == [i["combined"] for i in theirs]
    finally:
        panel.shutdown()
