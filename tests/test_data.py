import json

import pytest
from hypothesis import given, settings, strategies as st

from backend.config import DatasetSpec
from backend.data import (DataError, build_mixture, chat_messages, detect_format, load_dataset_records,
                          map_rows, mixture_counts, split_records)


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def files(tmp_path):
    f = {}
    f["alpaca"] = _jsonl(tmp_path / "alpaca.jsonl", [
        {"instruction": f"Say {i}", "input": "" if i % 2 else "extra", "output": f"{i}"} for i in range(30)])
    f["sharegpt"] = _jsonl(tmp_path / "sharegpt.jsonl", [
        {"id": f"c{i}", "conversations": [{"from": "human", "value": f"hi {i}"},
                                          {"from": "gpt", "value": f"hello {i}"}]} for i in range(10)])
    f["squad"] = _jsonl(tmp_path / "squad.jsonl", [
        {"id": f"q{i}", "title": "T", "context": f"Port Elm was founded in {1800 + i}.",
         "question": "When was Port Elm founded?",
         "answers": {"text": [f"{1800 + i}"], "answer_start": [26]}} for i in range(40)])
    f["cnn"] = _jsonl(tmp_path / "cnn.jsonl", [
        {"id": f"a{i}", "article": f"Article {i} says the mayor opened bridge {i}.",
         "highlights": f"Mayor opened bridge {i}."} for i in range(20)])
    f["xsum"] = _jsonl(tmp_path / "xsum.jsonl", [
        {"id": f"x{i}", "document": f"Document {i} text.", "summary": f"Summary {i}."} for i in range(12)])
    f["ifeval"] = _jsonl(tmp_path / "ifeval.jsonl", [
        {"key": i, "prompt": f"Write {i} words without commas.",
         "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
         "kwargs": [{}, {"relation": "less than", "num_words": 20}]} for i in range(15)])
    (tmp_path / "data.csv").write_text("question,passage,answer\nWho?,Ann met Bo.,Ann\nWhen?,In 1990 it rained.,1990\n")
    f["csv"] = str(tmp_path / "data.csv")
    return f


@pytest.mark.parametrize("fmt, kind", [("alpaca", "instruction"), ("sharegpt", "instruction"),
                                       ("squad", "qa_extractive"), ("cnn", "summarization"),
                                       ("xsum", "summarization"), ("ifeval", "instruction")])
def test_builtin_formats_auto_detected(files, fmt, kind):
    recs = load_dataset_records(DatasetSpec(name=fmt, source=files[fmt]))
    assert recs and all(r.kind == kind for r in recs)
    assert all(r.prompt for r in recs)
    if kind != "instruction":
        assert all(r.context for r in recs)


def test_mapping_details(files):
    squad = load_dataset_records(DatasetSpec(name="s", source=files["squad"]))[0]
    assert squad.reference == "1800" and squad.prompt == "When was Port Elm founded?"
    assert squad.id == "s:q0"
    ife = load_dataset_records(DatasetSpec(name="i", source=files["ifeval"]))[0]
    assert ife.instruction_id_list == ["punctuation:no_comma", "length_constraints:number_words"]
    # arrow fills missing keys with None; they must be dropped
    assert ife.kwargs == [{}, {"relation": "less than", "num_words": 20}]
    alp = load_dataset_records(DatasetSpec(name="a", source=files["alpaca"]))[0]
    assert alp.prompt == "Say 0\n\nextra" and alp.reference == "0"
    sg = load_dataset_records(DatasetSpec(name="g", source=files["sharegpt"]))[3]
    assert (sg.prompt, sg.reference) == ("hi 3", "hello 3")


def test_custom_csv_mapping(files):
    spec = DatasetSpec(name="c", source=files["csv"], format="custom", kind="qa_abstractive",
                       columns={"prompt": "question", "context": "passage", "reference": "answer"})
    recs = load_dataset_records(spec)
    assert [r.reference for r in recs] == ["Ann", "1990"]


