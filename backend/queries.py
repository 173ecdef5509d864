"""Every read of the run log beyond one table's own rows: the GUI, the CLI and the stages call
these functions and never write SQL. ``backend/runlog.py`` owns the schema and the writes.

Rows are TypedDicts: plain dicts at run time (cheap, and what the poller's signals carry), with
their columns spelled out for readers and type checkers. Every function takes an open ``RunLog``;
each thread uses its own. Queries lean on the unique natural-key indexes and the per-run
``(run_id, id)`` indexes; the comments say where a query shape was chosen for speed.
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple, TypedDict

if TYPE_CHECKING:
    from .runlog import RunLog


# ---- rows of the tables (SELECT *) ----------------------------------------------------------------
RunRow = TypedDict("RunRow", {"id": str, "name": str, "preset": str, "status": str,
    "config_toml": str, "run_dir": str, "parent_run_id": str | None, "pid": int | None,
    "created_at": float, "started_at": float | None, "ended_at": float | None,
    "heartbeat_at": float | None, "exit_code": int | None, "signal": int | None,
    "error": str | None, "error_tail": str | None, "stderr_tail": str | None,
    "current_stage": int | None, "cancel_requested": int, "updated_at": float,
    "experiment": str | None})
StageRow = TypedDict("StageRow", {"id": int, "run_id": str, "idx": int, "name": str, "type": str,
    "status": str, "started_at": float | None, "ended_at": float | None, "done": int | None,
    "total": int | None, "message": str | None, "updated_at": float})
CheckpointRow = TypedDict("CheckpointRow", {"id": int, "run_id": str, "stage_idx": int,
    "step": int, "tag": str, "path": str, "kind": str, "base": str | None, "created_at": float})
PromptRow = TypedDict("PromptRow", {"id": int, "run_id": str, "stage_idx": int, "key": str,
    "kind": str, "source": str | None, "prompt": str, "context": str | None,
    "reference": str | None, "constraints": str | None})
SampleRow = TypedDict("SampleRow", {"id": int, "run_id": str, "stage_idx": int, "prompt_id": int,
    "cand_idx": int, "decoding": str, "params": Any, "seed": int | None, "text": str,
    "n_tokens": int | None, "finish_reason": str | None, "created_at": float})
SelectionRow = TypedDict("SelectionRow", {"id": int, "run_id": str, "stage_idx": int | None,
    "name": str, "policy": str, "n_selected": int, "created_at": float})
EvalRow = TypedDict("EvalRow", {"id": int, "run_id": str, "stage_idx": int,
    "checkpoint_id": int | None, "checkpoint_tag": str, "dataset": str, "category": str | None,
    "n": int, "faithfulness": float | None, "instruction_following": float | None,
    "task_score": float | None, "mean_length": float | None, "faithfulness_judge": str | None,
    "details": str | None, "created_at": float})


def _rows(log: RunLog, sql: str, args: tuple | list = ()) -> list[Any]:
    """Rows as dicts, built from plain tuples: sqlite3.Row costs a third more on 100 000 rows."""
    cur = log.conn.cursor()
    cur.row_factory = None
    try:
        cur.execute(sql, tuple(args))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        cur.close()


# ---- runs and stages (the poller re-reads them only when this signature changes) ------------------
def data_version(log: RunLog) -> int:
    """SQLite's ``PRAGMA data_version`` on this connection: it changes only when ANOTHER
    connection commits, so a poller that keeps its connection open can skip every other query
    while it stays the same (its own writes do not move it)."""
    return int(log.conn.execute("PRAGMA data_version").fetchone()[0])


def table_signature(log: RunLog, table: str) -> tuple:
    """(count, newest, sum of updated_at) of runs or stages: changes whenever any row changes."""
    if table not in ("runs", "stages"):
        raise ValueError(f"no updated_at in {table}")
    return tuple(log.conn.execute(
        f"SELECT count(*), max(updated_at), total(updated_at) FROM {table}").fetchone())


def all_stages(log: RunLog) -> list[StageRow]:
    return _rows(log, "SELECT * FROM stages ORDER BY run_id, idx")


SlurmJob = TypedDict("SlurmJob", {"job_id": str, "node": str, "state": str, "reason": str,
                                  "attempt": int})


def slurm_job(run: RunRow) -> SlurmJob | None:
    """The Slurm job a run's supervisor last recorded (``slurm.json`` in the run folder, kept by
    backend.slurm: the run log itself has no job column), or None for a run that never had one.
    ``node`` is empty while the job waits."""
    from .slurm import job_info

    info = job_info(run["run_dir"]) if run.get("run_dir") else {}
    if not info.get("job_id"):
        return None
    unset = ("", "None", "(null)")  # scontrol's words for "no node yet" and "no reason"
    node, reason = (str(info.get(k) or "") for k in ("node", "reason"))
    return {"job_id": str(info["job_id"]), "node": "" if node in unset else node,
            "state": str(info.get("state") or ""), "reason": "" if reason in unset else reason,
            "attempt": int(info.get("attempt") or 1)}


def config_dict(config_toml: str | None) -> dict[str, Any]:
    """A run's stored config TOML as a plain dict; {} when missing or unreadable, for readers
    that only want what they can get (reports, exports, the runs table)."""
    try:
        return tomllib.loads(config_toml or "")
    except (tomllib.TOMLDecodeError, TypeError):
        return {}


# ---- selections -----------------------------------------------------------------------------------
def selections(log: RunLog, run_id: str) -> list[SelectionRow]:
    return _rows(log, "SELECT * FROM selections WHERE run_id = ? ORDER BY id", (run_id,))


def selection(log: RunLog, run_id: str, name: str) -> SelectionRow | None:
    rows = _rows(log, "SELECT * FROM selections WHERE run_id = ? AND name = ?", (run_id, name))
    return rows[0] if rows else None


SelectedSample = TypedDict("SelectedSample", {"key": str, "kind": str, "source": str | None,
    "prompt": str, "context": str | None, "reference": str | None, "constraints": str | None,
    "text": str, "combined": float, "rank": int})


def selected_samples(log: RunLog, selection_id: int) -> list[SelectedSample]:
    """The chosen samples with their prompts, in selection order (training and export read these)."""
    return _rows(log, "SELECT p.key, p.kind, p.source, p.prompt, p.context, p.reference, "
                      "p.constraints, s.text, it.combined, it.rank FROM selection_items it "
                      "JOIN samples s ON s.id = it.sample_id JOIN prompts p ON p.id = s.prompt_id "
                      "WHERE it.selection_id = ? ORDER BY it.id", (selection_id,))


def selection_kinds(log: RunLog, selection_id: int) -> dict[str, int]:
    """kind -> number of selected samples, in kind order."""
    return dict(log.conn.execute(
        "SELECT p.kind, COUNT(*) FROM selection_items it JOIN prompts p ON p.id = it.prompt_id "
        "WHERE it.selection_id = ? GROUP BY p.kind ORDER BY p.kind", (selection_id,)).fetchall())


def metric_values(log: RunLog, run_id: str, stage_idx: int, prefix: str) -> dict[str, float]:
    """name -> value of a stage's metrics named prefix* (the last step's where several), in name
    order; e.g. a select stage's "accept_rate/<kind>"."""
    esc = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return dict(log.conn.execute(
        "SELECT name, value FROM metrics WHERE run_id = ? AND stage_idx = ? AND name LIKE ? "
        "ESCAPE '\\' ORDER BY name, step", (run_id, stage_idx, esc + "%")).fetchall())


