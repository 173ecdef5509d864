import multiprocessing as mp
import sqlite3
from pathlib import Path

import pytest

from backend.records import Record
from backend.runlog import SCHEMA_VERSION, RunLog, RunLogError


def _log(tmp_path):
    log = RunLog(tmp_path / "runlog.db")
    log.create_run("r1", name="demo", preset="mtl_demo", config_toml="", run_dir=str(tmp_path))
    return log


def test_wal_and_schema_version(tmp_path):
    log = _log(tmp_path)
    assert log.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert log._version() == SCHEMA_VERSION
    assert {"runs", "stages", "metrics", "checkpoints", "prompts", "samples", "scores",
            "selections", "selection_items", "evals", "events"} <= set(log.table_names())


def _indexes(log, table):
    return {r[1] for r in log.conn.execute(f"PRAGMA index_list({table})")}


def test_new_logs_refuse_rows_without_their_keys(tmp_path):
    log = _log(tmp_path)
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        log.add_samples([{"run_id": "r1", "stage_idx": 0, "cand_idx": 0, "text": "no prompt"}])
    with pytest.raises(sqlite3.IntegrityError, match="NOT NULL"):
        log._insert("metrics", [{"run_id": "r1", "stage_idx": 0, "step": 2, "name": None, "value": 1.0}])
    assert log.count("samples") == 0 and log.count("metrics") == 0
    links = {(r[2], r[3], r[4]) for r in log.conn.execute("PRAGMA foreign_key_list(scores)")}
    assert links == {("runs", "run_id", "id"), ("samples", "sample_id", "id")}


def test_writes_are_idempotent(tmp_path):
    log = _log(tmp_path)
    assert log.log_metrics("r1", 0, 1, {"loss": 2.0, "learning_rate": 1e-4}) == 2
    assert log.log_metrics("r1", 0, 1, {"loss": 2.0, "learning_rate": 1e-4}) == 0
    ids = log.add_prompts("r1", 1, [Record(id="a", kind="instruction", prompt="p")])
    row = {"run_id": "r1", "stage_idx": 1, "prompt_id": ids["a"], "cand_idx": 0, "text": "t",
           "params": {"temperature": 0.7}}
    assert log.add_samples([dict(row)]) == 1
    assert log.add_samples([dict(row)]) == 0
    assert log.add_prompts("r1", 1, [Record(id="a", kind="instruction", prompt="p")]) == ids
    assert log.count("samples") == 1 and log.count("prompts") == 1


def test_checkpoint_tag_upsert(tmp_path):
    log = _log(tmp_path)
    a = log.add_checkpoint("r1", 0, 5, "mtl", "/a", "adapter", "embedded")
    b = log.add_checkpoint("r1", 0, 9, "mtl", "/b", "adapter", "embedded")
    assert a == b
    assert log.find_checkpoint("r1", "mtl")["step"] == 9
    assert log.find_checkpoint("r1")["path"] == "/b"
    assert log.find_checkpoint("nope") is None


def test_incremental_read(tmp_path):
    log = _log(tmp_path)
    for step in range(10):
        log.log_metrics("r1", 0, step, {"loss": 1.0 / (step + 1)})
    first = log.read_since("metrics", 0, limit=4)
    assert [r["step"] for r in first] == [0, 1, 2, 3]
    rest = log.read_since("metrics", first[-1]["id"])
    assert [r["step"] for r in rest] == list(range(4, 10))
    assert log.read_since("metrics", rest[-1]["id"]) == []
    with pytest.raises(ValueError):
        log.read_since("runs", 0)


def test_not_a_database(tmp_path):
    bad = tmp_path / "runlog.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(RunLogError, match="not a ReSet Studio run log"):
        RunLog(bad)


