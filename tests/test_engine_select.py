"""Selection logic (backend.scoring) on synthetic score rows, and load_candidates on a real run
log. Its speed on 100 000 samples is measured by benchmarks/bench_selection.py, not here."""
from __future__ import annotations

import random

import pytest

from backend.runlog import RunLog
from backend.scoring import CandidateArrays, combine, select, selection_stats
from tests.helpers import select_samples
from backend.stages.select import load_candidates

W = {"task": 0.3, "faithfulness": 0.4, "instruction_following": 0.3}


def _rows(n_prompts=30, n_cand=4, seed=0):
    rng = random.Random(seed)
    kinds = ["instruction", "qa_extractive", "summarization"]
    rows = []
    sid = 0
    for p in range(n_prompts):
        kind = kinds[p % 3]
        for c in range(n_cand):
            sid += 1
            rows.append({
                "sample_id": sid, "prompt_id": p, "kind": kind,
                "task": rng.random(),
                "faithfulness": rng.random() if kind != "instruction" else None,
                "instruction_following": rng.random() if kind == "instruction" else None,
            })
    return rows


def combined_score(row, weights):
    """The rule written out by hand, per row, as the reference."""
    pairs = [(weights.get(c, 0.0), row.get(c)) for c in ("task", "faithfulness", "instruction_following")]
    pairs = [(w, v) for w, v in pairs if w > 0 and v is not None]
    return sum(w * v for w, v in pairs) / sum(w for w, _ in pairs) if pairs else None


def _kinds(rows):
    return {r["sample_id"]: r["kind"] for r in rows}


def test_combined_matches_the_rule_and_judges_combine():
    rows = _rows()
    comb = CandidateArrays(rows).combined(W)
    for row, c in zip(rows, comb):
        cats = {k: row[k] for k in ("task", "faithfulness", "instruction_following")}
        assert c == pytest.approx(combined_score(row, W))
        assert combine(cats, W) == c  # the judge stage's number is the select stage's, bit for bit


def test_best_per_prompt_and_threshold():
    rows = _rows()
    sel = select_samples(rows, 0.0, W)
    assert len(sel) == 30  # one per prompt at threshold 0
    assert len({s["prompt_id"] for s in sel}) == 30
    by_prompt = {}
    for r in rows:
        by_prompt.setdefault(r["prompt_id"], []).append(combined_score(r, W))
    for s in sel:
        assert s["combined"] == pytest.approx(max(by_prompt[s["prompt_id"]]))
    # sorted best first, ranks 1..n
    assert [s["rank"] for s in sel] == list(range(1, len(sel) + 1))
    assert all(a["combined"] >= b["combined"] for a, b in zip(sel, sel[1:]))
    # stricter threshold -> fewer (never more), and everything kept clears it
    prev = len(sel)
    for t in (0.3, 0.5, 0.6, 0.7, 0.8, 0.95):
        cur = select_samples(rows, t, W)
        assert len(cur) <= prev
        assert all(s["combined"] >= t for s in cur)
        prev = len(cur)
    assert select_samples(rows, 1.0, W) == [] or all(s["combined"] == 1.0
                                                     for s in select_samples(rows, 1.0, W))


def test_quota_and_budget():
    rows = _rows()
    kind = _kinds(rows)
    sel = select_samples(rows, 0.0, W, per_kind_quota={"instruction": 3})
    kinds = [kind[s["sample_id"]] for s in sel]
    assert kinds.count("instruction") == 3
    assert kinds.count("qa_extractive") == 10 and kinds.count("summarization") == 10
    # the quota keeps the top instruction items
    all_instr = sorted((s["combined"] for s in select_samples(rows, 0.0, W)
                        if kind[s["sample_id"]] == "instruction"), reverse=True)
    assert sorted((s["combined"] for s in sel if kind[s["sample_id"]] == "instruction"),
                  reverse=True) == all_instr[:3]
    top = select_samples(rows, 0.0, W, budget=5)
    assert len(top) == 5
    assert [s["sample_id"] for s in top] == [s["sample_id"] for s in select_samples(rows, 0.0, W)][:5]
    both = select_samples(rows, 0.0, W, per_kind_quota={"summarization": 0}, budget=4)
    assert len(both) == 4 and all(kind[s["sample_id"]] != "summarization" for s in both)
    assert select_samples(rows, 0.0, W, budget=0) == []


def test_weights_change_ranking_and_missing_scores():
    rows = [
        {"sample_id": 1, "prompt_id": 1, "kind": "qa_extractive", "task": 1.0, "faithfulness": 0.0,
         "instruction_following": None},
        {"sample_id": 2, "prompt_id": 1, "kind": "qa_extractive", "task": 0.0, "faithfulness": 1.0,
         "instruction_following": None},
        {"sample_id": 3, "prompt_id": 2, "kind": "instruction", "task": None, "faithfulness": None,
         "instruction_following": None},  # nothing applies: never selected
    ]
    assert select_samples(rows, 0.0, {"task": 1.0, "faithfulness": 0.0})[0]["sample_id"] == 1
    assert select_samples(rows, 0.0, {"task": 0.0, "faithfulness": 1.0})[0]["sample_id"] == 2
    assert len(select_samples(rows, 0.0, W)) == 1
    # ties break on the lower sample id
    tie = [dict(rows[0], sample_id=9), dict(rows[0], sample_id=4)]
    assert select_samples(tie, 0.0, W)[0]["sample_id"] == 4
    with pytest.raises(ValueError, match="sum to zero"):
        select_samples(rows, 0.0, {"task": 0.0})
    with pytest.raises(ValueError, match="unknown"):
        select_samples(rows, 0.0, {"fluency": 1.0})