def last_metric(log: RunLog, run_id: str, stage_idx: int, name: str) -> tuple[int, float] | None:
    """(step, value) of a stage's metric at its latest step."""
    row = log.conn.execute("SELECT step, value FROM metrics WHERE run_id = ? AND stage_idx = ? "
                           "AND name = ? ORDER BY step DESC LIMIT 1",
                           (run_id, stage_idx, name)).fetchone()
    return (int(row[0]), float(row[1])) if row else None


# ---- samples and scores of a stage ----------------------------------------------------------------
def sample_keys(log: RunLog, run_id: str, stage_idx: int) -> set[tuple[int, int]]:
    """(prompt_id, cand_idx) of the samples already stored: what a resumed stage skips."""
    return {(r[0], r[1]) for r in log.conn.execute(
        "SELECT prompt_id, cand_idx FROM samples WHERE run_id = ? AND stage_idx = ?",
        (run_id, stage_idx))}


def sample_totals(log: RunLog, run_id: str, stage_idx: int) -> tuple[int, int]:
    """(samples, generated tokens) of a stage so far: the progress of shard processes."""
    n, tokens = log.conn.execute("SELECT count(*), coalesce(sum(n_tokens), 0) FROM samples "
                                 "WHERE run_id = ? AND stage_idx = ?", (run_id, stage_idx)).fetchone()
    return int(n), int(tokens)


