"""The likelihood faithfulness judge (faith_lm) on the embedded SmolLM2: its shared-context scoring
equals a plain forward pass, its details say which words it doubts, and its accuracy on the
hand-written pairs (report-only: its settings were chosen on assets/judge_eval/dev_pairs.jsonl)."""
from __future__ import annotations

from pathlib import Path

import pytest

from backend.judges import JUDGES, build_judges, factcc, likelihood
from backend.records import Record
from reset_gui.views import judge_why

REPO = Path(__file__).resolve().parent.parent
HANDWRITTEN = REPO / "assets" / "judge_eval" / "handwritten_pairs.jsonl"
CTX = ("Ana Duarte opened the bakery in 1987 with her brother Luis. He left in 1995 to teach, and "
       "the bakery now employs nine people on Rua Alta.")


@pytest.fixture(scope="module")
def judge():
    j = likelihood.LikelihoodFaithfulness({})
    assert j.available()[0], j.available()[1]
    yield j
    likelihood.release()


def test_shared_context_scores_equal_a_plain_forward_pass():
    """Two ways of batching, one answer: contexts with several candidates are read together (right-
    padded) and each one's cache is shared by its candidates, batched across contexts; contexts
    with one candidate each go through together as right-padded whole sequences. Each token's
    log-probability must match scoring prompt + response alone in one ordinary pass (fp32: exact)."""
    import torch

    judge = likelihood.LikelihoodFaithfulness({"faith_lm": {"dtype": "float32"}})
    model, tok = judge._load()
    other = "The ferry to Vila Nova leaves at seven and takes forty minutes."
    contexts = [CTX, other, CTX, other, CTX + " It opens at six.", other + " Tickets cost four euros."]
    responses = ["Ana Duarte opened the bakery in 1987.", "The ferry takes forty minutes.",
                 "Luis left in 1995 to teach children in Porto.", "The ferry leaves at seven.",
                 "It opens at six.", "Tickets cost four euros each way."]
    got = judge.token_scores(contexts, responses)
    for (spans, lp, _), ctx, resp in zip(got, contexts, responses):
        prompt = tok(likelihood._prompt(tok, ctx, likelihood.SYSTEM), add_special_tokens=False).input_ids
        ids = tok(resp, add_special_tokens=False).input_ids
        assert len(lp) == len(ids) == len(spans)
        with torch.inference_mode():
            logits = model(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1:-1].float()
        want = torch.log_softmax(logits, -1).gather(1, torch.tensor(ids)[:, None])[:, 0].tolist()
        assert max(abs(a - b) for a, b in zip(lp, want)) < 1e-3


def test_work_counts_each_context_once_and_every_answer_token(judge):
    """The benchmark's compute ceiling rests on this count: a context shared by candidates is read
    once, each answer token goes through the decoder and the vocabulary head (SmolLM2-135M: 30
    layers of 576-wide attention and a 1536-wide MLP; a 49152 x 576 head)."""
    _, tok = judge._load()
    answers = ["Ana Duarte opened the bakery in 1987.", "Luis opened the bakery.", "It has nine staff."]
    w = judge.work([CTX, CTX, "The ferry leaves at seven."], answers)
    prompt = sum(len(tok(likelihood._prompt(tok, c, likelihood.SYSTEM), add_special_tokens=False)
                     .input_ids) for c in (CTX, "The ferry leaves at seven."))
    answer = sum(len(tok(a, add_special_tokens=False).input_ids) for a in answers)
    layer = 30 * (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536)  # q, o; k, v (3 kv heads); MLP
    assert w == {"prompt_tokens": prompt, "answer_tokens": answer, "macs_per_token": layer,
                 "head_macs_per_answer_token": 49152 * 576,
                 "macs": (prompt + answer) * layer + answer * 49152 * 576}
    # a context whose only answer is empty is never read (token_scores skips it): not counted
    assert judge.work([CTX, CTX, "The ferry leaves at seven.", "Unread."], answers + [""]) == w


def test_swap_scores_lower_and_details_name_the_doubtful_words(judge):
    recs = [Record(id=f"r{i}", kind="qa_abstractive", prompt="", context=CTX) for i in range(3)]
    good, bad, none = judge.score_batch(recs, ["Ana Duarte opened the bakery in 1987.", "Luis opened the bakery in 1987.",
         "The bakery was sold to a bank in Lisbon in 2001."])
    assert good.value > bad.value and good.value > none.value
    assert none.details["judge"] == "faith_lm" and none.details["unsupported"] == [0]
    doubt = none.details["sentences"][0]["missing"]
    assert doubt and all(d["why"] == "unlikely given the context" for d in doubt)
    text = "The bakery was sold to a bank in Lisbon in 2001."
    assert all(text[d["start"]:d["end"]] == d["text"] for d in doubt)
    why = judge_why("faith_lm", none.value, none.details)
    assert why.startswith("0/1 sentences supported; unlikely given the context: ")
    # no context: does not apply; an empty response: 0
    na, empty = judge.score_batch([Record(id="x", kind="instruction", prompt="Say hi."), recs[0]],
                                  ["Hi.", ""])
    assert na.value is None and na.details["reason"] == "no context"
    assert empty.value == 0.0 and empty.details["note"] == "empty response"


def test_a_missing_model_is_reported_not_raised(tmp_path):
    j = likelihood.LikelihoodFaithfulness({"faith_lm": {"model_path": str(tmp_path / "nope")}})
    ok, why = j.available()
    assert not ok and "nope" in why
    with pytest.raises(ValueError, match="faith_lm"):
        build_judges(["faith_lm"], {"faith_lm": {"model_path": str(tmp_path / "nope")}})
    assert "faith_lm" in JUDGES


def test_handwritten_pairs_meet_the_issue_target(judge):
    """Issue 9's target: >= 90 % of hand-written swap/negation pairs ranked right, >= 95 % of the
    new-word ones. Settings (prompt, null_weight, dtype, center/scale) were chosen on the tuning
    pairs only; this test reads the hand-written pairs to check, never to choose."""
    acc = factcc.pair_accuracy(judge, factcc.load_pairs(HANDWRITTEN))
    print("\nfaith_lm on hand-written pairs:", {k: v["accuracy"] for k, v in acc.items()})
    assert acc["swap"]["n"] == 36 and acc["new_word"]["n"] == 12
    assert acc["swap"]["accuracy"] >= 0.90
    assert acc["new_word"]["accuracy"] >= 0.95


def test_int8_option_loads_float32_and_still_ranks_a_swap_lower():
    """quantize: int8 dynamic Linear layers take float32 activations, so the option must not load
    the bf16 weights that dtype "auto" picks on a CPU with bf16 (it crashed there before)."""
    j = likelihood.LikelihoodFaithfulness({"faith_lm": {"quantize": True}})
    try:
        model, _ = j._load()
        assert next(model.parameters()).dtype.is_floating_point
        assert any("quantized" in type(m).__module__ for m in model.modules())
        recs = [Record(id=f"q{i}", kind="qa_abstractive", prompt="", context=CTX) for i in range(2)]
        good, bad = j.score_batch(recs, ["Ana Duarte opened the bakery in 1987.",
                                         "Luis opened the bakery in 1987."])
        assert good.value > bad.value
    finally:
        likelihood.release()
