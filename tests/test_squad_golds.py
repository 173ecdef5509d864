"""SQuAD's several gold answers travel from the data file through the run log to the task judge,
which takes the max over all of them (the official metric), not the first answer only."""
import json

import pytest

from backend.config import DatasetSpec
from backend.data import UNANSWERABLE_REPLY, load_dataset_records
from backend.judges.task import TokenF1
from backend.records import record_from_prompt
from backend.runlog import RunLog

CTX = "Port Elm was founded in 1801 by river traders. Its first bridge opened in 1890."
# three gold answers (as crowd workers gave them); the response matches only the 2nd exactly
ANSWERS = {"text": ["river traders in 1801", "river traders", "traders"], "answer_start": [32, 32, 38]}
RESPONSE = "River traders."


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def squad_file(tmp_path):
    return _write(tmp_path / "squad.jsonl", [
        {"id": "q1", "title": "Port_Elm", "context": CTX, "question": "Who founded Port Elm?",
         "answers": ANSWERS},
        {"id": "q2", "title": "Port_Elm", "context": CTX, "question": "Who was the first mayor?",
         "answers": {"text": [], "answer_start": []}},  # SQuAD v2 unanswerable
        {"id": "q3", "title": "Port_Elm", "context": CTX, "question": "When did the bridge open?",
         "answers": {"text": ["1890", "1890"], "answer_start": [74, 74]}}])  # duplicates: one gold


def test_loader_keeps_every_gold_answer(squad_file):
    recs = load_dataset_records(DatasetSpec(name="s", source=squad_file))
    assert recs[0].reference == "river traders in 1801"  # trained on the first, as before
    assert recs[0].references == ANSWERS["text"]
    assert (recs[1].reference, recs[1].references) == (UNANSWERABLE_REPLY, [])
    assert (recs[2].reference, recs[2].references) == ("1890", [])  # one distinct answer


def test_original_json_answer_list_shape(tmp_path):
    # the original SQuAD JSON's qas[].answers: a list of {"text", "answer_start"} dicts
    path = _write(tmp_path / "squad_json.jsonl", [
        {"id": "q1", "context": CTX, "question": "Who founded Port Elm?",
         "answers": [{"text": t, "answer_start": s} for t, s in zip(ANSWERS["text"],
                                                                     ANSWERS["answer_start"])]}])
    rec = load_dataset_records(DatasetSpec(name="s", source=path))[0]
    assert rec.references == ANSWERS["text"] and rec.reference == ANSWERS["text"][0]


def test_golds_survive_the_run_log_and_the_judge_takes_the_max(tmp_path, squad_file):
    recs = load_dataset_records(DatasetSpec(name="s", source=squad_file))
    log = RunLog(tmp_path / "runlog.db")
    log.create_run("r1", name="squad", preset="", config_toml="", run_dir=str(tmp_path))
    ids = log.add_prompts("r1", 1, recs)
    rows = {r["key"]: dict(r) for r in log.conn.execute("SELECT * FROM prompts WHERE run_id='r1'")}
    assert json.loads(rows["s:q1"]["constraints"]) == {"references": ANSWERS["text"]}
    assert rows["s:q2"]["constraints"] is None and rows["s:q3"]["constraints"] is None
    back = record_from_prompt(rows["s:q1"])
    assert back.id in ids and back.references == ANSWERS["text"]

    res = TokenF1().score_batch([back], [RESPONSE])[0]
    assert res.value == 1.0 and res.details["em"] == 1.0
    assert res.details["best_gold"] == 1 and res.details["n_gold"] == 3
    # against the first answer alone the same response only half-matches: F1 = 2*(1*0.5)/1.5
    first_only = TokenF1().score_batch([record_from_prompt({**rows["s:q1"], "constraints": None})],
                                       [RESPONSE])[0]
    assert first_only.value == pytest.approx(2 / 3, abs=1e-4) and first_only.details["em"] == 0.0