UnjudgedSample = TypedDict("UnjudgedSample", {"sample_id": int, "text": str, "key": str,
    "kind": str, "source": str | None, "prompt": str, "context": str | None,
    "reference": str | None, "constraints": str | None})


def unjudged_samples(log: RunLog, run_id: str, stage_idx: int) -> list[UnjudgedSample]:
    """Samples of a stage without a ``combined`` score, with their prompt fields, in id order."""
    return _rows(log, "SELECT s.id AS sample_id, s.text, p.key, p.kind, p.source, p.prompt, "
                      "p.context, p.reference, p.constraints FROM samples s JOIN prompts p ON "
                      "p.id = s.prompt_id WHERE s.run_id = ? AND s.stage_idx = ? AND NOT EXISTS "
                      "(SELECT 1 FROM scores sc WHERE sc.sample_id = s.id AND sc.judge = 'combined') "
                      "ORDER BY s.id", (run_id, stage_idx))


CandidateRow = TypedDict("CandidateRow", {"sample_id": int, "prompt_id": int, "kind": str,
    "prompt_key": str, "cand_idx": int, "decoding": str, "n_tokens": int | None,
    "task": float | None, "faithfulness": float | None, "instruction_following": float | None,
    "stored_combined": float | None, "judged": int})


# Correlated look-ups on the unique (sample_id, judge) index: faster than joining and grouping
# (about 1 s for 100 000 samples with six score rows each on a 2-core machine).
_CANDIDATES_SQL = """
SELECT s.id AS sample_id, s.prompt_id AS prompt_id, p.kind AS kind, p.key AS prompt_key,
       s.cand_idx AS cand_idx, s.decoding AS decoding, s.n_tokens AS n_tokens,
       (SELECT value FROM scores WHERE sample_id = s.id AND judge = 'cat:task') AS task,
       (SELECT value FROM scores WHERE sample_id = s.id AND judge = 'cat:faithfulness')
           AS faithfulness,
       (SELECT value FROM scores WHERE sample_id = s.id AND judge = 'cat:instruction_following')
           AS instruction_following,
       (SELECT value FROM scores WHERE sample_id = s.id AND judge = 'combined') AS stored_combined,
       EXISTS (SELECT 1 FROM scores WHERE sample_id = s.id AND judge = 'combined') AS judged
FROM samples s JOIN prompts p ON p.id = s.prompt_id
WHERE s.run_id = ? AND s.stage_idx = ?
ORDER BY s.id
"""


def candidates(log: RunLog, run_id: str, stage_idx: int) -> list[CandidateRow]:
    """Per sample of a sample stage: ids, kind, decoding, length and stored category scores
    (``judged`` is false for samples the judge stage has not reached)."""
    return _rows(log, _CANDIDATES_SQL, (run_id, stage_idx))


EvalItem = TypedDict("EvalItem", {"sample_id": int, "key": str, "kind": str,
    "dataset": str | None, "n_tokens": int | None, "params": str | None,
    "finish_reason": str | None, "task": float | None, "faithfulness": float | None,
    "instruction_following": float | None, "combined": float | None, "ifeval": str | None})


def eval_items(log: RunLog, run_id: str, stage_idx: int, tag: str) -> list[EvalItem]:
    """The scored generations of one checkpoint of an evaluate stage (keys "<tag>|<record id>")."""
    prefix = f"{tag}|"
    return _rows(log, """
        SELECT s.id AS sample_id, p.key AS key, p.kind AS kind, p.source AS dataset,
               s.n_tokens AS n_tokens, s.params AS params, s.finish_reason AS finish_reason,
               MAX(CASE WHEN sc.judge = 'cat:task' THEN sc.value END) AS task,
               MAX(CASE WHEN sc.judge = 'cat:faithfulness' THEN sc.value END) AS faithfulness,
               MAX(CASE WHEN sc.judge = 'cat:instruction_following' THEN sc.value END)
                   AS instruction_following,
               MAX(CASE WHEN sc.judge = 'combined' THEN sc.value END) AS combined,
               MAX(CASE WHEN sc.judge = 'ifeval' THEN sc.details END) AS ifeval
        FROM samples s JOIN prompts p ON p.id = s.prompt_id
        LEFT JOIN scores sc ON sc.sample_id = s.id
        WHERE s.run_id = ? AND s.stage_idx = ? AND substr(p.key, 1, ?) = ?
        GROUP BY s.id ORDER BY s.id""", (run_id, stage_idx, len(prefix), prefix))


