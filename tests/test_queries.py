"""backend.queries on a small real run log written through RunLog: every read the GUI, the CLI and
the stages make, checked against what was written."""
import pytest

from backend import queries as q
from backend.records import Record
from backend.runlog import RunLog

RUN = "r1"


@pytest.fixture
def log(tmp_path):
    """Run r1: stage 0 samples (3 prompts x 2 candidates, prompt c unjudged), selection "sel"
    keeping candidate 1 of a and candidate 0 of b; stage 1 an evaluation of checkpoints base and mtl."""
    log = RunLog(tmp_path / "runlog.db")
    log.create_run(RUN, name="demo", preset="reset_demo", config_toml="", run_dir=str(tmp_path))
    log.stage_start(RUN, 0, "sample", "sample")
    log.stage_start(RUN, 1, "evaluate", "evaluate")
    recs = [Record(id="a", kind="qa_extractive", prompt="what is 50% of x_y?", source="squad"),
            Record(id="b", kind="instruction", prompt="write a poem", source="alpaca"),
            Record(id="c", kind="instruction", prompt="list three things", source="alpaca")]
    pid = log.add_prompts(RUN, 0, recs)
    log.add_samples([{"run_id": RUN, "stage_idx": 0, "prompt_id": pid[r.id], "cand_idx": c,
                      "decoding": "t0.7", "text": f"{r.id}{c}", "n_tokens": 5 + c,
                      "params": {"temperature": 0.7}} for r in recs for c in (0, 1)])
    sid = {(r["prompt_id"], r["cand_idx"]): r["id"] for r in log.read_since("samples", 0)}
    combined = {("a", 0): 0.3, ("a", 1): 0.9, ("b", 0): 0.6, ("b", 1): 0.2}
    log.add_scores([row for (k, c), v in combined.items() for row in (
        {"run_id": RUN, "sample_id": sid[(pid[k], c)], "judge": "combined", "value": v},
        {"run_id": RUN, "sample_id": sid[(pid[k], c)], "judge": "cat:task", "category": "task",
         "value": v / 2, "details": {"why": "test"}})])
    log.add_selection(RUN, 0, "sel", {"threshold": 0.5}, [
        {"sample_id": sid[(pid["a"], 1)], "prompt_id": pid["a"], "combined": 0.9, "rank": 1},
        {"sample_id": sid[(pid["b"], 0)], "prompt_id": pid["b"], "combined": 0.6, "rank": 2}])
    for tag in ("base", "mtl"):
        epid = log.add_prompts(RUN, 1, [Record(id=f"{tag}|a", kind="qa_extractive", prompt="q",
                                               source="squad")])
        log.add_samples([{"run_id": RUN, "stage_idx": 1, "prompt_id": epid[f"{tag}|a"], "cand_idx": 0,
                          "decoding": "greedy", "text": tag, "n_tokens": 3}])
    log.add_evals([{"run_id": RUN, "stage_idx": 1, "checkpoint_id": ck, "checkpoint_tag": tag,
                    "dataset": ds, "n": 1, "faithfulness": 0.5}
                   for ck, tag in ((7, "mtl"), (None, "base")) for ds in ("_all", "squad")])
    log.sid, log.pid = sid, pid
    yield log
    log.close()


def test_table_signature_changes_with_any_row(log):
    before = q.table_signature(log, "stages")
    assert before == q.table_signature(log, "stages")
    log.stage_progress(RUN, 0, 3)
    assert q.table_signature(log, "stages") != before
    assert [(s["run_id"], s["idx"]) for s in q.all_stages(log)] == [(RUN, 0), (RUN, 1)]
    with pytest.raises(ValueError):
        q.table_signature(log, "samples; DROP TABLE runs")


def test_selections_and_selected_samples(log):
    assert [s["name"] for s in q.selections(log, RUN)] == ["sel"]
    sel = q.selection(log, RUN, "sel")
    assert sel["n_selected"] == 2 and q.selection(log, RUN, "nope") is None
    rows = q.selected_samples(log, sel["id"])
    assert [(r["key"], r["text"], r["rank"]) for r in rows] == [("a", "a1", 1), ("b", "b0", 2)]
    assert rows[0]["source"] == "squad" and rows[0]["combined"] == 0.9
    assert q.selection_kinds(log, sel["id"]) == {"instruction": 1, "qa_extractive": 1}


def test_metric_values_by_prefix(log):
    log.log_metrics(RUN, 0, 0, {"accept_rate/qa_extractive": 0.5, "accept_rate": 0.4, "acceptXrate/a": 1})
    log.log_metrics(RUN, 0, 1, {"accept_rate/qa_extractive": 0.75})
    assert q.metric_values(log, RUN, 0, "accept_rate/") == {"accept_rate/qa_extractive": 0.75}
    assert q.metric_values(log, RUN, 1, "accept_rate/") == {}


