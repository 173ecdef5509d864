"""The run log: one SQLite file (WAL) that every worker appends to and every viewer polls.

The schema is plain DDL (``SCHEMA``), versioned in the ``meta`` table. Writes go through
``_insert``/``_update``: one ``BEGIN IMMEDIATE`` transaction per batch (so concurrent writers queue
on the busy timeout instead of failing on a lock upgrade) and ``ON CONFLICT DO NOTHING`` on each
table's natural key, which makes every write idempotent: a resumed stage re-sends rows without
duplicating them. Reads beyond one table's rows live in ``backend/queries.py``.
Reads are incremental: ``read_since(table, after_id)`` returns only rows a viewer has not seen.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import StudioError
from .queries import CheckpointRow, RunRow, StageRow
from .vocab import RUN_STATUSES, Status

SCHEMA_VERSION = 3
BUSY_TIMEOUT_MS = 60_000


class RunLogError(StudioError, RuntimeError):
    """A run log that cannot be used: not a database, newer schema, unwritable."""


def _now() -> float:
    return time.time()


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, sort_keys=True, default=str)


def _encoded(rows: list[dict[str, Any]], field: str, **defaults: Any) -> list[dict[str, Any]]:
    """The rows (changed in place) with ``field`` as JSON text and ``defaults`` filled in."""
    for r in rows:
        for k, v in defaults.items():
            r.setdefault(k, v)
        if not isinstance(r.get(field), (str, type(None))):
            r[field] = _json(r[field])
    return rows


# The schema of a new log. Natural keys are UNIQUE indexes (the ON CONFLICT of _insert and of the
# checkpoint upsert rely on them); (run_id, id) indexes make the per-run poll a range scan. Logs made
# before this DDL (versions 1 to 3, tables by sqlite-utils) have the same columns and index names
# without NOT NULL or REFERENCES; they are migrated and used as they are. SQLite checks REFERENCES
# only under PRAGMA foreign_keys, which stays off: the links are declared for readers.
SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,                    -- <time>-<name>-<random>
    name TEXT NOT NULL,
    preset TEXT NOT NULL,
    status TEXT NOT NULL,                   -- backend.vocab.Status
    config_toml TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    parent_run_id TEXT REFERENCES runs (id),  -- continued from (a selection of) that run
    created_at REAL NOT NULL, started_at REAL, ended_at REAL, heartbeat_at REAL,
    pid INTEGER, exit_code INTEGER, signal INTEGER,  -- the worker process
    error TEXT, error_tail TEXT, stderr_tail TEXT,   -- why it failed or died
    current_stage INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    experiment TEXT                         -- one config run under several seeds: one id for all
);
CREATE INDEX idx_runs_status ON runs (status);
CREATE INDEX idx_runs_experiment ON runs (experiment);

CREATE TABLE stages (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    idx INTEGER NOT NULL,                   -- position in the plan
    name TEXT NOT NULL,
    type TEXT NOT NULL,                     -- backend.vocab.StageType
    status TEXT NOT NULL,
    started_at REAL, ended_at REAL,
    done INTEGER, total INTEGER, message TEXT,  -- progress
    updated_at REAL NOT NULL
);
CREATE UNIQUE INDEX idx_stages_run_id_idx ON stages (run_id, idx);

CREATE TABLE metrics (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    stage_idx INTEGER NOT NULL,
    step INTEGER NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    time REAL
);
CREATE UNIQUE INDEX idx_metrics_run_id_stage_idx_step_name ON metrics (run_id, stage_idx, step, name);
CREATE INDEX idx_metrics_run_id_name ON metrics (run_id, name);
CREATE INDEX idx_metrics_run_id_id ON metrics (run_id, id);

CREATE TABLE checkpoints (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    stage_idx INTEGER NOT NULL,
    step INTEGER NOT NULL,
    tag TEXT NOT NULL,                      -- "<stage name>" or "<stage name>@<step>"
    path TEXT NOT NULL,
    kind TEXT NOT NULL,                     -- adapter | full
    base TEXT,                              -- the model it was trained from
    created_at REAL
);
CREATE UNIQUE INDEX idx_checkpoints_run_id_tag ON checkpoints (run_id, tag);
CREATE INDEX idx_checkpoints_run_id_stage_idx ON checkpoints (run_id, stage_idx);

CREATE TABLE prompts (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    stage_idx INTEGER NOT NULL,
    key TEXT NOT NULL,                      -- record id, "<checkpoint tag>|<record id>" in evaluations
    kind TEXT NOT NULL,                     -- backend.vocab.Kind
    source TEXT,                            -- data set name
    prompt TEXT NOT NULL,
    context TEXT, reference TEXT,
    constraints TEXT                        -- JSON: IFEval instruction ids and kwargs
);
CREATE UNIQUE INDEX idx_prompts_run_id_stage_idx_key ON prompts (run_id, stage_idx, key);
CREATE INDEX idx_prompts_run_id_kind ON prompts (run_id, kind);

CREATE TABLE samples (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    stage_idx INTEGER NOT NULL,
    prompt_id INTEGER NOT NULL REFERENCES prompts (id),
    cand_idx INTEGER NOT NULL,
    decoding TEXT, params TEXT, seed INTEGER,  -- how it was drawn (params: JSON)
    text TEXT, n_tokens INTEGER, finish_reason TEXT,
    created_at REAL
);
CREATE UNIQUE INDEX idx_samples_prompt_id_cand_idx ON samples (prompt_id, cand_idx);
CREATE INDEX idx_samples_run_id_stage_idx ON samples (run_id, stage_idx);
CREATE INDEX idx_samples_run_id_id ON samples (run_id, id);

CREATE TABLE scores (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    sample_id INTEGER NOT NULL REFERENCES samples (id),
    judge TEXT NOT NULL,                    -- a judge, "cat:<category>" or "combined"
    category TEXT,
    value REAL,                             -- NULL: the judge does not apply
    details TEXT                            -- JSON
);
CREATE UNIQUE INDEX idx_scores_sample_id_judge ON scores (sample_id, judge);
CREATE INDEX idx_scores_run_id_judge ON scores (run_id, judge);
CREATE INDEX idx_scores_run_id_id ON scores (run_id, id);

CREATE TABLE selections (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    stage_idx INTEGER,                      -- NULL: saved from the what-if panel
    name TEXT NOT NULL,
    policy TEXT NOT NULL,                   -- JSON: threshold, weights, quota, budget
    n_selected INTEGER NOT NULL,
    created_at REAL
);
CREATE UNIQUE INDEX idx_selections_run_id_name ON selections (run_id, name);

CREATE TABLE selection_items (
    id INTEGER PRIMARY KEY,
    selection_id INTEGER NOT NULL REFERENCES selections (id),
    sample_id INTEGER NOT NULL REFERENCES samples (id),
    prompt_id INTEGER NOT NULL REFERENCES prompts (id),
    combined REAL,
    rank INTEGER NOT NULL                   -- 1 = best
);
CREATE UNIQUE INDEX idx_selection_items_selection_id_sample_id
    ON selection_items (selection_id, sample_id);

CREATE TABLE evals (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs (id),
    stage_idx INTEGER NOT NULL,
    checkpoint_id INTEGER REFERENCES checkpoints (id),  -- NULL: the base model
    checkpoint_tag TEXT NOT NULL,
    dataset TEXT NOT NULL,                  -- a data set, or "_all"
    category TEXT,
    n INTEGER,
    faithfulness REAL, instruction_following REAL, task_score REAL, mean_length REAL,  -- means
    faithfulness_judge TEXT,
    details TEXT,                           -- JSON: backend.eval_details.EvalDetails
    created_at REAL
);
CREATE UNIQUE INDEX idx_evals_run_id_checkpoint_tag_dataset ON evals (run_id, checkpoint_tag, dataset);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    run_id TEXT REFERENCES runs (id),       -- NULL: about the log or the launcher
    time REAL,
    level TEXT NOT NULL,
    stage_idx INTEGER,
    message TEXT NOT NULL,
    details TEXT                            -- JSON
);
CREATE INDEX idx_events_run_id ON events (run_id);
"""
# the tables read_since serves (rows in id order), and whether their rows carry a run_id
_INCREMENTAL = {"stages": True, "metrics": True, "checkpoints": True, "prompts": True,
                "samples": True, "scores": True, "selections": True, "selection_items": False,
                "evals": True, "events": True}


