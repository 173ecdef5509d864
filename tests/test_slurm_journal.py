"""The cross-machine run log: a job's rows travel through an append-only JSONL journal and are
ingested into the app's log idempotently, surviving a kill in the middle of a batch."""
import json
import shutil

import pytest

from backend.journal import Exporter, ingest, journal_path, repair_tail
from backend.runlog import RunLog

RUN = "run-slurm"


def _content(log, run_id):
    """Everything of one run, links followed by natural keys (ids differ between logs)."""
    q = log.query
    return {
        "run": {k: v for k, v in q("SELECT status, error, exit_code FROM runs WHERE id=?", (run_id,))[0].items()},
        "stages": q("SELECT idx, name, status, done, total FROM stages WHERE run_id=? ORDER BY idx", (run_id,)),
        "metrics": q("SELECT stage_idx, step, name, value FROM metrics WHERE run_id=? ORDER BY stage_idx, step, name", (run_id,)),
        "events": q("SELECT message, level FROM events WHERE run_id=? ORDER BY time, message", (run_id,)),
        "samples": q("SELECT p.key, s.cand_idx, s.text FROM samples s JOIN prompts p ON p.id=s.prompt_id "
                     "WHERE s.run_id=? ORDER BY p.key, s.cand_idx", (run_id,)),
        "scores": q("SELECT p.key, s.cand_idx, sc.judge, sc.value FROM scores sc JOIN samples s ON "
                    "s.id=sc.sample_id JOIN prompts p ON p.id=s.prompt_id WHERE sc.run_id=? "
                    "ORDER BY p.key, s.cand_idx, sc.judge", (run_id,)),
        "selection": q("SELECT sel.name, p.key, s.cand_idx, it.rank FROM selection_items it JOIN selections sel "
                       "ON sel.id=it.selection_id JOIN samples s ON s.id=it.sample_id JOIN prompts p ON "
                       "p.id=it.prompt_id WHERE sel.run_id=? ORDER BY it.rank", (run_id,)),
        "checkpoints": q("SELECT tag, step, path FROM checkpoints WHERE run_id=? ORDER BY tag", (run_id,)),
        "evals": q("SELECT e.checkpoint_tag, c.tag AS linked, e.dataset, e.task_score FROM evals e LEFT JOIN "
                   "checkpoints c ON c.id=e.checkpoint_id WHERE e.run_id=? ORDER BY e.dataset", (run_id,)),
    }


class Rec:
    def __init__(self, i):
        self.id, self.kind, self.source = f"p{i}", "instruction", "d"
        self.prompt, self.context, self.reference = f"prompt {i}", None, f"ref {i}"
        self.instruction_id_list, self.kwargs = None, None


def _job_writes(log, part):
    """A job's writes in two parts (as if a flush happened between them)."""
    if part == 0:
        log.update_run(RUN, status="running")
        log.stage_start(RUN, 0, "mtl", "train")
        for step in (1, 2, 3):
            log.log_metrics(RUN, 0, step, {"loss": 3.0 - step / 10})
        log.add_checkpoint(RUN, 0, 2, "mtl@2", "/shared/runs/x/00-mtl/checkpoint-2", "adapter", "embedded")
        log.event(RUN, "training", stage_idx=0)
        log.stage_end(RUN, 0, "succeeded", "done")
        log.add_checkpoint(RUN, 0, 3, "mtl", "/shared/runs/x/00-mtl/final", "adapter", "embedded")
        return
    log.stage_start(RUN, 1, "sample", "sample")
    ids = log.add_prompts(RUN, 1, [Rec(i) for i in range(3)])
    log.add_samples([{"run_id": RUN, "stage_idx": 1, "prompt_id": ids[f"p{i}"], "cand_idx": c,
                      "text": f"answer {i}.{c}"} for i in range(3) for c in range(2)])
    sids = {(r["prompt_id"], r["cand_idx"]): r["id"] for r in log.query("SELECT * FROM samples WHERE run_id=?", (RUN,))}
    log.add_scores([{"run_id": RUN, "sample_id": sid, "judge": "combined", "value": 0.1 * k}
                    for k, sid in enumerate(sorted(sids.values()))])
    best = sorted(sids.items())[:2]
    log.add_selection(RUN, 2, "select", {"threshold": 0.1},
                      [{"sample_id": sid, "prompt_id": pc[0], "combined": 0.5, "rank": r + 1}
                       for r, (pc, sid) in enumerate(best)])
    ck = log.find_checkpoint(RUN, "mtl")["id"]
    log.add_evals([{"run_id": RUN, "stage_idx": 3, "checkpoint_id": ck, "checkpoint_tag": "mtl",
                    "dataset": "_all", "task_score": 0.4}])
    log.update_run(RUN, status="succeeded", exit_code=0)


