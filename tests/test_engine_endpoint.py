"""Stages against a real local OpenAI-compatible HTTP server (no model needed): the sample stage
with the openai backend (stop, resume, no duplicates), and the judge stage with the LLM judge
configured through judges.llm_endpoint."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backend.config import (DatasetSpec, DecodingSpec, EndpointSpec, JudgeSpec, JudgeStage,
                            RunConfig, SampleStage, SelectStage)
from backend.runlog import RunLog
from backend.stages.context import StageContext, StopRequested

RUN = "run-endpoint"


class _Handler(BaseHTTPRequestHandler):
    calls: list = []
    auth: list = []

    def log_message(self, *a):
        pass

    def do_POST(self):  # noqa: N802
        payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        type(self).calls.append(payload)
        type(self).auth.append(self.headers.get("Authorization"))
        user = payload["messages"][-1]["content"]
        if "rate" in json.dumps(payload["messages"]).lower() and "seed" not in payload \
                and payload.get("max_tokens", 0) <= 16 and len(payload["messages"]) > 1:
            content = "Rating: 8"  # the LLM judge's request (system + user)
        else:
            content = f"reply to [{user[-20:]}] seed {payload.get('seed')}"
        body = json.dumps({"choices": [{"message": {"role": "assistant", "content": content},
                                        "finish_reason": "stop"}],
                           "usage": {"completion_tokens": 6}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def ctx(tmp_path, monkeypatch):
    monkeypatch.setenv("RESET_TEST_KEY", "sk-very-secret-123")
    _Handler.calls = []
    _Handler.auth = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/v1"
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
    srv.shutdown()
    srv.server_close()


def _samples(ctx):
    return ctx.log.query("SELECT * FROM samples WHERE run_id=? AND stage_idx=0 ORDER BY id", (RUN,))


def test_openai_sample_stage_stop_and_resume(ctx):
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
    assert len(_Handler.calls) == 24  # nothing asked twice
    for s in samples:
        if s["cand_idx"] == 0:
            assert s["text"].endswith("seed None") and s["decoding"] == "greedy"
        else:
            assert s["text"].endswith(f"seed {s['seed']}") and s["decoding"] == "hot"
        assert s["n_tokens"] == 6
        assert json.loads(s["params"])["backend"] == "openai"
    sample.run(ctx, 0, st)  # complete: no request, no row
    assert len(_Handler.calls) == 24 and len(_samples(ctx)) == 24


def test_judge_stage_with_llm_judge_endpoint(ctx):
    from backend.stages import judge, sample, select

    sample.run(ctx, 0, ctx.cfg.stages[0])
    n_sampling = len(_Handler.calls)
    judge.run(ctx, 1, ctx.cfg.stages[1])
    assert len(_Handler.calls) == n_sampling + 24  # one judge request per sample
    rows = ctx.log.query("SELECT * FROM scores WHERE run_id=? AND judge='llm_judge'", (RUN,))
    assert len(rows) == 24 and all(r["value"] == pytest.approx(7 / 9) for r in rows)
    assert all(r["category"] == "instruction_following" for r in rows)
    cat = ctx.log.query("SELECT * FROM scores WHERE run_id=? AND judge='cat:instruction_following'",
                        (RUN,))
    assert len(cat) == 24
    # the key was sent, and is nowhere in the run log (config, events, params, details)
    assert set(_Handler.auth) == {"Bearer sk-very-secret-123"}
    ctx.log.conn.execute("PRAGMA wal_checkpoint(FULL)")
    for f in ctx.log.path.parent.glob("runlog.db*"):
        assert b"sk-very-secret" not in f.read_bytes()
    select.run(ctx, 2, ctx.cfg.stages[2])
    items = ctx.log.query("SELECT * FROM selection_items")
    assert len(items) == 8  # one per prompt at threshold 0
    metrics = {m["name"]: m["value"] for m in ctx.log.query(
        "SELECT name, value FROM metrics WHERE run_id=? AND stage_idx=2", (RUN,))}
    assert metrics["accept_rate/qa_abstractive"] == 1.0 and metrics["accept_rate/instruction"] == 1.0