class SampleStage(NamedTuple):
    idx: int
    n_samples: int
    name: str | None


def sample_stages(log: RunLog, run_id: str) -> list[SampleStage]:
    """Stages of a run that hold selection candidates (not evaluation generations)."""
    stages = {r[0]: (r[1], r[2]) for r in log.conn.execute(
        "SELECT idx, name, type FROM stages WHERE run_id = ?", (run_id,))}
    out, idx = [], -1
    while True:  # distinct stage_idx by skipping along the (run_id, stage_idx) index
        row = log.conn.execute("SELECT stage_idx FROM samples WHERE run_id = ? AND stage_idx > ? "
                               "ORDER BY stage_idx LIMIT 1", (run_id, idx)).fetchone()
        if row is None:
            return out
        idx = row[0]
        name, type_ = stages.get(idx, (None, None))
        if type_ in (None, "sample"):
            n = log.conn.execute("SELECT COUNT(*) FROM samples WHERE run_id = ? AND stage_idx = ?",
                                 (run_id, idx)).fetchone()[0]
            out.append(SampleStage(idx, n, name))


ScoreValue = TypedDict("ScoreValue", {"value": float | None, "kind": str, "accepted": int})


def score_values(log: RunLog, run_id: str, judge: str, selection_id: int | None) -> list[ScoreValue]:
    """One judge's score of every sample of a run; with a selection, only the samples of the
    stage it selected from, flagged accepted or not."""
    if selection_id is None:
        return _rows(log, "SELECT sc.value AS value, p.kind AS kind, 0 AS accepted FROM scores sc "
                          "JOIN samples s ON s.id = sc.sample_id JOIN prompts p ON p.id = s.prompt_id "
                          "WHERE sc.run_id = ? AND sc.judge = ?", (run_id, judge))
    return _rows(log, "SELECT sc.value AS value, p.kind AS kind, (it.id IS NOT NULL) AS accepted "
                      "FROM scores sc JOIN samples s ON s.id = sc.sample_id "
                      "JOIN prompts p ON p.id = s.prompt_id LEFT JOIN selection_items it "
                      "ON it.selection_id = ? AND it.sample_id = sc.sample_id "
                      "WHERE sc.run_id = ? AND sc.judge = ? AND s.stage_idx = "
                      "(SELECT s2.stage_idx FROM selection_items i2 JOIN samples s2 "
                      " ON s2.id = i2.sample_id WHERE i2.selection_id = ? LIMIT 1)",
                 (selection_id, run_id, judge, selection_id))


# ---- evaluations ----------------------------------------------------------------------------------
class EvalWithRun(EvalRow):
    run_name: str | None


def evals(log: RunLog, run_id: str | None = None) -> list[EvalWithRun]:
    """Evaluation rows (of every run, or one) with the run's name: runs oldest first, then the
    base model before checkpoints, and each checkpoint's "_all" row after its data sets."""
    where, args = ("WHERE e.run_id = ?", (run_id,)) if run_id is not None else ("", ())
    return _rows(log, f"SELECT e.*, r.name AS run_name FROM evals e LEFT JOIN runs r ON "
                      f"r.id = e.run_id {where} ORDER BY r.created_at, e.run_id, "
                      f"COALESCE(e.checkpoint_id, -1), e.checkpoint_tag, e.dataset = '_all', "
                      f"e.dataset", args)


