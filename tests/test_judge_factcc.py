"""The FactCC-style judge: its transformations, its data split, and its accuracy on pairs written
by hand (assets/judge_eval/handwritten_pairs.jsonl) that the training never sees."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from backend.judges import factcc
from backend.records import Record

REPO = Path(__file__).resolve().parent.parent
HANDWRITTEN = REPO / "assets" / "judge_eval" / "handwritten_pairs.jsonl"
DEV = REPO / "assets" / "judge_eval" / "dev_pairs.jsonl"
CTX = ("Ana Duarte opened the bakery in 1987 with her brother Luis. He left in 1995 to teach, and "
       "the bakery now employs nine people on Rua Alta.")


def test_transformations_change_one_fact():
    rng = random.Random(0)
    claim = "Ana Duarte opened the bakery in 1987 with her brother Luis."
    assert [n for _, _, n in factcc.names_in(claim)] == ["Ana Duarte", "Luis"]
    assert [n for _, _, n in factcc.names_in("On Tuesday the River Fenn rose.")] == ["River Fenn"]
    for _ in range(10):
        swapped = factcc.entity_swap(claim, ["Ana Duarte", "Luis", "Rua Alta"], rng)
        assert swapped and swapped != claim and "bakery in 1987" in swapped
    for _ in range(10):
        num = factcc.number_swap(claim, ["1987", "1995"], rng)
        assert num and num != claim and "1987" not in num
        assert num.startswith("Ana Duarte opened the bakery in ")
    assert factcc.pronoun_swap("He left in 1995.", rng) == "She left in 1995."
    assert factcc.negate("The bakery was closed.", random.Random(1)) in (
        "The bakery was not closed.", "The bakery was opened.")
    assert factcc.negate("He did not teach.", rng) == "He did teach."
    assert factcc.drop_clause("He left in 1995 to teach, and the bakery now employs nine people.",
                              rng) == "He left in 1995 to teach."
    prem, idx = factcc.premise_for("Luis left in 1995.", ["A b c.", "Luis left in 1995 to teach.",
                                                          "D e.", "F g.", "Luis is tall."], 2)
    assert idx == [1, 4] and prem == "Luis left in 1995 to teach. Luis is tall."


def test_heldout_groups_and_handwritten_contexts_are_unseen():
    docs = factcc.demo_documents()
    train, held = factcc.split_groups(docs, factcc.SETTINGS["heldout_fraction"], factcc.SETTINGS["seed"])
    assert train and held and not {d["group"] for d in train} & {d["group"] for d in held}
    pairs = factcc.heldout_pairs()
    kinds = {p["kind"] for p in pairs}
    assert {"entity_swap", "number_swap", "negation", "new_word"} <= kinds
    held_ctx = {d["context"] for d in held}
    assert all(p["context"] in held_ctx for p in pairs)
    hand = factcc.load_pairs(HANDWRITTEN)
    assert len(hand) >= 40
    demo_text = " ".join(d["context"] for d in docs)
    for p in hand:
        assert p["context"] not in demo_text and p["faithful"] != p["hallucinated"]
    # the tuning pairs are a set of their own: no context shared with the test pairs or the demo
    dev = factcc.load_pairs(DEV)
    assert len(dev) == 64 and {p["kind"] for p in dev} == {p["kind"] for p in hand}
    assert not {p["context"] for p in dev} & {p["context"] for p in hand}
    assert all(p["context"] not in demo_text and p["faithful"] != p["hallucinated"] for p in dev)
    rows = factcc.make_pairs(train, docs, 0)
    assert {r["label"] for r in rows} == {0, 1}
    assert not {r["context"] for r in rows} & held_ctx


@pytest.fixture(scope="module")
def judge():
    """Trains the model once (a few CPU-minutes) unless the cache has it; later runs load it."""
    j = factcc.FactCCFaithfulness({})
    assert j.available()[0]
    j.score(Record(id="w", kind="qa_abstractive", prompt="", context=CTX), "Warm up.")
    return j


@pytest.fixture(scope="module")
def minilm_heldout():
    from backend.judges.faithfulness import MiniLMFaithfulness

    return factcc.pair_accuracy(MiniLMFaithfulness({}), factcc.heldout_pairs())


# Floors below the accuracy measured when the recipe was fixed (held-out swap 0.76, new-word
# 0.96; hand-written swap 0.64, new-word 1.0): regression guards, not the targets.
@pytest.mark.slow
def test_factcc_heldout_beats_minilm_and_details(judge, minilm_heldout):
    acc = factcc.pair_accuracy(judge, factcc.heldout_pairs())
    print("held-out transformed:", json.dumps(acc))
    assert acc["swap"]["n"] >= 500 and acc["new_word"]["n"] >= 200
    assert acc["swap"]["accuracy"] >= 0.70
    assert acc["swap"]["accuracy"] >= minilm_heldout["swap"]["accuracy"] + 0.2
    assert acc["new_word"]["accuracy"] >= 0.93
    rec = Record(id="x", kind="qa_abstractive", prompt="Who?", context=CTX)
    resp = "Ana Duarte opened the bakery in 1987. She now runs a shoe factory in Lisbon."
    r = judge.score(rec, resp)
    d = r.details
    assert d["judge"] == "faith_factcc" and len(d["sentences"]) == 2
    for s in d["sentences"]:
        assert resp[s["start"]:s["end"]] == s["text"]
        for sup in s["support"]:
            assert CTX[sup["start"]:sup["end"]].strip()
    assert d["sentences"][0]["score"] > d["sentences"][1]["score"]
    assert r.value == pytest.approx(sum(s["score"] for s in d["sentences"]) / 2, abs=1e-3)
    assert d["min_sentence"] == min(s["score"] for s in d["sentences"])
    assert judge.score(Record(id="n", kind="instruction", prompt="hi"), "x").value is None


@pytest.mark.slow
def test_factcc_handwritten_pairs(judge):
    acc = factcc.pair_accuracy(judge, factcc.load_pairs(HANDWRITTEN))
    print("handwritten:", json.dumps(acc))
    assert acc["swap"]["n"] == 36 and acc["new_word"]["n"] == 12
    assert acc["new_word"]["accuracy"] >= 0.95  # the target, met
    assert acc["swap"]["accuracy"] >= 0.55


@pytest.mark.slow
@pytest.mark.xfail(reason="FactCC misses issue 9's accuracy target: hand-written swap/negation "
                          "pairs ranked right 58-64 % (target 90 %); faith_lm meets it "
                          "(tests/test_judge_likelihood.py) but not the speed", strict=False)
def test_factcc_handwritten_swap_target(judge):
    acc = factcc.pair_accuracy(judge, factcc.load_pairs(HANDWRITTEN))
    assert acc["swap"]["accuracy"] >= 0.90
