"""The evals details contract: the evaluate stage's writer against a real run log, the reader for
rows of every version, and the GUI's length buckets read through it."""
from __future__ import annotations

import json
import random
from types import SimpleNamespace

import pytest

from backend.eval_details import EvalDetails, Interval, ItemScores, LengthBucket
from backend.records import Record
from backend.runlog import RunLog
from backend.stages.evaluate import eval_rows

RUN = "r1"
SETS = (("squad", "qa_extractive"), ("news", "summarization"), ("alpaca", "instruction"))


def _fill(log: RunLog, tag: str, rng: random.Random, level: float, n: int = 10) -> dict:
    """Eval generations + category scores of one checkpoint, as evaluate/judge store them."""
    recs = [Record(id=f"{tag}|{ds}:eval:{j}", kind=kind, prompt="p", context="c" if kind != "instruction"
                   else None, reference="r", source=ds) for ds, kind in SETS for j in range(n)]
    ids = log.add_prompts(RUN, 4, recs)
    log.add_samples([{"run_id": RUN, "stage_idx": 4, "prompt_id": ids[r.id], "cand_idx": 0,
                      "decoding": "greedy", "params": json.dumps({"ref_tokens": 20}), "seed": 0,
                      "text": "t", "n_tokens": rng.choice([10, 20, 40]),
                      "finish_reason": rng.choice(["stop", "length"])} for r in recs])
    sid = {row["key"]: row["id"] for row in log.query(
        "SELECT p.key, s.id FROM samples s JOIN prompts p ON p.id = s.prompt_id WHERE s.run_id=?", (RUN,))}
    truth: dict = {}
    scores = []
    for r in recs:
        cats = {"task": rng.random()}
        if r.kind == "instruction":
            cats["instruction_following"] = min(1.0, max(0.0, level + rng.gauss(0, 0.2)))
        else:
            cats["faithfulness"] = min(1.0, max(0.0, level + rng.gauss(0, 0.2)))
        truth[r.id.split("|", 1)[1]] = cats
        for c, v in cats.items():
            scores.append({"run_id": RUN, "sample_id": sid[r.id], "judge": f"cat:{c}", "category": c,
                           "value": v})
    log.add_scores(scores)
    return truth


@pytest.fixture()
def ctx(tmp_path):
    log = RunLog(tmp_path / "runs.db")
    log.create_run(RUN, name="t", preset="p", config_toml="", run_dir=str(tmp_path))
    yield SimpleNamespace(log=log, run_id=RUN)
    log.close()


def test_eval_rows_write_the_contract(ctx):
    truth = _fill(ctx.log, "mtl", random.Random(0), 0.6)
    rows = eval_rows(ctx, 4, "mtl", 7, "faith_lexical")
    assert [r["dataset"] for r in rows] == ["alpaca", "news", "squad", "_all"]
    dets = {r["dataset"]: EvalDetails.from_row(r) for r in rows}
    for ds, kind in SETS:
        d = dets[ds]
        assert d.version == 1 and d.kind == kind and len(d.items) == 10
        assert all(k.startswith(f"{ds}:eval:") for k in d.items)  # keyed without the checkpoint tag
        cat = "instruction_following" if kind == "instruction" else "faithfulness"
        vals = [truth[k][cat] for k in d.items]
        assert d.means[cat] == pytest.approx(sum(vals) / 10)
        iv = d.intervals[cat]
        assert iv.lo < d.means[cat] < iv.hi and iv.level == 0.95
        assert d.n["task_score"] == 10 and d.intervals["task_score"].contains(d.means["task_score"])
    al = dets["_all"]
    assert len(al.items) == 30 and set(al.datasets) == {"squad", "news", "alpaca"}
    # the _all means are the macro means the old writer computed, and equal the row's columns
    assert al.means["faithfulness"] == pytest.approx(
        (dets["squad"].means["faithfulness"] + dets["news"].means["faithfulness"]) / 2)
    assert al.means["instruction_following"] == pytest.approx(dets["alpaca"].means["instruction_following"])
    assert al.means["task_score"] == pytest.approx(sum(dets[d].means["task_score"] for d, _ in SETS) / 3)
    assert rows[-1]["faithfulness"] == al.means["faithfulness"]
    for c in ("faithfulness", "instruction_following", "task_score"):
        assert al.intervals[c].contains(al.means[c])
    # the stratified bootstrap agrees with the normal approximation of a macro mean's error
    import numpy as np

    sets = [np.array([truth[k]["faithfulness"] for k in dets[ds].items]) for ds in ("squad", "news")]
    se = 0.5 * np.sqrt(sum(x.var() / x.size for x in sets))
    assert al.intervals["faithfulness"].half_width == pytest.approx(1.96 * se, rel=0.15)
    buckets = al.length_buckets
    assert [b.label for b in buckets] == ["shorter", "similar", "longer_1.5x"]
    assert sum(b.n for b in buckets) == 20  # grounded items only (faithfulness scored)
    assert al.bootstrap["resamples"] == 2000 and 0 <= al.truncated_rate <= 1


def test_round_trip_and_old_rows():
    d = EvalDetails(kind="_all", means={"faithfulness": 0.5}, n={"faithfulness": 3},
                    intervals={"faithfulness": Interval(0.4, 0.6)},
                    items={"a:1": ItemScores("a", "qa_extractive", faithfulness=0.5, n_tokens=3)},
                    length_buckets=[LengthBucket("shorter", 3, 0.5, Interval(0.3, 0.7))])
    back = EvalDetails.from_json(d.to_json())
    assert back == d
    # version 0 (before the contract): means from the row's columns, buckets from the old dict
    old = {"faithfulness": 0.7, "instruction_following": None, "task_score": 0.3, "category": "_all",
           "details": json.dumps({"n_faithfulness": 4, "n_task": 6, "combined": 0.4, "datasets": {"x": {}},
                                  "faithfulness_by_length": {"shorter": {"n": 4, "faithfulness": 0.7},
                                                             "similar": {"n": 0, "faithfulness": None}}})}
    v0 = EvalDetails.from_row(old)
    assert v0.version == 0 and v0.kind == "_all" and v0.items == {} and v0.intervals == {}
    assert v0.means == {"combined": 0.4, "faithfulness": 0.7, "task_score": 0.3}
    assert v0.n == {"faithfulness": 4, "task_score": 6}
    assert [(b.label, b.faithfulness) for b in v0.filled_buckets()] == [("shorter", 0.7)]
    assert EvalDetails.from_json("not json").version == 0 and EvalDetails.from_json(None).items == {}


def test_gui_reads_length_buckets_through_the_contract(ctx):
    from reset_gui.views import length_buckets

    _fill(ctx.log, "mtl", random.Random(1), 0.5)
    rows = eval_rows(ctx, 4, "mtl", 7, "faith_lexical")
    got = length_buckets(rows[-1]["details"])
    det = EvalDetails.from_json(rows[-1]["details"])
    assert got == [(b.label, b.faithfulness, b.n) for b in det.length_buckets if b.faithfulness is not None]
    assert sum(n for _l, _v, n in got) == 20
