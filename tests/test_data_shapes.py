"""The Hub's real column layouts, from local Parquet files shaped exactly like them.

Each fixture is written with ``datasets`` from the data set's published features (nested types as
the Hub serves them: SQuAD's ``answers`` a struct of lists, ShareGPT's ``conversations`` and
IFEval's ``kwargs`` lists of structs), its Arrow schema is checked against the published one, and
``backend.data`` must detect the format and map every record.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset, Features, List, Value

from backend.config import DatasetSpec
from backend.data import UNANSWERABLE_REPLY, DataReport, detect_format, load_dataset_records

S, I64, I32 = Value("string"), Value("int64"), Value("int32")

# IFEval's kwargs struct: every key any instruction takes (the Hub's dataset_info, in its order)
_IFEVAL_KW = {"num_highlights": I64, "relation": S, "num_words": I64, "num_placeholders": I64,
              "prompt_to_repeat": S, "num_bullets": I64, "section_spliter": S, "num_sections": I64,
              "capital_relation": S, "capital_frequency": I64, "keywords": List(S),
              "num_paragraphs": I64, "language": S, "let_relation": S, "letter": S,
              "let_frequency": I64, "end_phrase": S, "forbidden_words": List(S), "keyword": S,
              "frequency": I64, "num_sentences": I64, "postscript_marker": S, "first_word": S,
              "nth_paragraph": I64}
_SQUAD = Features({"id": S, "title": S, "context": S, "question": S,
                   "answers": {"text": List(S), "answer_start": List(I32)}})


def _kw(**given):
    return {k: given.get(k) for k in _IFEVAL_KW}


CTX = "Port Elm was founded in 1801 by river traders. Its bridge opened in 1890."
SHAPES = {
    # tatsu-lab/alpaca
    "alpaca": (Features({"instruction": S, "input": S, "output": S, "text": S}), [
        {"instruction": "Give three tips for staying healthy.", "input": "",
         "output": "1. Eat well. 2. Sleep. 3. Move.",
         "text": "Below is an instruction...\n\n### Response:\n1. Eat well."},
        {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour",
         "text": "Below is an instruction...\n\n### Input:\nGood morning"}]),
    # ShareGPT (Vicuna-style): id + conversations [{from, value}]
    "sharegpt": (Features({"id": S, "conversations": List({"from": S, "value": S})}), [
        {"id": "QWJhYvA_0", "conversations": [
            {"from": "human", "value": "What is a river delta?"},
            {"from": "gpt", "value": "Land formed where a river deposits sediment."},
            {"from": "human", "value": "Name one."}, {"from": "gpt", "value": "The Nile delta."}]},
        {"id": "QWJhYvA_1", "conversations": [
            {"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello."}]}]),
    # rajpurkar/squad
    "squad": (_SQUAD, [
        {"id": "5733be284776f41900661182", "title": "Port_Elm", "context": CTX,
         "question": "When was Port Elm founded?", "answers": {"text": ["1801"], "answer_start": [24]}},
        {"id": "5733be284776f41900661183", "title": "Port_Elm", "context": CTX,
         "question": "When did the bridge open?",
         "answers": {"text": ["1890", "in 1890"], "answer_start": [68, 65]}}]),
    # rajpurkar/squad_v2: same features, unanswerable questions have empty lists
    "squad_v2": (_SQUAD, [
        {"id": "56ddde6b9a695914005b9628", "title": "Port_Elm", "context": CTX,
         "question": "Who founded Port Elm?", "answers": {"text": ["river traders"],
                                                         "answer_start": [32]}},
        {"id": "5ad39d53604f3c001a3fe8d1", "title": "Port_Elm", "context": CTX,
         "question": "Who was Port Elm's first mayor?", "answers": {"text": [], "answer_start": []}}]),
    # abisee/cnn_dailymail 3.0.0
    "cnn_dailymail": (Features({"article": S, "highlights": S, "id": S}), [
        {"article": "LONDON (CNN) -- The bridge over the Elm reopened on Monday after repairs.",
         "highlights": "Bridge over the Elm reopened Monday .\nRepairs took a year .",
         "id": "0001d1afc246a7964130f43ae940af6bc6c57f01"}]),
    # EdinburghNLP/xsum
    "xsum": (Features({"document": S, "summary": S, "id": S}), [
        {"document": "The bridge over the Elm reopened on Monday after a year of repairs.",
         "summary": "A bridge has reopened after a year of repairs.", "id": "29750031"}]),
    # google/IFEval
    "ifeval": (Features({"key": I64, "prompt": S, "instruction_id_list": List(S),
                         "kwargs": List(_IFEVAL_KW)}), [
        {"key": 1000, "prompt": "Write a 300+ word summary of the wikipedia page. Do not use commas.",
         "instruction_id_list": ["punctuation:no_comma", "length_constraints:number_words"],
         "kwargs": [_kw(), _kw(relation="at least", num_words=300)]},
        {"key": 1001, "prompt": "Write a poem about a bridge. Include the keywords river and stone.",
         "instruction_id_list": ["keywords:existence"],
         "kwargs": [_kw(keywords=["river", "stone"])]}]),
}
# the Arrow types the Hub serves for the nested columns
NESTED = {
    "sharegpt": ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
    "squad": ("answers", pa.struct([("text", pa.list_(pa.string())),
                                    ("answer_start", pa.list_(pa.int32()))])),
    "ifeval": ("instruction_id_list", pa.list_(pa.string())),
}
EXPECTED_FORMAT = {"squad_v2": "squad"}


@pytest.fixture(scope="module")
def parquet_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub_shapes")
    out = {}
    for name, (features, rows) in SHAPES.items():
        path = root / f"{name}-train-00000-of-00001.parquet"
        Dataset.from_list(rows, features=features).to_parquet(str(path))
        out[name] = path
    return out


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_parquet_has_the_published_schema(parquet_files, name):
    schema = pq.read_schema(parquet_files[name])
    features = SHAPES[name][0]
    assert schema.names == list(features)  # same columns, same order
    assert Features.from_arrow_schema(schema) == features
    if name in NESTED:
        col, typ = NESTED[name]
        assert schema.field(col).type == typ
    if name == "ifeval":
        kw = schema.field("kwargs").type
        assert pa.types.is_list(kw) and pa.types.is_struct(kw.value_type)
        assert [f.name for f in kw.value_type] == list(_IFEVAL_KW)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_detects_and_loads_each_hub_shape(parquet_files, name):
    path = parquet_files[name]
    cols = pq.read_schema(path).names
    assert detect_format(cols) == EXPECTED_FORMAT.get(name, name)
    report = DataReport()
    recs = load_dataset_records(DatasetSpec(name=name, source=str(path)), report)
    rows = SHAPES[name][1]
    assert len(recs) == len(rows) == report.rows
    assert all(r.prompt for r in recs)
    if name == "alpaca":
        assert [r.kind for r in recs] == ["instruction"] * 2
        assert recs[0].prompt == rows[0]["instruction"]  # an empty input adds nothing
        assert recs[1].prompt == "Translate to French.\n\nGood morning"
        assert recs[1].reference == "Bonjour"
    elif name == "sharegpt":
        assert recs[0].id == "sharegpt:QWJhYvA_0"
        assert (recs[0].prompt, recs[0].reference) == ("What is a river delta?",
                                                       "Land formed where a river deposits sediment.")
        assert (recs[1].prompt, recs[1].reference) == ("Hi", "Hello.")  # system turn skipped
    elif name in ("squad", "squad_v2"):
        assert all(r.kind == "qa_extractive" and r.context == CTX for r in recs)
        assert recs[0].id == f"{name}:{rows[0]['id']}"
        assert recs[0].reference == rows[0]["answers"]["text"][0]
        if name == "squad":
            assert recs[1].reference == "1890" and report.unanswerable == 0
            assert recs[1].references == ["1890", "in 1890"]  # every gold, for the task judge
        else:
            assert recs[1].reference == UNANSWERABLE_REPLY and report.unanswerable == 1
    elif name in ("cnn_dailymail", "xsum"):
        r, row = recs[0], rows[0]
        assert r.kind == "summarization" and r.id == f"{name}:{row['id']}"
        assert r.context == (row.get("article") or row.get("document"))
        assert r.reference == (row.get("highlights") or row.get("summary")).strip()
        assert r.prompt.startswith("Summarize the")
    elif name == "ifeval":
        assert [r.id for r in recs] == ["ifeval:1000", "ifeval:1001"]
        assert recs[0].instruction_id_list == rows[0]["instruction_id_list"]
        # the struct's unused keys (null in every row) are dropped; the used ones stay
        assert recs[0].kwargs == [{}, {"relation": "at least", "num_words": 300}]
        assert recs[1].kwargs == [{"keywords": ["river", "stone"]}]
        assert all(r.reference is None for r in recs) and report.no_reference == 2