def test_parquet(tmp_path):
    import datasets
    datasets.Dataset.from_list([{"instruction": "a", "input": "", "output": "b"}] * 3).to_parquet(
        str(tmp_path / "d.parquet"))
    assert len(load_dataset_records(DatasetSpec(name="p", source=str(tmp_path / "d.parquet")))) == 3


def test_malformed_jsonl_names_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n')
    with pytest.raises(DataError, match="line 2"):
        load_dataset_records(DatasetSpec(name="b", source=str(p)))


def test_missing_column_named(files):
    spec = DatasetSpec(name="c", source=files["csv"], format="custom", kind="qa_abstractive",
                       columns={"prompt": "question", "context": "body", "reference": "answer"})
    with pytest.raises(DataError, match="missing column 'body'"):
        load_dataset_records(spec)


def test_empty_dataset(tmp_path):
    p = tmp_path / "empty.jsonl"
    p.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_dataset_records(DatasetSpec(name="e", source=str(p)))


def test_missing_file_and_hub_offline():
    with pytest.raises(DataError, match="not found"):
        load_dataset_records(DatasetSpec(name="m", source="/nope/x.jsonl"))
    with pytest.raises(DataError, match="from the hub"):
        load_dataset_records(DatasetSpec(name="h", source="someone/some_dataset"))


def test_unknown_format():
    with pytest.raises(DataError, match="cannot tell the format"):
        detect_format(["foo", "bar"])


def test_zero_weights_refused(files):
    specs = [DatasetSpec(name="a", source=files["alpaca"], weight=0.0)]
    with pytest.raises(DataError, match="sum to zero"):
        mixture_counts(specs, {"a": 30})


def test_splits_deterministic_and_disjoint(files):
    spec = DatasetSpec(name="s", source=files["squad"], eval_fraction=0.25)
    tr1, ev1 = split_records(spec)
    tr2, ev2 = split_records(spec)
    assert [r.id for r in tr1] == [r.id for r in tr2] and [r.id for r in ev1] == [r.id for r in ev2]
    assert ev1 and not ({r.id for r in tr1} & {r.id for r in ev1})
    assert len(tr1) + len(ev1) == 40


def test_mixture_weights_budget_seed(files):
    specs = [DatasetSpec(name="a", source=files["alpaca"], weight=3.0, eval_fraction=0.0),
             DatasetSpec(name="s", source=files["squad"], weight=1.0, eval_fraction=0.0),
             DatasetSpec(name="c", source=files["cnn"], budget=5, eval_fraction=0.0)]
    m1 = build_mixture(specs, seed=7)
    m2 = build_mixture(specs, seed=7)
    m3 = build_mixture(specs, seed=8)
    assert [r.id for r in m1] == [r.id for r in m2]
    assert [r.id for r in m1] != [r.id for r in m3]
    by = {n: sum(r.source == n for r in m1) for n in "asc"}
    assert by["c"] == 5
    # weights share the pool of 70 weighted examples 3:1 (rounded)
    assert (by["a"], by["s"]) == (round(70 * 0.75), round(70 * 0.25))


def test_chat_messages(files):
    rec = load_dataset_records(DatasetSpec(name="s", source=files["squad"]))[0]
    msgs = chat_messages(rec, "1800")
    assert msgs[0]["role"] == "user" and rec.context in msgs[0]["content"]
    assert msgs[1] == {"role": "assistant", "content": "1800"}


@settings(max_examples=50, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["instruction", "input", "output", "junk"]),
                                st.one_of(st.none(), st.text(max_size=20), st.integers())),
                min_size=1, max_size=8))
def test_mapping_never_crashes_unexpectedly(rows):
    spec = DatasetSpec(name="h", source="x.jsonl", format="alpaca")
    try:
        recs = map_rows(rows, spec)
    except DataError:
        return
    assert all(r.kind == "instruction" and r.prompt for r in recs)
