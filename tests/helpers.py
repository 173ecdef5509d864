"""Shared helpers for tests: real runs on the embedded model, and a local OpenAI-compatible
endpoint."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

from backend.config import load_preset
from backend.runlog import RunLog


def tiny_config(name: str = "tiny", *, max_steps: int = 4, save_steps: int = 2, preset: str = "mtl_demo",
                budget: int = 4):
    """The MTL demo shrunk to a few steps on short examples (seconds per step on 2 cores)."""
    cfg = load_preset(preset)
    cfg.name = name
    for d in cfg.data:
        d.budget = budget
    train = cfg.stages[0]
    train.max_steps = max_steps
    train.save_steps = save_steps
    train.eval_steps = 2
    train.batch_size = 2
    train.max_length = 192
    train.probe_size = 2
    train.probe_max_new_tokens = 8
    train.probe_budget = 1.0  # probes on their steps, whatever the machine's speed
    cfg.stages = [train]
    return cfg


def wait_for(predicate, timeout: float = 300.0, poll: float = 0.5, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def metric_steps(log: RunLog, run_id: str, name: str = "loss") -> list[int]:
    return [r["step"] for r in log.query(
        "SELECT step FROM metrics WHERE run_id=? AND name=? ORDER BY step", (run_id, name))]


def tiny_reset_config(name: str = "tiny-reset", seed: int = 7):
    """Every ReSet stage on the embedded model, shrunk to run in about a minute on 2 cores."""
    cfg = load_preset("reset_demo")
    cfg.name, cfg.seed = name, seed
    for d in cfg.data:
        d.budget = 3
    for st in cfg.stages:
        if st.type == "train":
            st.max_steps, st.save_steps, st.eval_steps = 3, 2, 2
            st.batch_size, st.max_length = 2, 192
            st.probe_size, st.probe_max_new_tokens, st.probe_budget = 2, 8, 1.0
        elif st.type == "sample":
            st.budget_per_kind = {"qa_extractive": 2, "qa_abstractive": 1, "summarization": 1,
                                  "instruction": 2}
            st.max_new_tokens, st.batch_size = 12, 4
            st.decoding = st.decoding[:2]
        elif st.type == "select":
            st.threshold = 0.2
        elif st.type == "evaluate":
            st.eval_size, st.max_new_tokens, st.batch_size = 1, 12, 5
    return cfg


# columns that depend on time, ids or paths, not on what the run computed
_VOLATILE = {"id", "time", "created_at", "path", "run_id", "sample_id", "prompt_id", "selection_id",
             "checkpoint_id"}
_TIME_METRICS = {"tokens_per_s", "samples_per_s", "judged_per_s", "train_runtime"}


def run_content(log: RunLog, run_id: str) -> dict[str, list]:
    """A run's rows, keyed by content, for comparing an interrupted run with a clean one."""
    def rows(sql):
        return [tuple(v for k, v in r.items() if k not in _VOLATILE)
                for r in log.query(sql, (run_id,))]

    return {
        "metrics": [(s, st, n, round(v, 3)) for (st, s, n, v) in rows(
            "SELECT stage_idx, step, name, value FROM metrics WHERE run_id=? ORDER BY stage_idx, step, name")
            if n not in _TIME_METRICS],
        "checkpoints": rows("SELECT stage_idx, step, tag, kind, base FROM checkpoints WHERE run_id=? "
                            "ORDER BY tag"),
        "prompts": rows("SELECT stage_idx, key, kind, prompt, context, reference FROM prompts "
                        "WHERE run_id=? ORDER BY stage_idx, key"),
        "samples": rows("SELECT p.key, s.stage_idx, s.cand_idx, s.decoding, s.seed, s.text, s.n_tokens "
                        "FROM samples s JOIN prompts p ON p.id=s.prompt_id WHERE s.run_id=? "
                        "ORDER BY s.stage_idx, p.key, s.cand_idx"),
        "scores": [r[:4] + (None if r[4] is None else round(r[4], 6),) for r in rows(
            "SELECT p.key, s.cand_idx, sc.judge, sc.category, sc.value FROM scores sc "
            "JOIN samples s ON s.id=sc.sample_id JOIN prompts p ON p.id=s.prompt_id "
            "WHERE sc.run_id=? ORDER BY p.key, s.stage_idx, s.cand_idx, sc.judge")],
        "selection": rows("SELECT sel.name, p.key, s.cand_idx, it.rank FROM selection_items it "
                          "JOIN selections sel ON sel.id=it.selection_id JOIN samples s ON s.id=it.sample_id "
                          "JOIN prompts p ON p.id=s.prompt_id WHERE sel.run_id=? ORDER BY sel.name, it.rank"),
        "evals": [tuple(round(v, 6) if isinstance(v, float) else v for v in r) for r in rows(
            "SELECT checkpoint_tag, dataset, category, n, faithfulness, instruction_following, "
            "task_score, mean_length FROM evals WHERE run_id=? ORDER BY checkpoint_tag, dataset")],
    }


