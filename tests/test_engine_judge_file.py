"""`reset-gui judge`: judge a JSONL file with the run judges."""
from __future__ import annotations

import json

import pytest

from backend.judge_file import JudgeFileError, judge_file, judge_list_text

LINES = [
    {"id": "qa1", "prompt": "When was the bridge opened?",
     "context": "The Kessel bridge was opened in 1974 by the mayor of Lindau. It is 300 metres long.",
     "reference": "It was opened in 1974.", "response": "The bridge was opened in 1974."},
    {"id": "qa2", "prompt": "When was the bridge opened?",
     "context": "The Kessel bridge was opened in 1974 by the mayor of Lindau. It is 300 metres long.",
     "reference": "It was opened in 1974.", "response": "It was opened in 1947 by the king of Spain."},
    {"id": "if1", "prompt": "Describe a cat without using any commas.",
     "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}],
     "response": "A cat is a small animal that purrs."},
    {"id": "if2", "prompt": "Describe a cat without using any commas.",
     "instruction_id_list": ["punctuation:no_comma"], "kwargs": [{}],
     "response": "A cat is small, soft, and purrs."},
    {"id": "plain", "prompt": "Say hello.", "response": "Hello!"},
]
JUDGES = ["rouge_l", "token_f1", "faith_lexical", "ifeval"]


def _write(path, lines):
    path.write_text("".join((json.dumps(x) if not isinstance(x, str) else x) + "\n" for x in lines))
    return path


def test_judge_file_scores_every_line(tmp_path):
    src = _write(tmp_path / "in.jsonl", LINES)
    out = tmp_path / "sub" / "out.jsonl"
    summary = judge_file(src, out, judges=JUDGES)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [x["id"] for x in LINES]
    for r, x in zip(rows, LINES):
        assert {k: r[k] for k in x} == x  # input kept as is
        assert "combined" in r["category_scores"]
    qa1, qa2, if1, if2, plain = rows
    # grounded lines: task + faithfulness, no instruction following
    assert set(qa1["category_scores"]) == {"task", "faithfulness", "combined"}
    assert qa1["category_scores"]["faithfulness"] > qa2["category_scores"]["faithfulness"]
    assert qa1["category_scores"]["combined"] > qa2["category_scores"]["combined"]
    assert set(qa1["scores"]) == {"rouge_l", "token_f1", "faith_lexical"}
    # IFEval lines: instruction following only (no reference, no context)
    assert set(if1["category_scores"]) == {"instruction_following", "combined"}
    assert if1["scores"]["ifeval"] == 1.0 and if2["scores"]["ifeval"] == 0.0
    # nothing applies: combined is None
    assert plain["scores"] == {} and plain["category_scores"] == {"combined": None}
    assert summary["n"] == 5 and summary["judges"] == JUDGES
    assert summary["faithfulness_judge"] == "faith_lexical"
    assert summary["n_scored"]["ifeval"] == 2
    assert 0 <= summary["mean_category_scores"]["combined"] <= 1


def test_weights_change_combined(tmp_path):
    src = _write(tmp_path / "in.jsonl", LINES[:2])
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    judge_file(src, a, judges=JUDGES, weights={"faithfulness": 1.0})
    judge_file(src, b, judges=JUDGES, weights={"task": 1.0})
    ra = [json.loads(x) for x in a.read_text().splitlines()]
    rb = [json.loads(x) for x in b.read_text().splitlines()]
    assert ra[0]["category_scores"]["combined"] == pytest.approx(ra[0]["category_scores"]["faithfulness"])
    assert rb[0]["category_scores"]["combined"] == pytest.approx(rb[0]["category_scores"]["task"])


@pytest.mark.parametrize("bad, match", [
    ("{not json", r"line 2 is not valid JSON"),
    ('["a list"]', r"line 2: expected a JSON object"),
    ('{"prompt": "p"}', r"line 2: `response` must be a string \(missing\)"),
    ('{"prompt": "p", "response": 3}', r"line 2: `response` must be a string, got int"),
    ('{"response": "r"}', r"line 2: `prompt` must be a non-empty string"),
    ('{"prompt": "p", "response": "r", "instruction_id_list": [1]}', r"line 2: `instruction_id_list`"),
    ('{"prompt": "p", "response": "r", "kwargs": ["x"]}', r"line 2: `kwargs`"),
    ('{"prompt": "p", "response": "r", "kind": "poetry"}', r"line 2: unknown kind"),
])
def test_malformed_line_names_the_line(tmp_path, bad, match):
    src = _write(tmp_path / "in.jsonl", [LINES[0], bad, LINES[1]])
    out = tmp_path / "out.jsonl"
    with pytest.raises(JudgeFileError, match=match):
        judge_file(src, out, judges=JUDGES)
    assert not out.exists()  # nothing half-written


def test_missing_and_empty_input(tmp_path):
    with pytest.raises(JudgeFileError, match="not found"):
        judge_file(tmp_path / "nope.jsonl", tmp_path / "o.jsonl", judges=JUDGES)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(JudgeFileError, match="no lines"):
        judge_file(empty, tmp_path / "o.jsonl", judges=JUDGES)
    with pytest.raises(ValueError, match="unknown judge"):
        judge_file(_write(tmp_path / "in.jsonl", LINES[:1]), tmp_path / "o.jsonl", judges=["bleu"])


def test_auto_judges_and_list(tmp_path):
    src = _write(tmp_path / "in.jsonl", LINES[:1] + LINES[2:3])
    out = tmp_path / "out.jsonl"
    summary = judge_file(src, out, judges="auto")
    assert summary["faithfulness_judge"] in ("faith_summac", "faith_lm", "faith_minilm",
                                             "faith_lexical")
    assert summary["faithfulness_judge"] in summary["judges"]
    text = judge_list_text({})
    for name in ("rouge_l", "token_f1", "faith_lexical", "faith_minilm", "faith_summac", "ifeval",
                 "llm_judge"):
        assert name in text
    assert "no NLI model" in text or "faith_summac" in text
    assert 'faithfulness "auto" picks' in text
