"""Judge coverage is said everywhere, never silent: where no instruction-following judge covers a
kind (free-form instructions without an LLM judge), the combined score records what it lacks, the
judge and select stages log a warning naming the kinds, the Setup tab's judges box says which data
sets go unscored, and the trade-off plot's x axis and tooltip give n and the unscored sets."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from backend import presets, scoring  # noqa: E402
from backend.config import RunConfig, config_from_dict  # noqa: E402
from backend.records import Record  # noqa: E402
from backend.runlog import RunLog  # noqa: E402
from backend.stages.context import StageContext  # noqa: E402
from backend.stages.judge import if_coverage_note  # noqa: E402

RUN = "20250101-000000-coverage-abcd"
W = {"task": 0.3, "faithfulness": 0.4, "instruction_following": 0.3}


# ---- the rule --------------------------------------------------------------------------------
def test_uncovered_names_weighted_categories_meant_for_the_kind():
    # free-form instruction: task only, instruction following missing; faithfulness is not
    # meant for a prompt without context, so it is not a gap
    assert scoring.uncovered({"task": 0.5}, W, "instruction") == ["instruction_following"]
    assert scoring.uncovered({"task": 0.5, "instruction_following": 1.0}, W, "instruction") == []
    assert scoring.uncovered({"task": 0.5}, W, "qa_extractive") == ["faithfulness"]
    assert scoring.uncovered({"task": 0.5}, {**W, "instruction_following": 0.0}, "instruction") == []

    rows = ([{"sample_id": i, "prompt_id": i, "kind": "instruction", "task": 0.5,
              "instruction_following": 1.0 if i < 4 else None} for i in range(10)]
            + [{"sample_id": 10 + i, "prompt_id": 10 + i, "kind": "summarization", "task": 0.4,
                "faithfulness": 0.9} for i in range(5)])
    gaps = scoring.uncovered_by_kind(scoring.CandidateArrays(rows), W)
    assert gaps == {"instruction": {"instruction_following": [6, 10]}}
    msg = scoring.uncovered_message(gaps, W)
    assert "kind(s) instruction" in msg and "no instruction following score on 6 of 10" in msg
    assert "weight 0.3 dropped" in msg and "LLM judge" in msg
    assert scoring.uncovered_message({}, W) == ""


def test_coverage_label_gives_n_and_the_unscored_sets():
    items = ([("ifeval_instructions", "instruction", 1.0)] * 24
             + [("alpaca_instructions", "instruction", None)] * 23
             + [("squad_qa", "qa_extractive", None)] * 30)  # IF is not meant for grounded sets
    cov = scoring.coverage(items, "instruction_following")
    assert (cov.n, cov.total, cov.complete) == (24, 47, False)
    assert cov.label() == ("IF: n = 24 of 47 instruction prompts (ifeval_instructions); "
                           "unscored: alpaca_instructions (23)")
    full = scoring.coverage([("a", "instruction", 0.5)] * 3, "instruction_following")
    assert full.complete and full.label() == "IF: n = 3 instruction prompts, all scored"


def test_setup_note_from_the_draft_judges_and_mixture():
    base = presets.resolve_file(presets.preset_path("reset_quick"))
    note = if_coverage_note(base["judges"], base["data"])
    assert note.startswith("IF: IFEval only, ifeval_instructions (24 prompts)")
    assert "free-form instructions unscored: alpaca_instructions (24 prompts)" in note
    llm = {**base["judges"], "llm_endpoint": {"base_url": "http://127.0.0.1:9/v1"}}
    assert if_coverage_note(llm, base["data"]).startswith("IF: the LLM judge scores every prompt")
    zero = {**base["judges"], "weights": {**W, "instruction_following": 0.0}}
    assert "weight 0" in if_coverage_note(zero, base["data"])
    none = {**base["judges"], "instruction_following": []}
    assert if_coverage_note(none, base["data"]) == (
        "IF: no IF judge configured; instructions unscored: ifeval_instructions (24 "
        "prompts), alpaca_instructions (24 prompts).")
    alpaca_only = [d for d in base["data"] if d["name"] != "ifeval_instructions"]
    assert if_coverage_note(base["judges"], alpaca_only) == (
        "IF: free-form instructions unscored: alpaca_instructions (24 prompts).")


# ---- the judge and select stages on a real run log ---------------------------------------------
def _records() -> list[Record]:
    out = []
    for i in range(12):
        if i % 3 == 0:  # free-form (Alpaca kind): no IFEval constraints
            out.append(Record(id=f"a{i}", kind="instruction", source="alpaca",
                              prompt=f"Name a colour for door {i}.", reference="Blue."))
        elif i % 3 == 1:
            out.append(Record(id=f"f{i}", kind="instruction", source="ifeval",
                              prompt=f"Describe door {i} in under 12 words.", reference="A door.",
                              instruction_id_list=["length_constraints:number_words"],
                              kwargs=[{"relation": "less than", "num_words": 12}]))
        else:
            ctx = f"Door {i} is red. It was painted in {1900 + i}."
            out.append(Record(id=f"g{i}", kind="qa_extractive", source="squad", context=ctx,
                              prompt=f"What colour is door {i}?", reference="red"))
    return out


def _stages(tmp: Path, records: list[Record]):
    from backend.stages import stage_runner
    from backend.vocab import Status

    cfg = config_from_dict({
        "name": "coverage", "data": [{"name": "x", "source": str(tmp / "x.jsonl"), "format": "records"}],
        "judges": {"task": ["rouge_l"], "faithfulness": "faith_lexical",
                   "instruction_following": ["ifeval"], "weights": W},
        "stages": [{"type": "sample", "name": "sample", "source": "base"},
                   {"type": "judge", "name": "judge", "samples": "sample"},
                   {"type": "select", "name": "select", "samples": "sample", "threshold": 0.0}]})
    log = RunLog(tmp / "runlog.db")
    log.create_run(RUN, name="coverage", preset="custom", config_toml=cfg.to_toml(),
                   run_dir=str(tmp / "runs" / RUN))
    ids = log.add_prompts(RUN, 0, records)
    rng = random.Random(1)
    log.add_samples([{"run_id": RUN, "stage_idx": 0, "prompt_id": ids[r.id], "cand_idx": c,
                      "decoding": "t1.0", "params": {}, "seed": c,
                      "text": rng.choice(["Blue.", "The door is red.", "A red door it is."]),
                      "n_tokens": 4, "finish_reason": "stop"} for r in records for c in range(2)])
    ctx = StageContext(run_id=RUN, home=tmp, run_dir=tmp / "runs" / RUN, cfg=cfg, log=log)
    for idx in (1, 2):
        st = cfg.stages[idx]
        log.stage_start(RUN, idx, st.name, st.type)
        stage_runner(st.type)(ctx, idx, st)
        log.stage_end(RUN, idx, Status.SUCCEEDED)
    return log


def test_judge_and_select_stages_warn_about_an_unscored_category(tmp_path):
    log = _stages(tmp_path, _records())
    warnings = log.query("SELECT stage_idx, message, details FROM events WHERE run_id = ? AND "
                         "level = 'warning' AND message LIKE 'combined scores lack%'", (RUN,))
    assert [w["stage_idx"] for w in warnings] == [1, 2]  # the judge stage and the select stage
    for w in warnings:
        assert "kind(s) instruction:" in w["message"]
        assert "no instruction following score on 8 of 16" in w["message"]  # 4 free-form x 2
        assert json.loads(w["details"])["uncovered"] == {"instruction": {"instruction_following": [8, 16]}}
    # each combined score records what it lacks next to what it covered
    rows = log.query("SELECT p.key, sc.details FROM scores sc JOIN samples s ON s.id = sc.sample_id "
                     "JOIN prompts p ON p.id = s.prompt_id WHERE sc.judge = 'combined'")
    by_key = {r["key"]: json.loads(r["details"]) for r in rows}
    assert by_key["a0"]["uncovered"] == ["instruction_following"] and by_key["a0"]["covered"] == ["task"]
    assert by_key["f1"]["uncovered"] == [] and "instruction_following" in by_key["f1"]["covered"]
    assert by_key["g2"]["uncovered"] == []
    policy = json.loads(log.query("SELECT policy FROM selections WHERE run_id = ?", (RUN,))[0]["policy"])
    assert policy["uncovered"] == {"instruction": {"instruction_following": [8, 16]}}
    log.close()


def test_no_warning_when_every_kind_is_covered(tmp_path):
    log = _stages(tmp_path, [r for r in _records() if r.source != "alpaca"])
    assert not log.query("SELECT 1 FROM events WHERE run_id = ? AND level = 'warning' AND message "
                         "LIKE 'combined scores lack%'", (RUN,))
    policy = json.loads(log.query("SELECT policy FROM selections WHERE run_id = ?", (RUN,))[0]["policy"])
    assert "uncovered" not in policy
    log.close()


# ---- on screen -------------------------------------------------------------------------------
@pytest.fixture()
def shots(tmp_path):
    d = Path(os.environ["RESET_SHOTS"]) if os.environ.get("RESET_SHOTS") else tmp_path
    d.mkdir(parents=True, exist_ok=True)
    return d


def test_setup_judges_box_says_which_instructions_go_unscored(qtbot, tmp_path, shots):
    pytest.importorskip("pytestqt")
    from backend.launcher import Studio
    from reset_gui.setup.tab import SetupTab

    tab = SetupTab(Studio(tmp_path))
    qtbot.addWidget(tab)
    tab.resize(1300, 900)
    tab.show()
    tab.load_preset("reset_quick")
    label = tab.judges.coverage_label
    assert label.isVisible()
    assert "IFEval only, ifeval_instructions" in label.text()
    assert "free-form instructions unscored: alpaca_instructions" in label.text()
    assert "#b42318" in label.styleSheet()  # a gap shows in the warning colour
    assert tab.grab().save(str(shots / "setup_if_coverage.png"))
    tab.judges.llm_url_edit.setText("http://127.0.0.1:9/v1")  # an edit updates the note at once
    assert label.text().startswith("IF: the LLM judge scores every prompt")
    assert "#b42318" not in label.styleSheet()


def _all_row(run: str, tag: str, alpaca_scored: bool, eval_id: int) -> dict:
    from backend.stages.evaluate import summarize_all

    rng = random.Random(eval_id)
    items = []
    for ds, kind, n in (("ifeval_instructions", "instruction", 24), ("alpaca_instructions", "instruction", 23),
                        ("squad_qa", "qa_extractive", 20)):
        for i in range(n):
            grounded = kind != "instruction"
            if_score = None if grounded or (ds == "alpaca_instructions" and not alpaca_scored) \
                else float(rng.random() < 0.6)
            items.append({"key": f"{ds}:{i}", "dataset": ds, "kind": kind,
                          "faithfulness": rng.random() if grounded else None,
                          "instruction_following": if_score, "task": rng.random(),
                          "combined": rng.random(), "n_tokens": 20, "ref_tokens": 18,
                          "finish_reason": "stop"})
    det = summarize_all(items, {})
    return {"id": eval_id, "run_id": run, "checkpoint_tag": tag, "checkpoint_id": eval_id,
            "dataset": "_all", "faithfulness": det.means["faithfulness"],
            "instruction_following": det.means["instruction_following"],
            "task_score": det.means["task_score"], "mean_length": 20.0, "n": len(items),
            "faithfulness_judge": "faith_lexical", "details": det.to_json()}


def test_tradeoff_axis_and_tooltip_give_if_coverage(qtbot, shots):
    pytest.importorskip("pytestqt")
    from reset_gui.plots import PlotPanel, TradeoffPlot

    panel = PlotPanel("Trade-off")
    qtbot.addWidget(panel)
    panel.resize(900, 600)
    panel.show()
    plot = TradeoffPlot(panel)
    plot.add_rows([_all_row("run-a", "mtl", False, 1), _all_row("run-a", "reset", False, 2)])
    axis = panel.item.getAxis("bottom").labelText
    want = "IF: n = 24 of 47 instruction prompts (ifeval_instructions); unscored: alpaca_instructions (23)"
    assert axis == f"instruction following — {want}"
    p = plot.data.series("run-a")[0]
    assert plot._tip(p.x, p.y, p).endswith(want)
    assert panel.grab().save(str(shots / "tradeoff_if_coverage.png"))
    # a run whose judge covers every instruction prompt: the tooltip says so; two runs that
    # differ point to the tooltips; hiding the partial run restores the plain label
    plot.add_rows([_all_row("run-b", "mtl", True, 3)])
    q = plot.data.series("run-b")[0]
    assert plot._tip(q.x, q.y, q).endswith("IF: n = 47 instruction prompts, all scored")
    assert panel.item.getAxis("bottom").labelText.endswith(want)  # only run-a has a gap
    plot.set_visible_runs(["run-b"])
    assert panel.item.getAxis("bottom").labelText == "instruction following"