def test_stage_reads_for_resume_judge_and_select(log):
    assert q.sample_keys(log, RUN, 0) == {(log.pid[k], c) for k in "abc" for c in (0, 1)}
    assert q.sample_totals(log, RUN, 0) == (6, 3 * (5 + 6)) and q.sample_totals(log, RUN, 9) == (0, 0)
    assert [(u["key"], u["text"]) for u in q.unjudged_samples(log, RUN, 0)] == [("c", "c0"), ("c", "c1")]
    cands = q.candidates(log, RUN, 0)
    assert len(cands) == 6 and [c["judged"] for c in cands] == [1, 1, 1, 1, 0, 0]
    a1 = cands[1]
    assert (a1["prompt_key"], a1["cand_idx"], a1["task"], a1["stored_combined"]) == ("a", 1, 0.45, 0.9)
    assert a1["faithfulness"] is None
    items = q.eval_items(log, RUN, 1, "mtl")
    assert [(i["key"], i["dataset"], i["n_tokens"]) for i in items] == [("mtl|a", "squad", 3)]
    assert q.eval_items(log, RUN, 1, "mt") == []  # the tag is matched whole, with its "|"


def test_sample_stages_leave_out_evaluations(log):
    assert q.sample_stages(log, RUN) == [q.SampleStage(0, 6, "sample")]
    assert q.sample_stages(log, "other") == []


def test_score_values_with_and_without_a_selection(log):
    plain = q.score_values(log, RUN, "combined", None)
    assert sorted(r["value"] for r in plain) == [0.2, 0.3, 0.6, 0.9]
    assert not any(r["accepted"] for r in plain)
    sel = q.selection(log, RUN, "sel")["id"]
    flagged = {r["value"]: (r["kind"], r["accepted"]) for r in q.score_values(log, RUN, "combined", sel)}
    assert flagged == {0.3: ("qa_extractive", 0), 0.9: ("qa_extractive", 1),
                       0.6: ("instruction", 1), 0.2: ("instruction", 0)}


def test_evals_base_first_and_all_row_last(log):
    rows = q.evals(log, RUN)
    assert [(r["checkpoint_tag"], r["dataset"]) for r in rows] == [
        ("base", "squad"), ("base", "_all"), ("mtl", "squad"), ("mtl", "_all")]
    assert rows[0]["run_name"] == "demo" and len(q.evals(log)) == 4 and q.evals(log, "x") == []


def test_prompt_pages_filters_and_counts(log):
    sel = q.selection(log, RUN, "sel")["id"]
    flt = q.PromptFilter(run_id=RUN, stage_idx=0, selection_id=sel)
    page = q.fetch_prompt_page(log, flt, limit=2)
    assert [(r["key"], r["n"], r["best"], r["n_acc"]) for r in page] == [("a", 2, 0.9, 1), ("b", 2, 0.6, 1)]
    rest = q.fetch_prompt_page(log, flt, after_id=page[-1]["id"])
    assert [(r["key"], r["best"], r["n_acc"]) for r in rest] == [("c", None, 0)]
    assert q.count_prompts(log, flt) == 3

    def keys(**kw):
        f = q.PromptFilter(run_id=RUN, stage_idx=0, **kw)
        got = [r["key"] for r in q.fetch_prompt_page(log, f)]
        assert q.count_prompts(log, f) == len(got)
        return got

    assert keys(selection_id=sel, accepted=False) == ["c"]
    assert keys(selection_id=sel, accepted=True) == ["a", "b"]
    assert keys(kind="instruction") == ["b", "c"]
    assert keys(min_score=0.5, max_score=0.8) == ["b"]
    assert keys(text="50% of x_y") == ["a"] and keys(text="5_%") == []  # wildcards are literal
    assert q.fetch_prompt_page(log, q.PromptFilter(run_id=RUN, stage_idx=0))[0]["n_acc"] is None
    assert q.fetch_prompt_page(log, q.PromptFilter()) == [] and q.count_prompts(log, q.PromptFilter()) == 0
    evalf = q.PromptFilter(run_id=RUN, stage_idx=1, key_prefix="mtl")
    assert [r["key"] for r in q.fetch_prompt_page(log, evalf)] == ["mtl|a"]


def test_candidates_of_a_prompt_accepted_first(log):
    sel = q.selection(log, RUN, "sel")["id"]
    prompt, cands = q.fetch_candidates(log, log.pid["a"], sel)
    assert prompt["key"] == "a"
    assert [(c["text"], c["accepted"], c["rank"], c["combined"]) for c in cands] == [
        ("a1", True, 1, 0.9), ("a0", False, None, 0.3)]
    assert cands[0]["params"] == {"temperature": 0.7}
    assert cands[0]["scores"]["cat:task"][:2] == (0.45, "task")
    _, unsel = q.fetch_candidates(log, log.pid["b"], None)
    assert [c["text"] for c in unsel] == ["b0", "b1"] and not any(c["accepted"] for c in unsel)
    assert q.fetch_candidates(log, 10_000, sel) == (None, [])


def test_prompt_stages_one_choice_per_evaluated_checkpoint(log):
    got = [(c["label"], c["stage_idx"], c["key_prefix"]) for c in q.prompt_stages(log, RUN)]
    assert got == [("sampling · sample", 0, None), ("evaluation · base", 1, "base"),
                   ("evaluation · mtl", 1, "mtl")]


def test_page_query_walks_the_rowid_not_the_whole_stage(log):
    """The paged prompt query must stop after `limit` matches: the plan scans prompts by rowid."""
    where, args = q.PromptFilter(run_id=RUN, stage_idx=0, kind="instruction").where(paging=True)
    plan = " ".join(r[3] for r in log.conn.execute(
        f"EXPLAIN QUERY PLAN SELECT p.id FROM prompts p WHERE {where} AND p.id > ? ORDER BY p.id "
        f"LIMIT 5", (*args, 0)))
    assert "INTEGER PRIMARY KEY" in plan and "TEMP B-TREE" not in plan