@pytest.fixture
def logs(tmp_path):
    app = RunLog(tmp_path / "app.db")
    app.create_run(RUN, name="s", preset="custom", config_toml="x", run_dir=str(tmp_path / "run"))
    (tmp_path / "run").mkdir()
    app.close()
    # the job's node-local copy (the seed), then the app keeps writing other runs' rows
    shutil.copy(tmp_path / "app.db", tmp_path / "node.db")
    app = RunLog(tmp_path / "app.db")
    app.create_run("other", name="o", preset="custom", config_toml="x", run_dir="/o")
    app.log_metrics("other", 0, 1, {"loss": 9.0})
    app.add_prompts("other", 1, [Rec(i) for i in range(5)])
    node = RunLog(tmp_path / "node.db")
    yield app, node, journal_path(tmp_path / "run")
    app.close()
    node.close()


def test_journal_round_trip_is_idempotent_and_survives_a_kill_mid_batch(logs):
    app, node, journal = logs
    exp = Exporter(node.path, RUN, journal)
    exp.mark_seen()
    _job_writes(node, 0)
    n0 = exp.flush()
    _job_writes(node, 1)
    n1 = exp.flush()
    assert n0 > 0 and n1 > 0 and exp.flush() == 0  # nothing new, nothing written
    lines = journal.read_text().splitlines()
    assert len(lines) == n0 + n1 and all(json.loads(x)["t"] for x in lines)

    applied = ingest(app, journal, max_lines=n0)  # in two batches, each with its offset
    assert applied == len(lines)
    want = _content(node, RUN)
    assert _content(app, RUN) == want
    assert ingest(app, journal) == 0  # again: nothing applied twice
    assert _content(app, RUN) == want
    assert app.count("events", run_id=RUN) == node.count("events", run_id=RUN)
    assert app.query("SELECT value FROM metrics WHERE run_id='other'")[0]["value"] == 9.0


def test_kill_mid_batch_rolls_back_and_the_next_ingest_completes(logs):
    app, node, journal = logs
    exp = Exporter(node.path, RUN, journal)
    exp.mark_seen()
    _job_writes(node, 0)
    _job_writes(node, 1)
    exp.flush()
    before = _content(app, RUN)
    with pytest.raises(KeyboardInterrupt):
        ingest(app, journal, _fault_after=5)
    assert _content(app, RUN) == before  # the batch rolled back whole
    assert app.query("SELECT count(*) AS n FROM journal_offsets")[0]["n"] == 0
    ingest(app, journal)
    assert _content(app, RUN) == _content(node, RUN)
    assert ingest(app, journal) == 0 and _content(app, RUN) == _content(node, RUN)


def test_a_partly_written_line_waits_and_a_restarted_writer_cuts_it(logs):
    app, node, journal = logs
    exp = Exporter(node.path, RUN, journal)
    exp.mark_seen()
    _job_writes(node, 0)
    exp.flush()
    good = journal.read_bytes()
    with open(journal, "ab") as fh:  # the writer was killed mid-line
        fh.write(b'{"t": "events", "row": {"run_id": "run-sl')
    assert ingest(app, journal) == len(good.splitlines())
    assert repair_tail(journal) > 0 and journal.read_bytes() == good
    _job_writes(node, 1)
    exp.flush()
    ingest(app, journal)
    assert _content(app, RUN) == _content(node, RUN)


def test_a_requeued_job_replays_the_journal_over_its_seed(logs, tmp_path):
    """The next attempt of a job starts from the same seed, replays the journal, and its
    exporter writes only what is new."""
    app, node, journal = logs
    seed = tmp_path / "seed.db"
    shutil.copy(node.path, seed)
    exp = Exporter(node.path, RUN, journal)
    exp.mark_seen()
    _job_writes(node, 0)
    exp.flush()
    exp.close()
    node2 = RunLog(shutil.copy(seed, tmp_path / "node2.db"))
    ingest(node2, journal)
    exp2 = Exporter(node2.path, RUN, journal)
    exp2.mark_seen()
    assert exp2.flush() == 0
    _job_writes(node2, 1)
    exp2.flush()
    ingest(app, journal)
    assert _content(app, RUN) == _content(node2, RUN)
    assert [m["step"] for m in app.query("SELECT step FROM metrics WHERE run_id=? AND name='loss'", (RUN,))] == [1, 2, 3]
    node2.close()
