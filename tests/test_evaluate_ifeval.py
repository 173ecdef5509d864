"""The evaluate stage's details carry IFEval's own four accuracies (prompt- and instruction-level,
strict and loose), computed from what the real ifeval judge stored for fixed responses."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from backend.eval_details import EvalDetails
from backend.judges import build_judges
from backend.records import Record
from backend.runlog import RunLog
from backend.stages.evaluate import eval_rows
from backend.stages.judge import score_rows

RUN, IDX, TAG = "r1", 3, "mtl"
LOWER, NO_COMMA = "change_case:english_lowercase", "punctuation:no_comma"
# (data set, instruction ids, fixed response)
ITEMS = [
    # a comma only on the first line: strict fails, loose passes (loose also tries the response
    # without its first line)
    ("ifeval", [NO_COMMA], "Sure, here you go.\nthe river runs east"),
    ("ifeval", [LOWER, NO_COMMA], "all lower case words here"),      # both pass, both ways
    ("ifeval", [LOWER, NO_COMMA], "Upper, Case"),                    # both fail, both ways
    ("alpaca", [], "A free-form answer, unchecked."),                # no IFEval checks
]


@pytest.fixture()
def ctx(tmp_path):
    log = RunLog(tmp_path / "runs.db")
    log.create_run(RUN, name="t", preset="p", config_toml="", run_dir=str(tmp_path))
    yield SimpleNamespace(log=log, run_id=RUN)
    log.close()


def test_eval_details_report_ifeval_strict_and_loose(ctx):
    recs = [Record(id=f"{TAG}|{ds}:eval:{j}", kind="instruction", prompt="Write it.",
                   reference="ref", source=ds, instruction_id_list=ids, kwargs=[{} for _ in ids])
            for j, (ds, ids, _) in enumerate(ITEMS)]
    key_to_id = ctx.log.add_prompts(RUN, IDX, recs)
    ctx.log.add_samples([{"run_id": RUN, "stage_idx": IDX, "prompt_id": key_to_id[r.id],
                          "cand_idx": 0, "decoding": "greedy", "params": json.dumps({}), "seed": 0,
                          "text": text, "n_tokens": 5, "finish_reason": "stop"}
                         for r, (_, _, text) in zip(recs, ITEMS)])
    sid = {row["key"]: row["id"] for row in ctx.log.query(
        "SELECT p.key, s.id FROM samples s JOIN prompts p ON p.id = s.prompt_id WHERE s.run_id=?",
        (RUN,))}
    judges = build_judges(["ifeval", "rouge_l"], {})
    ctx.log.add_scores(score_rows(RUN, [sid[r.id] for r in recs], recs, [t for *_, t in ITEMS],
                                  judges, {"task": 0.5, "instruction_following": 0.5},
                                  {"judge": None, "selection": "none"}))

    rows = eval_rows(ctx, IDX, TAG, None, None)
    dets = {r["dataset"]: EvalDetails.from_row(r) for r in rows}
    expected = {"prompt_strict": 1 / 3, "prompt_loose": 2 / 3,   # prompts with every check passed
                "instruction_strict": 2 / 5, "instruction_loose": 3 / 5,  # checks pooled
                "n_prompts": 3, "n_instructions": 5}
    for name in ("ifeval", "_all"):
        assert dets[name].ifeval == pytest.approx(expected), name
    assert dets["alpaca"].ifeval == {}  # nothing IFEval could check there
    # the stored JSON reads back the same (the contract's reader)
    again = EvalDetails.from_json(json.loads(rows[-1]["details"]))
    assert again.ifeval == pytest.approx(expected)
    # the IF mean is IFEval's instruction-level strict accuracy per prompt, averaged
    assert dets["ifeval"].means["instruction_following"] == pytest.approx((0 + 1 + 0) / 3)


def test_samples_tab_reason_reads_the_ifeval_checks():
    from reset_gui.views import judge_why

    (judge,) = build_judges(["ifeval"], {})
    rec = Record(id="x", kind="instruction", prompt="Write it.", reference="ref", source="ifeval",
                 instruction_id_list=[LOWER, NO_COMMA, "no:such_check"], kwargs=[{}, {}, {}])
    passed_one, failed_both = judge.score_batch([rec, rec], ["upper case, here", "Upper, Case"])
    assert passed_one.value == 0.5
    # the Samples tab's reason agrees with the score the judge stored
    assert (judge_why("ifeval", passed_one.value, passed_one.details)
            == f"1/2 checks passed: failed {NO_COMMA}; 1 not checkable")
    assert judge_why("ifeval", 0.0, failed_both.details).startswith("0/2 checks passed: failed")