def _v1_to_v2(conn: sqlite3.Connection) -> None:
    """Version 2: (run_id, id) indexes make a per-run incremental poll an index range scan."""
    for table in ("metrics", "samples", "scores"):
        conn.execute(f"CREATE INDEX IF NOT EXISTS idx_{table}_run_id_id ON {table} (run_id, id)")


def _v2_to_v3(conn: sqlite3.Connection) -> None:
    """Version 3: runs.experiment groups the runs of one config under several seeds."""
    if "experiment" not in {r[1] for r in conn.execute("PRAGMA table_info(runs)")}:
        conn.execute("ALTER TABLE runs ADD COLUMN experiment TEXT")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_runs_experiment ON runs (experiment)")


# _MIGRATIONS[i] migrates a log from version i+1 to i+2.
_MIGRATIONS: list = [_v1_to_v2, _v2_to_v3]


class RunLog:
    """A connection to a run log file. One per thread/process; cheap to open."""

    def __init__(self, path: str | os.PathLike, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if readonly and not self.path.exists():
            raise RunLogError(f"run log not found: {self.path}")
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro" if readonly else str(self.path),
                                   uri=readonly, timeout=BUSY_TIMEOUT_MS / 1000,
                                   isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if not readonly:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            conn.row_factory = sqlite3.Row
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as exc:  # exists but cannot be opened or read
            raise RunLogError(f"cannot open the run log {self.path}: {exc} (disk full, no "
                              "permission, or a locked/unreadable file?)") from exc
        except sqlite3.DatabaseError as exc:
            raise RunLogError(f"{self.path} is not a ReSet Studio run log ({exc})") from exc
        self.conn = conn
        self._check_schema()

    # ---- schema -------------------------------------------------------------------------------
    def table_names(self) -> list[str]:
        return [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]

    def _version(self) -> int | None:
        if "meta" not in self.table_names():
            return None
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else None

    def _check_schema(self) -> None:
        version = self._version()
        if version is None:
            others = [t for t in self.table_names() if not t.startswith("sqlite_")]
            if others:
                raise RunLogError(f"{self.path} is a SQLite file but not a ReSet Studio run log "
                                  f"(it has tables {', '.join(others[:5])})")
            if self.readonly:
                raise RunLogError(f"{self.path} is an empty file, not a run log")
            self._create()
            return
        if version > SCHEMA_VERSION:
            raise RunLogError(f"{self.path} was written by a newer ReSet Studio (schema {version}, "
                              f"this version reads up to {SCHEMA_VERSION}); upgrade the app")
        if version < SCHEMA_VERSION and not self.readonly:
            with self.transaction():
                for step in _MIGRATIONS[version - 1:]:
                    step(self.conn)
                self.conn.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                                  (str(SCHEMA_VERSION),))

    def _create(self) -> None:
        with self.transaction():
            for statement in SCHEMA.split(";"):  # executescript would COMMIT the transaction
                if statement.strip():
                    self.conn.execute(statement)
            self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))

    # ---- writing ------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE: take the write lock up front so the busy timeout applies."""
        if self.conn.in_transaction:  # nested: join the outer transaction
            yield self.conn
            return
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                raise
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise RunLogError(f"the run log {self.path} stayed locked for "
                                  f"{BUSY_TIMEOUT_MS // 1000} s: {exc}") from exc
            raise RunLogError(f"cannot write to the run log {self.path}: {exc} (disk full, over "
                              "a file size limit, or not writable?)") from exc

    def _insert(self, table: str, rows: Iterable[dict[str, Any]]) -> int:
        """Insert rows, ignoring those whose natural key is already present. Returns rows added."""
        rows = list(rows)
        if not rows:
            return 0
        columns = list(dict.fromkeys(k for r in rows for k in r))  # rows may differ in keys
        # ON CONFLICT skips only rows already there; a missing NOT NULL key still fails (OR IGNORE
        # would drop the row silently)
        sql = (f"INSERT INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' for _ in columns)}) ON CONFLICT DO NOTHING")
        with self.transaction() as conn:
            before = conn.total_changes
            conn.executemany(sql, [tuple(r.get(c) for c in columns) for r in rows])
            return conn.total_changes - before

    def _update(self, table: str, where: dict[str, Any], fields: dict[str, Any]) -> None:
        sets = ", ".join(f"{k}=?" for k in fields)
        cond = " AND ".join(f"{k}=?" for k in where)
        with self.transaction() as conn:
            conn.execute(f"UPDATE {table} SET {sets} WHERE {cond}",
                         (*fields.values(), *where.values()))

    # runs
    def create_run(self, run_id: str, *, name: str, preset: str, config_toml: str, run_dir: str,
                   parent_run_id: str | None = None, status: str = Status.QUEUED,
                   experiment: str | None = None) -> None:
        now = _now()
        self._insert("runs", [{
            "id": run_id, "name": name, "preset": preset, "status": status,
            "config_toml": config_toml, "run_dir": run_dir, "parent_run_id": parent_run_id,
            "created_at": now, "updated_at": now, "cancel_requested": 0, "experiment": experiment,
        }])

    def update_run(self, run_id: str, **fields: Any) -> None:
        if "status" in fields and fields["status"] not in RUN_STATUSES:
            raise ValueError(f"unknown run status {fields['status']!r}")
        fields["updated_at"] = _now()
        self._update("runs", {"id": run_id}, fields)

    def heartbeat(self, run_id: str) -> None:
        now = _now()
        self._update("runs", {"id": run_id}, {"heartbeat_at": now, "updated_at": now})

    def get_run(self, run_id: str) -> RunRow | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return dict(row) if row else None

    def find_run(self, prefix: str) -> RunRow | None:
        """A run by id, unique id prefix, or exact name (newest wins)."""
        run = self.get_run(prefix)
        if run:
            return run
        rows = self.conn.execute("SELECT * FROM runs WHERE id LIKE ? ORDER BY created_at DESC",
                                 (prefix.replace("%", "") + "%",)).fetchall()
        if len(rows) == 1:
            return dict(rows[0])
        rows = self.conn.execute("SELECT * FROM runs WHERE name=? ORDER BY created_at DESC",
                                 (prefix,)).fetchall()
        return dict(rows[0]) if rows else None

    def list_runs(self) -> list[RunRow]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY created_at")]

    # stages
    def stage_start(self, run_id: str, idx: int, name: str, type_: str, total: int | None = None) -> None:
        now = _now()
        with self.transaction() as conn:
            self._insert("stages", [{"run_id": run_id, "idx": idx, "name": name, "type": type_,
                                     "status": Status.RUNNING, "started_at": now, "updated_at": now,
                                     "done": 0, "total": total}])
            conn.execute("UPDATE stages SET status='running', ended_at=NULL, message=NULL, "
                         "updated_at=? WHERE run_id=? AND idx=?", (now, run_id, idx))
            conn.execute("UPDATE runs SET current_stage=?, updated_at=? WHERE id=?",
                         (idx, now, run_id))

    def stage_progress(self, run_id: str, idx: int, done: int, total: int | None = None,
                       message: str | None = None) -> None:
        fields: dict[str, Any] = {"done": done, "updated_at": _now()}
        if total is not None:
            fields["total"] = total
        if message is not None:
            fields["message"] = message
        self._update("stages", {"run_id": run_id, "idx": idx}, fields)

    def stage_end(self, run_id: str, idx: int, status: str, message: str | None = None) -> None:
        now = _now()
        self._update("stages", {"run_id": run_id, "idx": idx},
                     {"status": status, "ended_at": now, "message": message, "updated_at": now})

    def get_stages(self, run_id: str) -> list[StageRow]:
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM stages WHERE run_id=? ORDER BY idx", (run_id,))]

    # metrics, checkpoints, events
    def log_metrics(self, run_id: str, stage_idx: int, step: int, values: dict[str, float],
                    time_: float | None = None) -> int:
        t = time_ if time_ is not None else _now()
        return self._insert("metrics", [
            {"run_id": run_id, "stage_idx": stage_idx, "step": int(step), "name": k,
             "value": float(v), "time": t}
            for k, v in values.items() if v is not None])

    def add_checkpoint(self, run_id: str, stage_idx: int, step: int, tag: str, path: str,
                       kind: str, base: str | None) -> int:
        # upsert: a resumed stage re-saves its final checkpoint under the same tag
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO checkpoints (run_id, stage_idx, step, tag, path, kind, base, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id, tag) DO UPDATE SET "
                "step=excluded.step, path=excluded.path, kind=excluded.kind, base=excluded.base",
                (run_id, stage_idx, step, tag, path, kind, base, _now()))
        row = self.conn.execute("SELECT id FROM checkpoints WHERE run_id=? AND tag=?",
                                (run_id, tag)).fetchone()
        return int(row[0])

    def checkpoints(self, run_id: str) -> list[CheckpointRow]:
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM checkpoints WHERE run_id=? ORDER BY stage_idx, step", (run_id,))]

    def find_checkpoint(self, run_id: str, tag: str | None = None) -> CheckpointRow | None:
        run = self.find_run(run_id)
        if run is None:
            return None
        if tag is None:
            row = self.conn.execute("SELECT * FROM checkpoints WHERE run_id=? "
                                    "ORDER BY stage_idx DESC, step DESC LIMIT 1", (run["id"],)).fetchone()
        else:
            row = self.conn.execute("SELECT * FROM checkpoints WHERE run_id=? AND tag=?",
                                    (run["id"], tag)).fetchone()
        return dict(row) if row else None

    def event(self, run_id: str | None, message: str, *, level: str = "info",
              stage_idx: int | None = None, details: Any = None) -> None:
        self._insert("events", [{"run_id": run_id, "time": _now(), "level": level,
                                 "stage_idx": stage_idx, "message": message,
                                 "details": _json(details)}])

    # prompts, samples, scores
    def add_prompts(self, run_id: str, stage_idx: int, records: Iterable[Any]) -> dict[str, int]:
        """Store records (backend.records.Record) as prompts; returns key -> prompt id."""
        from .records import prompt_constraints

        # constraints: IFEval checks and several gold answers
        self._insert("prompts", [{"run_id": run_id, "stage_idx": stage_idx, "key": r.id,
                                  "kind": r.kind, "source": r.source, "prompt": r.prompt,
                                  "context": r.context, "reference": r.reference,
                                  "constraints": _json(prompt_constraints(r))} for r in records])
        return self.prompt_ids(run_id, stage_idx)

    def prompt_ids(self, run_id: str, stage_idx: int) -> dict[str, int]:
        return {row[0]: row[1] for row in self.conn.execute(
            "SELECT key, id FROM prompts WHERE run_id=? AND stage_idx=?", (run_id, stage_idx))}

    def add_samples(self, rows: list[dict[str, Any]]) -> int:
        return self._insert("samples", _encoded(rows, "params", created_at=_now()))

    def add_scores(self, rows: list[dict[str, Any]]) -> int:
        return self._insert("scores", _encoded(rows, "details"))

    def add_selection(self, run_id: str, stage_idx: int | None, name: str, policy: dict[str, Any],
                      items: list[dict[str, Any]]) -> int:
        with self.transaction() as conn:
            self._insert("selections", [{"run_id": run_id, "stage_idx": stage_idx, "name": name,
                                         "policy": _json(policy), "n_selected": len(items),
                                         "created_at": _now()}])
            sel_id = conn.execute("SELECT id FROM selections WHERE run_id=? AND name=?",
                                  (run_id, name)).fetchone()[0]
            self._insert("selection_items", [{"selection_id": sel_id, **item} for item in items])
        return int(sel_id)

    def add_evals(self, rows: list[dict[str, Any]]) -> int:
        return self._insert("evals", _encoded(rows, "details", created_at=_now()))

    # ---- reading ------------------------------------------------------------------------------
    def read_since(self, table: str, after_id: int = 0, *, run_id: str | None = None,
                   limit: int | None = None) -> list[dict[str, Any]]:
        """Rows with id > after_id (optionally of one run), in id order: the cheap live poll."""
        if table not in _INCREMENTAL:
            raise ValueError(f"not an append-only table: {table}")
        sql = f"SELECT * FROM {table} WHERE id > ?"
        args: list[Any] = [after_id]
        if run_id is not None and _INCREMENTAL[table]:
            sql += " AND run_id = ?"
            args.append(run_id)
        sql += " ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [dict(r) for r in self.conn.execute(sql, args)]

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Raw SQL, for tests and one-off scripts; the app reads through backend.queries."""
        return [dict(r) for r in self.conn.execute(sql, tuple(args))]

    def count(self, table: str, **where: Any) -> int:
        cond = " AND ".join(f"{k}=?" for k in where) or "1"
        return int(self.conn.execute(f"SELECT count(*) FROM {table} WHERE {cond}",
                                     tuple(where.values())).fetchone()[0])

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "RunLog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