# ---- sample inspector: keyset-paged prompt list and per-prompt candidates -------------------------
@dataclass
class PromptFilter:
    run_id: str | None = None
    stage_idx: int | None = None
    key_prefix: str | None = None        # "<checkpoint tag>" for evaluation generations
    kind: str | None = None
    selection_id: int | None = None
    accepted: bool | None = None         # relative to selection_id; None = all
    min_score: float | None = None       # on the prompt's best combined score
    max_score: float | None = None
    text: str | None = None              # LIKE on the prompt text

    def where(self, paging: bool = False) -> tuple[str, list[Any]]:
        """SQL condition on prompts p. paging=True: walk the rowid (ORDER BY id LIMIT n stops
        after n matches) instead of the (run_id, stage_idx, key) index, which would evaluate the
        filters on every prompt of the stage and sort them, for each page."""
        plus = "+" if paging and not self.key_prefix else ""
        cond, args = [f"{plus}p.run_id = ?"], [self.run_id]
        if self.stage_idx is not None:
            cond.append(f"{plus}p.stage_idx = ?")
            args.append(self.stage_idx)
        if self.key_prefix:
            # range on the unique (run_id, stage_idx, key) index: '}' sorts right after '|'
            cond.append("p.key >= ? AND p.key < ?")
            args += [f"{self.key_prefix}|", f"{self.key_prefix}}}"]
        if self.kind:
            cond.append("p.kind = ?")
            args.append(self.kind)
        if self.text:
            esc = self.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            cond.append("p.prompt LIKE ? ESCAPE '\\'")
            args.append(f"%{esc}%")
        if self.selection_id is not None and self.accepted is not None:
            # CROSS JOIN pins the loop order: the prompt's few samples (unique prompt_id index),
            # then one lookup each in (selection_id, sample_id); the planner's own choice scans
            # the whole selection per prompt (minutes on 100 000 samples)
            cond.append(("" if self.accepted else "NOT ") +
                        "EXISTS (SELECT 1 FROM samples s CROSS JOIN selection_items it "
                        "WHERE s.prompt_id = p.id AND it.selection_id = ? AND it.sample_id = s.id)")
            args.append(self.selection_id)
        if self.min_score is not None or self.max_score is not None:
            best = ("(SELECT MAX(sc.value) FROM samples s CROSS JOIN scores sc WHERE "
                    "s.prompt_id = p.id AND sc.sample_id = s.id AND sc.judge = 'combined')")
            if self.min_score is not None:
                cond.append(f"{best} >= ?")
                args.append(self.min_score)
            if self.max_score is not None:
                cond.append(f"{best} <= ?")
                args.append(self.max_score)
        return " AND ".join(cond), args


PAGE_SIZE = 200


PromptPageRow = TypedDict("PromptPageRow", {"id": int, "kind": str, "key": str,
    "source": str | None, "prompt": str, "n": int, "best": float | None, "n_acc": int | None})


def fetch_prompt_page(log: RunLog, flt: PromptFilter, after_id: int = 0,
                      limit: int = PAGE_SIZE) -> list[PromptPageRow]:
    """One keyset page of prompts (id > after_id) with candidate counts, best combined score and
    accepted count. Two indexed queries; a few ms whatever the table size."""
    if flt.run_id is None:
        return []
    where, args = flt.where(paging=True)
    rows = _rows(log, f"SELECT p.id, p.kind, p.key, p.source, substr(p.prompt, 1, 300) AS prompt "
                      f"FROM prompts p WHERE {where} AND p.id > ? ORDER BY p.id LIMIT ?",
                 (*args, after_id, int(limit)))
    if not rows:
        return rows
    ids = [r["id"] for r in rows]
    marks = ",".join("?" * len(ids))
    with_sel = flt.selection_id is not None
    agg = {r[0]: (r[1], r[2], r[3]) for r in log.conn.execute(
        f"SELECT s.prompt_id, COUNT(*) AS n, MAX(sc.value) AS best, "
        f"{'SUM(it.id IS NOT NULL)' if with_sel else 'NULL'} AS n_acc FROM samples s "
        f"LEFT JOIN scores sc ON sc.sample_id = s.id AND sc.judge = 'combined' "
        + ("LEFT JOIN selection_items it ON it.selection_id = ? AND it.sample_id = s.id "
           if with_sel else "")
        + f"WHERE s.prompt_id IN ({marks}) GROUP BY s.prompt_id",
        ((flt.selection_id,) if with_sel else ()) + tuple(ids))}
    for r in rows:
        n, best, n_acc = agg.get(r["id"], (0, None, None))
        r.update(n=n, best=best, n_acc=n_acc)
    return rows