def test_selection_stats():
    rows = _rows()
    kind = _kinds(rows)
    arrays = CandidateArrays(rows)
    idx, comb = select(arrays, W, 0.6)
    sel = select_samples(rows, 0.6, W)
    st = selection_stats(arrays, idx, comb)
    assert set(k for k in st if k.startswith("accept_rate/")) == {
        "accept_rate/instruction", "accept_rate/qa_extractive", "accept_rate/summarization"}
    assert st["n_selected"] == len(sel)
    n_instr = sum(1 for s in sel if kind[s["sample_id"]] == "instruction")
    assert st["accept_rate/instruction"] == pytest.approx(n_instr / 10)
    assert sel and st["mean_combined/selected"] > st["mean_combined/rejected"]
    assert st["accept_rate"] == pytest.approx(len(sel) / 30) and st["n_candidates"] == len(rows)


def test_load_candidates_reads_category_scores(tmp_path):
    """One row per sample with its category scores; judge rows are ignored; the query uses the
    (sample_id, judge) index."""
    log = RunLog(tmp_path / "runlog.db")
    n_prompts, n_cand = 500, 4
    rng = random.Random(1)
    kinds = ["instruction", "qa_extractive", "qa_abstractive", "summarization"]
    with log.transaction() as conn:
        conn.executemany(
            "INSERT INTO prompts (id, run_id, stage_idx, key, kind, prompt) VALUES (?,?,?,?,?,?)",
            [(p + 1, "r", 1, f"k{p}", kinds[p % 4], "q") for p in range(n_prompts)])
        conn.executemany(
            "INSERT INTO samples (id, run_id, stage_idx, prompt_id, cand_idx, decoding, text, n_tokens)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [(p * n_cand + c + 1, "r", 1, p + 1, c, "t1.0", "x", 10)
             for p in range(n_prompts) for c in range(n_cand)])
        score_rows = []
        for sid in range(1, n_prompts * n_cand + 1):
            kind = kinds[((sid - 1) // n_cand) % 4]
            t = rng.random()
            other = rng.random()
            score_rows.append((sid, "rouge_l", "task", t))  # a judge row: ignored by the query
            score_rows.append((sid, "cat:task", "task", t))
            score_rows.append((sid, "cat:instruction_following" if kind == "instruction"
                               else "cat:faithfulness",
                               "instruction_following" if kind == "instruction" else "faithfulness",
                               other))
            score_rows.append((sid, "combined", "combined", (t + other) / 2))
        conn.executemany("INSERT INTO scores (run_id, sample_id, judge, category, value) "
                         "VALUES ('r',?,?,?,?)", score_rows)
    rows = load_candidates(log, "r", 1)
    sel = select_samples(rows, 0.5, W, per_kind_quota={"instruction": 50}, budget=300)
    assert len(rows) == n_prompts * n_cand
    r0 = rows[0]
    assert r0["kind"] == "instruction" and r0["faithfulness"] is None
    assert r0["instruction_following"] is not None and r0["judged"] == 1
    assert len(sel) == 300
    assert [r["task"] for r in rows[:3]] == [v for sid, j, _c, v in score_rows[:12] if j == "cat:task"]
    # the query plan uses the (sample_id, judge) index, not a scan of scores per sample
    plan = " ".join(str(tuple(r)) for r in log.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM samples s LEFT JOIN scores sc ON sc.sample_id = s.id "
        "AND sc.judge IN ('cat:task') WHERE s.run_id='r' AND s.stage_idx=1"))
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan
    log.close()


def test_prompt_batches_keep_a_prompts_candidates_together():
    from backend.stages.judge import prompt_batches

    # stored one decoding at a time: every prompt's candidate 0, then every candidate 1, ...
    pending = [{"sample_id": 1 + c * 5 + p, "key": f"p{p}"} for c in range(3) for p in range(5)]
    batches = prompt_batches(pending, 7)
    assert [[b["key"] for b in batch] for batch in batches] == [
        ["p0"] * 3 + ["p1"] * 3, ["p2"] * 3 + ["p3"] * 3, ["p4"] * 3]
    assert sorted(b["sample_id"] for batch in batches for b in batch) == list(range(1, 16))
    # a prompt with more candidates than the batch size gets a batch of its own
    assert [len(b) for b in prompt_batches(pending, 2)] == [3, 3, 3, 3, 3]
    assert prompt_batches([], 8) == []
