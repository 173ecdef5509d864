"""Stages against a real local OpenAI-compatible HTTP server (no model needed): the sample stage
with the openai backend (stop, resume, no duplicates), and the judge stage with the LLM judge
configured through judges.llm_endpoint."""
from __future__ import annotations

import json

import pytest

from backend.config import (DatasetSpec, DecodingSpec, EndpointSpec, JudgeSpec, JudgeStage,
                            RunConfig, SampleStage, SelectStage)
from backend.runlog import RunLog
from backend.stages.context import StageContext, StopRequested
from tests.helpers import FakeEndpoint, Request, chat_completion

RUN = "run-endpoint"


def _answer(req: Request) -> dict:
    messages = req.payload["messages"]
    if "rate" in json.dumps(messages).lower() and "seed" not in req.payload \
            and req.payload.get("max_tokens", 0) <= 16 and len(messages) > 1:
        return chat_completion("Rating: 8", completion_tokens=6)  # the LLM judge (system + user)
    return chat_completion(f"reply to [{messages[-1]['content'][-20:]}] seed {req.payload.get('seed')}",
                           completion_tokens=6)


@pytest.fixture
def endpoint():
    with FakeEndpoint(_answer) as ep:
        yield ep


@pytest.fixture
def ctx(tmp_path, monkeypatch, endpoint):
    monkeypatch.setenv("RESET_TEST_KEY", "sk-very-secret-123")
    url = endpoint.url + "/v1"
    rows = [{"id": f"q{i}", "kind": "qa_abstractive", "prompt": f"Question {i}?",
             "context": f"Fact {i}: the sky is blue.", "reference": "blue"} for i in range(5)]
    rows += [{"id": f"i{i}", "kind": "instruction", "prompt": f"Do task {i}.",
              "context": None, "reference": "done"} for i in range(5)]
    src = tmp_path / "d.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    ep = EndpointSpec(base_url=url, model="m", api_key_env="RESET_TEST_KEY")
    cfg = RunConfig(
        seed=3, data=[DatasetSpec(name="d", source=str(src), format="records", eval_fraction=0.0)],
        judges=JudgeSpec(faithfulness="faith_lexical", instruction_following=[], llm_endpoint=ep),
        stages=[SampleStage(name="s", backend="openai", endpoint=ep, batch_size=4,
                            budget_per_kind={"qa_abstractive": 3},
                            decoding=[DecodingSpec(name="greedy"),
                                      DecodingSpec(name="hot", temperature=0.9, top_p=0.9, n=2)]),
                JudgeStage(name="j", samples="s", batch_size=5),
                SelectStage(name="sel", samples="s", threshold=0.0)])
    log = RunLog(tmp_path / "runlog.db")
    log.create_run(RUN, name="e", preset="custom", config_toml=cfg.to_toml(), run_dir=str(tmp_path))
    c = StageContext(run_id=RUN, home=tmp_path, run_dir=tmp_path / "run", cfg=cfg, log=log)
    yield c
    log.close()


def _samples(ctx):
    return ctx.log.query("SELECT * FROM samples WHERE run_id=? AND stage_idx=0 ORDER BY id", (RUN,))


def test_openai_sample_stage_stop_and_resume(ctx, endpoint):
    from backend.stages import sample

    st = ctx.cfg.stages[0]
    ctx.stop_event.set()  # stop requested: the first batch is written, then the stage stops
    with pytest.raises(StopRequested):
        sample.run(ctx, 0, st)
    first = _samples(ctx)
    assert len(first) == 4
    ctx.stop_event.clear()
    sample.run(ctx, 0, st)
    samples = _samples(ctx)
    # 3 grounded (budget) + 5 instruction prompts, x (1 greedy + 2 hot) candidates
    assert len(samples) == 8 * 3
    assert len({(s["prompt_id"], s["cand_idx"]) for s in samples}) == 24
    assert ctx.log.count("prompts", run_id=RUN, stage_idx=0) == 8
    assert len(endpoint.requests) == 24  # nothing asked twice
    for s in samples:
        if s["cand_idx"] == 0:
            assert s["text"].endswith("seed None") and s["decoding"] == "greedy"
        else:
            assert s["text"].endswith(f"seed {s['seed']}") and s["decoding"] == "hot"
        assert s["n_tokens"] == 6
        assert json.loads(s["params"])["backend"] == "openai"
    sample.run(ctx, 0, st)  # complete: no request, no row
    assert len(endpoint.requests) == 24 and len(_samples(ctx)) == 24


def test_judge_stage_with_llm_judge_endpoint(ctx, endpoint):
    from backend.stages import judge, sample, select

    sample.run(ctx, 0, ctx.cfg.stages[0])
    n_sampling = len(endpoint.requests)
    judge.run(ctx, 1, ctx.cfg.stages[1])
    assert len(endpoint.requests) == n_sampling + 24  # one judge request per sample
    rows = ctx.log.query("SELECT * FROM scores WHERE run_id=? AND judge='llm_judge'", (RUN,))
    assert len(rows) == 24 and all(r["value"] == pytest.approx(7 / 9) for r in rows)
    assert all(r["category"] == "instruction_following" for r in rows)
    cat = ctx.log.query("SELECT * FROM scores WHERE run_id=? AND judge='cat:instruction_following'",
                        (RUN,))
    assert len(cat) == 24
    # the key was sent, and is nowhere in the run log (config, events, params, details)
    assert {r.auth for r in endpoint.requests} == {"Bearer sk-very-secret-123"}
    ctx.log.conn.execute("PRAGMA wal_checkpoint(FULL)")
    for f in ctx.log.path.parent.glob("runlog.db*"):
        assert b"sk-very-secret" not in f.read_bytes()
    select.run(ctx, 2, ctx.cfg.stages[2])
    items = ctx.log.query("SELECT * FROM selection_items")
    assert len(items) == 8  # one per prompt at threshold 0
    metrics = {m["name"]: m["value"] for m in ctx.log.query(
        "SELECT name, value FROM metrics WHERE run_id=? AND stage_idx=2", (RUN,))}
    assert metrics["accept_rate/qa_abstractive"] == 1.0 and metrics["accept_rate/instruction"] == 1.0
