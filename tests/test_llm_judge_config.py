"""A run config can point the LLM judge at a local model folder (judges.llm_judge.model_path):
validated when the config is read, wired into the judge stage's settings, and scored by the
rating probabilities of that model (a real tiny random Llama here: mechanics, not quality)."""
from __future__ import annotations

import pytest

from backend.config import ConfigError, config_from_dict, load_preset
from backend.judges import build_judges
from backend.records import Record
from backend.stages.judge import if_coverage_note, judge_names, judge_settings


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory) -> str:
    """A 1-layer random Llama with a word-level tokenizer that has the rating digits."""
    import torch
    from transformers import AutoModelForCausalLM, BertTokenizer, LlamaConfig

    d = tmp_path_factory.mktemp("tiny_judge_lm")
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "/", "rating", ":", "write", "a",
             "haiku", "the", "river"] + [str(i) for i in range(11)]
    (d / "vocab.txt").write_text("\n".join(words) + "\n")
    tok = BertTokenizer(vocab=str(d / "vocab.txt"))
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                      num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                      pad_token_id=tok.pad_token_id)
    AutoModelForCausalLM.from_config(cfg).save_pretrained(d)
    return str(d)


def _cfg(judges: dict):
    data = load_preset("mtl_demo").to_dict()
    data["judges"] = {**data["judges"], **judges}
    return config_from_dict(data)


def test_model_path_must_be_a_model_folder(tmp_path):
    with pytest.raises(ConfigError) as err:
        _cfg({"llm_judge": {"model_path": str(tmp_path / "nowhere")}})
    assert "judges.llm_judge.model_path" in str(err.value) and "folder not found" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has no config.json"):
        _cfg({"llm_judge": {"model_path": str(tmp_path / "empty")}})


def test_endpoint_and_local_model_are_exclusive(tiny_lm):
    with pytest.raises(ConfigError, match="not both"):
        _cfg({"llm_judge": {"model_path": tiny_lm},
              "llm_endpoint": {"base_url": "http://127.0.0.1:9/v1", "model": "m"}})


def test_local_llm_judge_scores_through_the_config(tiny_lm):
    cfg = _cfg({"llm_judge": {"model_path": tiny_lm}})
    assert cfg.judges.llm_judge.model_path == tiny_lm and cfg.judges.llm_judge.scoring == "expected"
    assert "llm_judge" in judge_names(cfg.judges)
    settings = judge_settings(cfg.judges)
    assert settings["llm_judge"] == {"model_path": tiny_lm, "scoring": "expected", "device": "cpu"}
    judge = next(j for j in build_judges(judge_names(cfg.judges), settings) if j.name == "llm_judge")
    assert judge.available() == (True, f"local model at {tiny_lm} (expected rating)")
    rec = Record(id="a:1", kind="instruction", prompt="write a haiku")
    a, b = judge.score(rec, "the river"), judge.score(rec, "the river")
    assert a.details["scoring"] == "expected" and a.value == b.value  # no sampling
    assert sum(a.details["rating_probs"]) == pytest.approx(1.0, abs=1e-3)
    assert a.value == pytest.approx((a.details["expected_rating"] - 1) / 9, abs=1e-3)
    # the Setup tab's coverage line counts the local judge as scoring every prompt
    note = if_coverage_note(cfg.judges.model_dump(mode="json"),
                            [{"name": "alpaca", "format": "alpaca"}])
    assert note.startswith("IF: the LLM judge scores every prompt")