def tiny_eval_config(name: str = "tiny-eval"):
    """A tiny MTL run that also evaluates its checkpoint: one trade-off point, quickly."""
    cfg = load_preset("mtl_demo")
    tiny = tiny_config(name, max_steps=2, save_steps=2)
    ev = cfg.stages[-1]
    ev.eval_size, ev.max_new_tokens, ev.batch_size = 1, 8, 5
    tiny.stages = [tiny.stages[0], ev]
    return tiny


# ---- a real local OpenAI-compatible endpoint ----------------------------------------------------
@dataclass
class Request:
    path: str
    payload: dict[str, Any]
    auth: str | None  # the Authorization header as sent


def chat_completion(content: str, finish_reason: str = "stop", completion_tokens: int = 1) -> dict:
    """A minimal /chat/completions reply body."""
    return {"id": "x", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": completion_tokens,
                      "total_tokens": 1 + completion_tokens}}


Reply = dict | tuple[int, Any, str]  # a JSON body (HTTP 200), or (status, body, content type)


class FakeEndpoint:
    """An HTTP server on 127.0.0.1 (a thread) that speaks the OpenAI API as ``answer`` says.

    ``answer(request)`` returns the reply for a POST. Some paths misbehave on purpose first:
    ``/slow/...`` waits ``slow_s`` and then answers; ``/garbage/...`` replies HTML;
    ``/fail/...`` HTTP 500 whose message echoes the Authorization header (so a test can check
    the client redacts it); ``/nochoices/...`` a completion without choices; ``/missing/...`` 404.
    Every request is kept in ``requests``. Use as a context manager.
    """

    def __init__(self, answer: Callable[[Request], Reply] = lambda r: chat_completion("ok"),
                 slow_s: float = 3.0):
        self.answer, self.slow_s = answer, slow_s
        self.requests: list[Request] = []
        self._srv = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._srv.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._srv.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                req = Request(self.path, json.loads(body or b"{}"), self.headers.get("Authorization"))
                endpoint.requests.append(req)
                self._send(*endpoint._reply(req))

            def _send(self, code: int, body: Any, ctype: str) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass

        return Handler

    def _reply(self, req: Request) -> tuple[int, Any, str]:
        if req.path.startswith("/slow/"):
            time.sleep(self.slow_s)
        elif req.path.startswith("/garbage/"):
            return 200, "<html><body>502 Bad Gateway</body></html>", "text/html"
        elif req.path.startswith("/fail/"):
            return 500, {"error": {"message": f"internal server error: boom (auth was {req.auth})"}}, \
                "application/json"
        elif req.path.startswith("/nochoices/"):
            return 200, {"object": "chat.completion"}, "application/json"
        elif req.path.startswith("/missing/"):
            return 404, {"error": "not found"}, "application/json"
        reply = self.answer(req)
        return reply if isinstance(reply, tuple) else (200, reply, "application/json")

    def __enter__(self) -> "FakeEndpoint":
        threading.Thread(target=self._srv.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._srv.shutdown()
        self._srv.server_close()


def select_samples(rows, threshold: float, weights, per_kind_quota=None, budget=None) -> list[dict]:
    """``backend.scoring.select`` on plain rows; returns ``selection_items``."""
    from backend.scoring import CandidateArrays, select, selection_items

    arrays = CandidateArrays(rows)
    return selection_items(arrays, *select(arrays, weights, threshold, per_kind_quota, budget))


def summac_zs_score(entail: list[list[float]], contradict: list[list[float]]) -> float:
    """SummaC-ZS score in [-1, 1]: mean over response sentences of summac_zs_sentences."""
    from backend.judges.faithfulness import summac_zs_sentences

    rows = summac_zs_sentences(entail, contradict)
    return sum(r["score"] for r in rows) / len(rows) if rows else 0.0