def count_prompts(log: RunLog, flt: PromptFilter) -> int:
    if flt.run_id is None:
        return 0
    where, args = flt.where()
    return int(log.conn.execute(f"SELECT COUNT(*) FROM prompts p WHERE {where}", args).fetchone()[0])


class Candidate(SampleRow):
    """A sample with its scores, params decoded, and its place in a selection."""
    scores: dict[str, tuple[float | None, str | None, str | None]]  # judge -> (value, category, details)
    accepted: bool
    rank: int | None
    combined: float | None


def fetch_candidates(log: RunLog, prompt_id: int, selection_id: int | None
                     ) -> tuple[PromptRow | None, list[Candidate]]:
    """(prompt row, candidates): accepted first, then by combined score."""
    p = _rows(log, "SELECT * FROM prompts WHERE id = ?", (prompt_id,))
    if not p:
        return None, []
    cands = _rows(log, "SELECT * FROM samples WHERE prompt_id = ? ORDER BY cand_idx", (prompt_id,))
    ids = [c["id"] for c in cands]
    marks = ",".join("?" * len(ids))
    by_sample: dict[int, dict[str, tuple]] = {}
    for r in log.conn.execute(f"SELECT sample_id, judge, category, value, details FROM scores "
                              f"WHERE sample_id IN ({marks})", ids):
        by_sample.setdefault(r[0], {})[r[1]] = (r[3], r[2], r[4])
    accepted: dict[int, int] = {}
    if selection_id is not None:
        accepted = {r[0]: r[1] for r in log.conn.execute(
            f"SELECT sample_id, rank FROM selection_items WHERE selection_id = ? AND "
            f"sample_id IN ({marks})", (selection_id, *ids))}
    for c in cands:
        c["scores"] = by_sample.get(c["id"], {})
        c["accepted"] = c["id"] in accepted
        c["rank"] = accepted.get(c["id"])
        try:
            c["params"] = json.loads(c["params"]) if c.get("params") else {}
        except ValueError:
            c["params"] = {}
        comb = c["scores"].get("combined")
        c["combined"] = comb[0] if comb else None
    cands.sort(key=lambda c: (not c["accepted"],
                              -(c["combined"] if c["combined"] is not None else -1.0),
                              c["cand_idx"]))
    return p[0], cands


StageChoice = TypedDict("StageChoice", {"label": str, "stage_idx": int, "key_prefix": str | None,
    "type": str, "tag": str | None})


def prompt_stages(log: RunLog, run_id: str) -> list[StageChoice]:
    """Choices for the inspector's stage combo: sampling stages, and one entry per checkpoint of
    evaluation stages (their prompt keys are "<tag>|<record id>")."""
    conn = log.conn
    stage_rows = {r["idx"]: dict(r) for r in conn.execute(
        "SELECT idx, name, type FROM stages WHERE run_id = ?", (run_id,))}
    out: list[StageChoice] = []
    for (idx,) in conn.execute("SELECT DISTINCT stage_idx FROM prompts WHERE run_id = ? "
                               "ORDER BY stage_idx", (run_id,)).fetchall():
        st = stage_rows.get(idx, {})
        # evaluation keys carry a "<tag>|" prefix; probe one key to tell the stage kind
        first = conn.execute("SELECT key FROM prompts WHERE run_id = ? AND stage_idx = ? LIMIT 1",
                             (run_id, idx)).fetchone()
        is_eval = st.get("type") == "evaluate" or (st.get("type") is None and first
                                                     and "|" in (first[0] or ""))
        if not is_eval:
            out.append({"label": f"sampling · {st.get('name') or f'stage {idx}'}", "stage_idx": idx,
                        "key_prefix": None, "type": st.get("type") or "sample", "tag": None})
            continue
        key = ""
        while True:  # distinct "<tag>|" prefixes by skipping through the key index
            row = conn.execute("SELECT key FROM prompts WHERE run_id = ? AND stage_idx = ? "
                               "AND key > ? ORDER BY key LIMIT 1", (run_id, idx, key)).fetchone()
            if row is None or "|" not in row[0]:
                break
            tag = row[0].split("|", 1)[0]
            out.append({"label": f"evaluation · {tag}", "stage_idx": idx, "key_prefix": tag,
                        "type": "evaluate", "tag": tag})
            key = tag + "}"
    return out