def test_foreign_sqlite_file(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE people (name TEXT)")
    con.commit()
    con.close()
    with pytest.raises(RunLogError, match="not a ReSet Studio run log"):
        RunLog(path)


def test_newer_schema_refused(tmp_path):
    log = _log(tmp_path)
    log.conn.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    log.close()
    with pytest.raises(RunLogError, match="newer ReSet Studio"):
        RunLog(tmp_path / "runlog.db")


def _writer(path, run_id, n):
    log = RunLog(path)
    log.create_run(run_id, name=run_id, preset="x", config_toml="", run_dir="")
    for step in range(n):
        log.log_metrics(run_id, 0, step, {"loss": float(step), "grad_norm": 1.0})
        log.event(run_id, f"step {step}")
    log.close()


def test_concurrent_writers_no_lock_errors(tmp_path):
    path = tmp_path / "runlog.db"
    RunLog(path).close()
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, f"run{i}", 150)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    log = RunLog(path)
    for i in range(4):
        assert log.count("metrics", run_id=f"run{i}") == 300
        assert log.count("events", run_id=f"run{i}") == 150


def test_migrates_version_1_log(tmp_path):
    log = _log(tmp_path)
    log.log_metrics("r1", 0, 1, {"loss": 1.5})
    log.conn.execute("DROP INDEX idx_metrics_run_id_id")
    log.conn.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    log.close()
    log = RunLog(tmp_path / "runlog.db")
    assert log._version() == SCHEMA_VERSION == 3
    assert "idx_metrics_run_id_id" in _indexes(log, "metrics")
    assert log.read_since("metrics", 0, run_id="r1")[0]["value"] == 1.5


def _v2_log(path):
    """A log written before the explicit DDL: sqlite-utils tables, no NOT NULL or REFERENCES."""
    con = sqlite3.connect(path)
    con.executescript((Path(__file__).parent / "fixtures" / "runlog_v2.sql").read_text())
    return con


def test_opens_and_extends_a_version_2_log(tmp_path):
    """Read through the queries the GUI makes, then written to, as it is."""
    from backend import queries as q

    path = tmp_path / "runlog.db"
    _v2_log(path).close()
    log = RunLog(path)  # migrated on open (version 3 adds a column), its tables kept
    assert log._version() == SCHEMA_VERSION and "idx_samples_run_id_id" in _indexes(log, "samples")
    run = log.find_run("demo")
    rid = run["id"]
    assert run["status"] == "succeeded" and [s["name"] for s in log.get_stages(rid)] == ["sample", "select"]
    sel = q.selection(log, rid, "select")
    assert [(r["key"], r["text"]) for r in q.selected_samples(log, sel["id"])] == [("b", "b1")]
    assert [c["judged"] for c in q.candidates(log, rid, 0)] == [1, 1, 1, 1]
    page = q.fetch_prompt_page(log, q.PromptFilter(run_id=rid, stage_idx=0, selection_id=sel["id"]))
    assert [(r["key"], r["n"], r["n_acc"]) for r in page] == [("a", 2, 0), ("b", 2, 1)]
    assert [e["checkpoint_tag"] for e in q.evals(log, rid)] == ["base"]
    # the old tables take new rows, idempotently
    assert log.log_metrics(rid, 1, 1, {"accept_rate/instruction": 1.0}) == 1
    assert log.log_metrics(rid, 1, 1, {"accept_rate/instruction": 1.0}) == 0
    log.update_run(rid, status="running")
    log.event(rid, "resumed")
    assert log.get_run(rid)["status"] == "running"
    assert [e["message"] for e in log.read_since("events", 0, run_id=rid)][-1] == "resumed"
    log.close()


def test_migrates_a_version_1_log_from_the_fixture(tmp_path):
    path = tmp_path / "runlog.db"
    con = _v2_log(path)
    for table in ("metrics", "samples", "scores"):  # what version 1 lacked
        con.execute(f"DROP INDEX idx_{table}_run_id_id")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    con.commit()
    con.close()
    with RunLog(path, readonly=True) as ro:  # a viewer reads it and does not migrate
        assert ro._version() == 1 and len(ro.read_since("samples", 0)) == 4
    log = RunLog(path)
    assert log._version() == SCHEMA_VERSION
    assert all(f"idx_{t}_run_id_id" in _indexes(log, t) for t in ("metrics", "samples", "scores"))
    plan = " ".join(r[3] for r in log.conn.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM samples WHERE id > ? AND run_id = ? ORDER BY id", (0, "x")))
    assert "idx_samples_run_id_id" in plan
