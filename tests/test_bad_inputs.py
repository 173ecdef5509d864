"""Bad inputs: every one gives a clear message naming the problem, through the real API or the real
CLI (exit code 2, message on stderr, no traceback), and nothing already in the run log is lost.

One table of cases across data files, configs, checkpoints, endpoints and the run log. No model is
trained or loaded here (checkpoint cases only resolve); endpoint cases use a real local HTTP server.
"""
from __future__ import annotations

import json
import os
import re
import resource
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend import paths
from backend.config import ConfigError, DatasetSpec, DecodingSpec, EndpointSpec, load_preset, loads
from backend.data import DataError, load_dataset_records
from backend.launcher import Studio
from backend.models import ModelError, resolve_model
from backend.runlog import RunLogError
from tests.helpers import FakeEndpoint, chat_completion

REPO = Path(__file__).resolve().parent.parent
CLI_TIMEOUT = 120
TABLES = ("runs", "stages", "metrics", "checkpoints", "prompts", "samples", "scores", "selections",
          "selection_items", "evals", "events")
DONE_RUN = "20250101-000000-done-0001"


# ---- helpers ---------------------------------------------------------------------------------------
def cli(home: Path, *args: str, preexec=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               RESET_STUDIO_HOME=str(home), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, "-m", "backend.cli", "--home", str(home), *args],
                          cwd=str(REPO), env=env, capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, preexec_fn=preexec)


def expect_cli(home: Path, args: list[str], pattern: str, preexec=None) -> str:
    p = cli(home, *args, preexec=preexec)
    shown = f"exit {p.returncode}\n--- stdout\n{p.stdout[-2000:]}\n--- stderr\n{p.stderr[-3000:]}"
    assert "Traceback" not in p.stderr, shown
    assert p.returncode == 2, shown
    assert re.search(pattern, p.stderr, re.I | re.S), shown
    return p.stderr


def expect_error(exc_type, pattern: str, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert re.search(pattern, msg, re.I | re.S), msg
    assert "Traceback" not in msg
    return msg


def populate(home: Path) -> dict[str, list[tuple]]:
    """A run log with a finished run and some rows in every table; returns its snapshot."""
    log = Studio(home).open_log()
    cfg = load_preset("mtl_demo")
    rid = DONE_RUN
    log.create_run(rid, name="done", preset="mtl_demo", config_toml=cfg.to_toml(),
                   run_dir=str(Studio(home).run_dir(rid)), status="running")
    log.stage_start(rid, 0, "mtl", "train", total=5)
    for step in range(1, 6):
        log.log_metrics(rid, 0, step, {"loss": 1.0 / step, "learning_rate": 1e-4})
    log.stage_end(rid, 0, "succeeded", "1.0 s")
    log.add_checkpoint(rid, 0, 5, "mtl", str(home / "ckpt"), "adapter", "embedded")
    from backend.records import Record

    ids = log.add_prompts(rid, 1, [Record(id=f"d:{i}", kind="instruction", prompt=f"p{i}",
                                          reference="r", source="d") for i in range(3)])
    log.add_samples([{"run_id": rid, "stage_idx": 1, "prompt_id": pid, "cand_idx": 0,
                      "decoding": "greedy", "params": {"t": 0}, "seed": 0, "text": "answer",
                      "n_tokens": 1, "finish_reason": "stop"} for pid in ids.values()])
    sids = [r["id"] for r in log.query("SELECT id FROM samples ORDER BY id")]
    log.add_scores([{"run_id": rid, "sample_id": s, "judge": "combined", "category": "combined",
                     "value": 0.5, "details": {"w": 1}} for s in sids])
    log.add_selection(rid, 3, "select", {"threshold": 0.5},
                      [{"sample_id": sids[0], "prompt_id": 1, "combined": 0.5, "rank": 1}])
    log.add_evals([{"run_id": rid, "stage_idx": 4, "checkpoint_tag": "mtl", "dataset": "_all",
                    "n": 3, "faithfulness": 0.5}])
    log.event(rid, "run succeeded")
    log.update_run(rid, status="succeeded", ended_at=time.time(), exit_code=0)
    log.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    log.close()
    return snapshot(home)


def snapshot(home: Path) -> dict[str, list[tuple]]:
    """Every row of every table, read with plain sqlite3 (works on logs RunLog refuses)."""
    conn = sqlite3.connect(f"file:{Studio(home).runlog_path}?mode=ro", uri=True)
    try:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1").fetchall() for t in TABLES}
    finally:
        conn.close()


def assert_intact(home: Path, before: dict[str, list[tuple]]) -> None:
    after = snapshot(home)
    for t in TABLES:
        assert after[t] == before[t], f"table {t} changed: {len(before[t])} -> {len(after[t])} rows"
    conn = sqlite3.connect(f"file:{Studio(home).runlog_path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def spec(path: Path, **kw) -> DatasetSpec:
    return DatasetSpec(name="bad", source=str(path), **kw)


CONFIG_HEAD = """name = "bad"
[model]
base = "embedded"
[[data]]
name = "alpaca"
source = "{alpaca}"
format = "alpaca"
"""
TRAIN = """
[[stages]]
type = "train"
name = "mtl"
max_steps = 1
"""
ALPACA = str(paths.DEMO_DATA / "alpaca_instructions.jsonl")


def config_text(extra_data: str = "", stages: str = TRAIN, head: str = CONFIG_HEAD) -> str:
    return head.format(alpaca=ALPACA) + extra_data + stages


def toml_file(tmp: Path, text: str, name: str = "bad.toml") -> Path:
    return write(tmp / name, text)


# ---- a local OpenAI-compatible server: its /slow/, /garbage/ and /fail/ routes misbehave -----------
@pytest.fixture(scope="module")
def server():
    with FakeEndpoint(lambda req: chat_completion("8")) as ep:
        yield ep.url


def _closed_port() -> int:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _sampler(base_url: str):
    from backend.samplers import make_sampler

    return make_sampler("openai", max_new_tokens=8, batch_size=2,
                        endpoint=EndpointSpec(base_url=base_url, model="m", timeout_s=0.5))


def _sample(base_url: str):
    return _sampler(base_url).generate([[{"role": "user", "content": "hi"}]],
                                       DecodingSpec(name="greedy"), [0])


def _llm_judge_error(base_url: str) -> str:
    """The llm_judge turns endpoint failures into a None score with details["error"]."""
    from backend.judges import LLMJudge
    from backend.records import Record

    judge = LLMJudge({"llm_judge": {"base_url": base_url, "model": "m", "timeout": 0.5,
                                    "api_key_env": "RESET_TEST_NO_SUCH_KEY"}})
    t0 = time.time()
    res = judge.score(Record(id="x", kind="instruction", prompt="Say hi."), "hi")
    assert time.time() - t0 < 20
    assert res.value is None, res
    return res.details.get("error", "")


# ---- the cases -------------------------------------------------------------------------------------
CASES: list = []


def case(name: str, *marks):
    def deco(fn):
        CASES.append(pytest.param(fn, id=name, marks=list(marks)))
        return fn
    return deco


# data files (backend.data: DataError naming the file, line or column)
@case("file-malformed-jsonl-line")
def _(tmp, home, server):
    f = write(tmp / "bad.jsonl", '{"instruction": "a", "output": "b"}\n{"instruction": "c", \n')
    expect_error(DataError, r"bad\.jsonl: line 2 is not valid JSON", load_dataset_records, spec(f))


@case("file-jsonl-line-not-object")
def _(tmp, home, server):
    f = write(tmp / "list.jsonl", '[1, 2, 3]\n')
    expect_error(DataError, r"line 1 is a JSON list, expected an object", load_dataset_records,
                 spec(f))


@case("file-missing-mapped-column")
def _(tmp, home, server):
    f = write(tmp / "qa.jsonl", json.dumps({"id": 1, "passage": "c", "answer": "a"}) + "\n")
    expect_error(DataError, r"missing column 'query'.*columns \['answer', 'id', 'passage'\]",
                 load_dataset_records, spec(f, format="custom", kind="qa_abstractive",
                                            columns={"context": "passage", "prompt": "query",
                                                     "reference": "answer"}))


@case("file-empty")
def _(tmp, home, server):
    f = write(tmp / "empty.jsonl", "")
    expect_error(DataError, r"empty\.jsonl.*empty", load_dataset_records, spec(f))


@case("file-unsupported-type")
def _(tmp, home, server):
    f = write(tmp / "data.txt", "instruction: hi\n")
    expect_error(DataError, r"unsupported file type '\.txt'", load_dataset_records, spec(f))


@case("file-csv-ragged-rows")
def _(tmp, home, server):
    f = write(tmp / "ragged.csv", "instruction,output\nhi,there\nhow,are,you,today\n")
    expect_error(DataError, r"ragged\.csv.*expected 2 fields in line 3, saw 4",
                 load_dataset_records, spec(f))


@case("file-parquet-that-is-text")
def _(tmp, home, server):
    f = write(tmp / "fake.parquet", "instruction,output\nthis is not parquet at all,really\n")
    expect_error(DataError, r"fake\.parquet.*could not be read.*parquet", load_dataset_records,
                 spec(f))


@case("file-not-found")
def _(tmp, home, server):
    expect_error(DataError, r"data file not found: .*nope\.jsonl", load_dataset_records,
                 spec(tmp / "nope.jsonl"))


# real data quirks: each has a stated policy, a count in the preview and the run's events, no loss
@case("file-alpaca-empty-output")
def _(tmp, home, server):
    from backend.data import DataReport, preview

    rows = [{"instruction": "Say hi.", "input": "", "output": "Hi."},
            {"instruction": "Say nothing useful.", "input": "", "output": "   "},
            {"instruction": "Count to two.", "input": "", "output": "1, 2"}]
    f = write(tmp / "alpaca.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    report = DataReport()
    recs = load_dataset_records(spec(f), report)
    assert [r.reference for r in recs] == ["Hi.", None, "1, 2"]  # kept as a prompt, not lost
    assert report.no_reference == 1 and report.rows == 3
    notes = preview(spec(f)).notes
    assert any(re.search(r"1 of 3 records have no reference.*skipped by supervised training", n)
               for n in notes), notes


@case("file-squad-v2-unanswerable")
def _(tmp, home, server):
    from backend.data import UNANSWERABLE_REPLY, DataReport, preview

    rows = [{"id": "a", "title": "T", "context": "Port Elm was founded in 1801.",
             "question": "When was Port Elm founded?",
             "answers": {"text": ["1801"], "answer_start": [24]}},
            {"id": "b", "title": "T", "context": "Port Elm was founded in 1801.",
             "question": "Who is the mayor of Port Elm?", "answers": {"text": [], "answer_start": []}}]
    f = write(tmp / "squad_v2.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    report = DataReport()
    recs = load_dataset_records(spec(f), report)
    assert [r.reference for r in recs] == ["1801", UNANSWERABLE_REPLY]
    assert report.unanswerable == 1 and report.no_reference == 0
    assert any("1 of 2 questions have no answer (SQuAD v2 unanswerable)" in n
               for n in preview(spec(f)).notes)


@case("file-context-longer-than-max-length")
def _(tmp, home, server):
    from transformers import AutoTokenizer

    from backend.data import encode_examples, preview
    from backend.models import materialize_embedded
    from backend.records import Record

    article = " ".join(f"Sentence {i} of the report says the river rose {i} cm." for i in range(80))
    rows = [{"id": "long", "article": article, "highlights": "The river rose."},
            {"id": "short", "article": "The river rose 3 cm.", "highlights": "The river rose."}]
    f = write(tmp / "cnn.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    pv = preview(spec(f), max_length=128)
    assert any(re.search(r"about 1 of 2 records exceed max_length=128 tokens.*END of its context", n)
               for n in pv.notes), pv.notes
    tok = AutoTokenizer.from_pretrained(str(materialize_embedded()))
    recs = load_dataset_records(spec(f))
    qa_tail = Record(id="q", kind="qa_extractive", prompt="How far did it rise at the end?",
                     context=article, reference="79 cm")  # its answer lies in the cut end
    encoded, fit = encode_examples(tok, [(r, r.reference) for r in recs] + [(qa_tail, "79 cm")], 128)
    assert len(encoded) == 2 and all(len(e["input_ids"]) <= 128 for e in encoded)
    full = len(tok(article, add_special_tokens=False)["input_ids"])
    assert fit.context_cut == 1 and full - 128 < fit.context_tokens_cut < full
    assert fit.dropped_answer == 1 and fit.response_cut == 0
    # the whole reference is still learned: the labels end with the summary's tokens
    learned = [t for t in encoded[0]["labels"] if t != -100]
    assert "The river rose." in tok.decode(learned)
    events = " | ".join(m for _, m in fit.events())
    assert "truncation policy at max_length=128" in events
    assert f"1 of 3 examples had the end of their context cut ({fit.context_tokens_cut} tokens)" in events
    assert "1 of 3 extractive examples dropped" in events


@case("file-utf16-with-bom")
def _(tmp, home, server):
    from backend.data import preview

    text = "".join(json.dumps({"instruction": f"Grüße {i} — ☂", "output": f"ok {i}"},
                              ensure_ascii=False) + "\n" for i in range(3))
    for enc, name in (("utf-16", "utf-16-le"), ("utf-16-be", "utf-16-be")):
        bom = b"\xfe\xff" if enc == "utf-16-be" else b""
        f = write(tmp / f"{enc}.jsonl", bom + text.encode(enc))
        recs = load_dataset_records(spec(f))
        assert [r.prompt for r in recs] == [f"Grüße {i} — ☂" for i in range(3)]
        assert any(f"file is {name.upper()}" in n for n in preview(spec(f)).notes)
    f = write(tmp / "utf16.csv", "\ufeffinstruction,output\nGrüße,ok\n".encode("utf-16-le"))
    assert load_dataset_records(spec(f))[0].prompt == "Grüße"


@case("file-utf16-without-bom")
def _(tmp, home, server):
    f = write(tmp / "nobom.jsonl", (json.dumps({"instruction": "a", "output": "b"}) + "\n")
              .encode("utf-16-le"))
    expect_error(DataError, r"nobom\.jsonl: file looks UTF-16.*save it as UTF-8",
                 load_dataset_records, spec(f))


@case("file-unknown-kind-in-records")
def _(tmp, home, server):
    f = write(tmp / "rec.jsonl", json.dumps({"id": 1, "kind": "poetry", "prompt": "p"}) + "\n")
    expect_error(DataError, r"row 1: unknown kind 'poetry'", load_dataset_records, spec(f))


# configs (backend.config / CLI `validate` and `run`)
@case("config-negative-weight-cli")
def _(tmp, home, server):
    f = toml_file(tmp, config_text().replace('format = "alpaca"\n', 'format = "alpaca"\nweight = -1\n'))
    expect_cli(home, ["validate", str(f)], r"data\.0\.weight: weight must be >= 0.*-1")


@case("config-all-zero-weights")
def _(tmp, home, server):
    text = config_text().replace('format = "alpaca"\n', 'format = "alpaca"\nweight = 0\n')
    expect_error(ConfigError, r"mixture weights sum to zero", loads, text)


@case("config-judge-weights-all-zero")
def _(tmp, home, server):
    text = config_text("\n[judges]\nweights = { task = 0, faithfulness = 0, "
                       "instruction_following = 0 }\n")
    expect_error(ConfigError, r"judges\.weights: weights sum to zero", loads, text)


@case("config-budget-zero")
def _(tmp, home, server):
    text = config_text().replace('format = "alpaca"\n', 'format = "alpaca"\nbudget = 0\n')
    expect_error(ConfigError, r"data\.0\.budget: budget must be >= 1 example, got 0", loads, text)


@case("config-unknown-preset-cli")
def _(tmp, home, server):
    before = populate(home)
    expect_cli(home, ["run", "no_such_preset", "--detach"], r"unknown preset 'no_such_preset'; "
                                                            r"available: .*reset_demo")
    assert_intact(home, before)


@case("config-missing-file-cli")
def _(tmp, home, server):
    expect_cli(home, ["validate", str(tmp / "nowhere" / "my_run.toml")],
               r"(config file )?not found: .*my_run\.toml")


@case("config-unknown-stage-type-cli")
def _(tmp, home, server):
    f = toml_file(tmp, config_text(stages='\n[[stages]]\ntype = "sampel"\n'))
    expect_cli(home, ["validate", str(f)], r"stages\.0\.type: unknown stage type 'sampel'; use "
                                           r"one of \['train', 'sample'")


@case("config-bad-toml-cli")
def _(tmp, home, server):
    f = toml_file(tmp, 'name = "x"\n[model\nbase = "embedded"\n')
    expect_cli(home, ["validate", str(f)], r"bad\.toml is not valid TOML.*line 2")


@case("config-unknown-key")
def _(tmp, home, server):
    text = config_text().replace('base = "embedded"', 'base = "embedded"\nbsae = "typo"')
    expect_error(ConfigError, r"model\.bsae: extra inputs are not permitted", loads, text)


@case("config-threshold-above-one")
def _(tmp, home, server):
    stages = TRAIN + ('\n[[stages]]\ntype = "sample"\n[[stages]]\ntype = "judge"\n'
                      '[[stages]]\ntype = "select"\nthreshold = 1.5\n')
    expect_error(ConfigError, r"stages\.3\.threshold: .*less than or equal to 1.*1\.5", loads,
                 config_text(stages=stages))


@case("config-stage-refers-to-unknown-data")
def _(tmp, home, server):
    stages = TRAIN.replace("max_steps = 1", 'max_steps = 1\ndata = ["squad"]')
    expect_error(ConfigError, r"stages\.0\.data: unknown data set 'squad'", loads,
                 config_text(stages=stages))


@case("config-empty-stage-plan")
def _(tmp, home, server):
    expect_error(ConfigError, r"the stage plan is empty", loads, config_text(stages=""))


# checkpoints (backend.models.resolve_model, CLI `run` refused before any process starts)
@case("checkpoint-nonexistent-path-cli")
def _(tmp, home, server):
    before = populate(home)
    f = toml_file(tmp, config_text().replace('base = "embedded"',
                                             f'base = "{tmp / "no" / "such-ckpt"}"'))
    expect_cli(home, ["run", str(f), "--detach"],
               r"run refused.*model\.base: checkpoint path does not exist: .*such-ckpt")
    assert_intact(home, before)
    assert [p.name for p in Studio(home).runs_dir.iterdir()] == []


@case("checkpoint-pickle-only-folder")
def _(tmp, home, server):
    d = tmp / "pickled"
    write(d / "config.json", json.dumps({"model_type": "llama"}))
    write(d / "pytorch_model.bin", b"\x80\x02not really a pickle")
    write(d / "tokenizer.json", "{}")
    expect_error(ModelError, r"only pickle weights \(pytorch_model\.bin\).*allow_unsafe_weights",
                 resolve_model, str(d))


@case("checkpoint-folder-without-config")
def _(tmp, home, server):
    d = tmp / "weights-only"
    write(d / "model.safetensors", b"\x00" * 16)
    expect_error(ModelError, r"weights-only is not a model folder \(no config\.json", resolve_model,
                 str(d))


@case("checkpoint-gguf-file")
def _(tmp, home, server):
    f = write(tmp / "model.gguf", b"GGUF\x00")
    expect_error(ModelError, r"is a GGUF file", resolve_model, str(f))


@case("checkpoint-hub-id-offline")
def _(tmp, home, server):
    expect_error(ModelError, r"could not fetch 'no-such-org/no-such-model' from the model hub "
                             r"\(offline\?\)", resolve_model, "no-such-org/no-such-model", fetch=True)


@case("checkpoint-unknown-run-cli")
def _(tmp, home, server):
    before = populate(home)
    f = toml_file(tmp, config_text().replace('base = "embedded"', 'base = "run:nope-123"'))
    expect_cli(home, ["run", str(f), "--detach"],
               r"run refused.*no checkpoint found for run 'nope-123'")
    assert_intact(home, before)


@case("checkpoint-unknown-tag-of-known-run")
def _(tmp, home, server):
    populate(home)
    with Studio(home).open_log() as log:
        expect_error(ModelError, rf"no checkpoint found for run '{DONE_RUN}' tag 'nope'",
                     resolve_model, f"run:{DONE_RUN}:nope", checkpoint_lookup=log)


@case("checkpoint-bad-run-ref")
def _(tmp, home, server):
    expect_error(ModelError, r"bad run checkpoint reference 'run:'", resolve_model, "run:")


# OpenAI-compatible endpoints (backend.samplers openai backend, backend.judges llm_judge)
@case("endpoint-sampler-timeout")
def _(tmp, home, server):
    from backend.samplers import SamplerError

    t0 = time.time()
    expect_error(SamplerError, r"endpoint http://127\.0\.0\.1:\d+/slow/v1/chat/completions did not "
                               r"answer within 0\.5 s \(endpoint\.timeout_s\)", _sample,
                 server + "/slow/v1")
    assert time.time() - t0 < 10


@case("endpoint-sampler-garbage")
def _(tmp, home, server):
    from backend.samplers import SamplerError

    expect_error(SamplerError, r"/garbage/v1/chat/completions replied with something that is not "
                               r"JSON: '<html>", _sample, server + "/garbage/v1")


@case("endpoint-sampler-http-500")
def _(tmp, home, server):
    from backend.samplers import SamplerError

    expect_error(SamplerError, r"/fail/v1/chat/completions answered HTTP 500.*internal server error",
                 _sample, server + "/fail/v1")


@case("endpoint-sampler-connection-refused")
def _(tmp, home, server):
    from backend.samplers import SamplerError

    port = _closed_port()
    expect_error(SamplerError, rf"cannot reach endpoint http://127\.0\.0\.1:{port}/v1/chat/"
                               r"completions.*refused", _sample, f"http://127.0.0.1:{port}/v1")


@case("endpoint-sampler-bad-url")
def _(tmp, home, server):
    from backend.samplers import SamplerError

    expect_error(SamplerError, r"base_url must start with http:// or https://, got 'localhost:8000'",
                 _sampler, "localhost:8000")


@case("endpoint-llm-judge-timeout")
def _(tmp, home, server):
    err = _llm_judge_error(server + "/slow/v1")
    assert re.search(r"time(d)? ?out", err, re.I), err


@case("endpoint-llm-judge-garbage")
def _(tmp, home, server):
    err = _llm_judge_error(server + "/garbage/v1")
    assert err and re.search(r"json|unparsable|str|content|choices|decode|html", err, re.I), err


@case("endpoint-llm-judge-http-500")
def _(tmp, home, server):
    err = _llm_judge_error(server + "/fail/v1")
    assert re.search(r"500|internal server error", err, re.I), err


# the run log (CLI)
@case("runlog-not-a-database-cli")
def _(tmp, home, server):
    db = write(Studio(home).runlog_path, b"this is a text file, not SQLite\n" * 100)
    raw = db.read_bytes()
    expect_cli(home, ["list"], r"runlog\.db is not a ReSet Studio run log")
    assert db.read_bytes() == raw


@case("runlog-foreign-sqlite-cli")
def _(tmp, home, server):
    conn = sqlite3.connect(Studio(home).runlog_path)
    conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
    conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    conn.commit()
    conn.close()
    expect_cli(home, ["list"], r"is a SQLite file but not a ReSet Studio run log.*invoices")
    conn = sqlite3.connect(Studio(home).runlog_path)
    assert conn.execute("SELECT total FROM invoices").fetchall() == [(12.5,)]
    assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")} == \
        {"invoices"}
    conn.close()


@case("runlog-newer-schema-cli")
def _(tmp, home, server):
    populate(home)
    conn = sqlite3.connect(Studio(home).runlog_path)
    conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    conn.commit()
    conn.close()
    before = snapshot(home)
    expect_cli(home, ["list"], r"written by a newer ReSet Studio \(schema 99, this version reads "
                               r"up to \d+\); upgrade")
    assert_intact(home, before)


@case("runlog-unknown-run-status-cli")
def _(tmp, home, server):
    before = populate(home)
    expect_cli(home, ["status", "no-such-run"], r"no run matching 'no-such-run'")
    assert_intact(home, before)


@case("runlog-resume-succeeded-cli")
def _(tmp, home, server):
    before = populate(home)
    expect_cli(home, ["resume", DONE_RUN[:20]], rf"run {DONE_RUN} already succeeded")
    assert_intact(home, before)


@case("runlog-cancel-unknown-cli")
def _(tmp, home, server):
    before = populate(home)
    expect_cli(home, ["cancel", "no-such-run"], r"no run 'no-such-run'")
    assert_intact(home, before)


@case("runlog-cancel-finished-cli")
def _(tmp, home, server):
    before = populate(home)
    expect_cli(home, ["cancel", "done"], rf"run {DONE_RUN} is succeeded, not running")
    assert_intact(home, before)


# A full disk: RLIMIT_FSIZE in a child process makes every write past LIMIT bytes of a file fail
# with EFBIG (Python ignores SIGXFSZ), which is what SQLite and Python see on a full disk.
LIMIT = 64 * 1024


def _fsize_limit(limit: int = LIMIT):
    def pre():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


@case("runlog-disk-full-write-api")
def _(tmp, home, server):
    before = populate(home)
    script = (
        "import sys\n"
        "from backend.runlog import RunLog, RunLogError\n"
        "log = RunLog(sys.argv[1])\n"
        "rows = [{'run_id': sys.argv[2], 'stage_idx': 1, 'prompt_id': 1, 'cand_idx': 10 + i,\n"
        "         'text': 'x' * 5000} for i in range(200)]\n"
        "try:\n"
        "    log.add_samples(rows)\n"
        "except RunLogError as exc:\n"
        "    print('RunLogError:', exc)\n"
        "    sys.exit(3)\n")
    p = subprocess.run([sys.executable, "-c", script, str(Studio(home).runlog_path), DONE_RUN],
                       cwd=str(REPO), capture_output=True, text=True, timeout=CLI_TIMEOUT,
                       preexec_fn=_fsize_limit())
    shown = f"exit {p.returncode}\n{p.stdout}\n{p.stderr[-2000:]}"
    assert p.returncode == 3, shown
    assert re.search(r"run ?log.*runlog\.db.*(disk|full|write|I/O)", p.stdout, re.I), shown
    assert_intact(home, before)


@case("runlog-disk-full-cli-run-log-write")
def _(tmp, home, server):
    """`run`: the config file still fits, the run row (config text in the WAL) does not."""
    before = populate(home)
    f = toml_file(tmp, config_text().replace('name = "bad"', 'name = "bad"\ndescription = "' +
                                             "long " * 11_800 + '"'))
    assert f.stat().st_size < LIMIT
    expect_cli(home, ["run", str(f), "--detach"], r"run ?log.*(disk|full|write|I/O)",
               preexec=_fsize_limit())
    assert_intact(home, before)


@case("runlog-disk-full-cli-config-write")
def _(tmp, home, server):
    """`run`: not even the run's config.toml can be written."""
    before = populate(home)
    f = toml_file(tmp, config_text().replace('name = "bad"', 'name = "bad"\ndescription = "' +
                                             "long " * 20_000 + '"'))
    expect_cli(home, ["run", str(f), "--detach"], r"(disk|full|too large|cannot write)",
               preexec=_fsize_limit())
    assert_intact(home, before)


@case("runlog-disk-full-cli-open")
def _(tmp, home, server):
    """Opening needs a 32 KiB -shm file: on a full disk that is an I/O problem, not a bad file."""
    before = populate(home)
    msg = expect_cli(home, ["list"], r"runlog\.db.*(disk|I/O|write)", preexec=_fsize_limit(16_000))
    assert "not a ReSet Studio run log" not in msg
    assert_intact(home, before)


# judge CLI inputs
@case("judge-cli-bad-input-line")
def _(tmp, home, server):
    f = write(tmp / "answers.jsonl", json.dumps({"prompt": "p", "response": "r"}) + "\n{oops\n")
    expect_cli(home, ["judge", str(f), "-o", str(tmp / "out.jsonl"), "--judges", "rouge_l"],
               r"answers\.jsonl: line 2")
    assert not (tmp / "out.jsonl").exists()


@case("judge-cli-weights-not-json")
def _(tmp, home, server):
    f = write(tmp / "answers.jsonl", json.dumps({"prompt": "p", "response": "r"}) + "\n")
    expect_cli(home, ["judge", str(f), "-o", str(tmp / "out.jsonl"), "--weights", "task=1"],
               r"--weights.*(JSON|json)")


@pytest.mark.parametrize("bad_case", CASES)
def test_bad_input_is_named(bad_case, tmp_path, home, server, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    bad_case(tmp_path, home, server)


def test_table_is_broad():
    names = [p.id for p in CASES]
    assert len(names) == len(set(names)) >= 25
    for area in ("file-", "config-", "checkpoint-", "endpoint-", "runlog-"):
        assert sum(n.startswith(area) for n in names) >= 3, area
