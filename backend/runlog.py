"""The run log: one SQLite file (WAL) that every worker appends to and every viewer polls.

Schema is declared with sqlite-utils and versioned in the ``meta`` table. Writes go through
``_write``: one ``BEGIN IMMEDIATE`` transaction per batch (so concurrent writers queue on the busy
timeout instead of failing on a lock upgrade) and ``INSERT OR IGNORE`` on each table's natural key,
which makes every write idempotent: a resumed stage re-sends rows without duplicating them.
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

import sqlite_utils

from .errors import StudioError
from .vocab import FINAL_STATUSES, RUN_STATUSES, Status  # noqa: F401  (re-exported)

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


# table -> (columns, primary key, unique natural key or None, indexes)
_TABLES: dict[str, tuple[dict[str, type], str, tuple[str, ...] | None, list[tuple[str, ...]]]] = {
    "runs": ({
        "id": str, "name": str, "preset": str, "status": str, "config_toml": str,
        "run_dir": str, "parent_run_id": str, "pid": int, "created_at": float, "started_at": float,
        "ended_at": float, "heartbeat_at": float, "exit_code": int, "signal": int, "error": str,
        "error_tail": str, "stderr_tail": str, "current_stage": int, "cancel_requested": int,
        "updated_at": float, "experiment": str,  # one config under several seeds: one id for all
    }, "id", None, [("status",), ("experiment",)]),
    "stages": ({
        "id": int, "run_id": str, "idx": int, "name": str, "type": str, "status": str,
        "started_at": float, "ended_at": float, "done": int, "total": int, "message": str,
        "updated_at": float,
    }, "id", ("run_id", "idx"), []),
    "metrics": ({
        "id": int, "run_id": str, "stage_idx": int, "step": int, "name": str, "value": float,
        "time": float,
    }, "id", ("run_id", "stage_idx", "step", "name"), [("run_id", "name"), ("run_id", "id")]),
    "checkpoints": ({
        "id": int, "run_id": str, "stage_idx": int, "step": int, "tag": str, "path": str,
        "kind": str, "base": str, "created_at": float,
    }, "id", ("run_id", "tag"), [("run_id", "stage_idx")]),
    "prompts": ({
        "id": int, "run_id": str, "stage_idx": int, "key": str, "kind": str, "source": str,
        "prompt": str, "context": str, "reference": str, "constraints": str,
    }, "id", ("run_id", "stage_idx", "key"), [("run_id", "kind")]),
    "samples": ({
        "id": int, "run_id": str, "stage_idx": int, "prompt_id": int, "cand_idx": int,
        "decoding": str, "params": str, "seed": int, "text": str, "n_tokens": int,
        "finish_reason": str, "created_at": float,
    }, "id", ("prompt_id", "cand_idx"), [("run_id", "stage_idx"), ("run_id", "id")]),
    "scores": ({
        "id": int, "run_id": str, "sample_id": int, "judge": str, "category": str, "value": float,
        "details": str,
    }, "id", ("sample_id", "judge"), [("run_id", "judge"), ("run_id", "id")]),
    "selections": ({
        "id": int, "run_id": str, "stage_idx": int, "name": str, "policy": str, "n_selected": int,
        "created_at": float,
    }, "id", ("run_id", "name"), []),
    "selection_items": ({
        "id": int, "selection_id": int, "sample_id": int, "prompt_id": int, "combined": float,
        "rank": int,
    }, "id", ("selection_id", "sample_id"), []),
    "evals": ({
        "id": int, "run_id": str, "stage_idx": int, "checkpoint_id": int, "checkpoint_tag": str,
        "dataset": str, "category": str, "n": int, "faithfulness": float,
        "instruction_following": float, "task_score": float, "mean_length": float,
        "faithfulness_judge": str, "details": str, "created_at": float,
    }, "id", ("run_id", "checkpoint_tag", "dataset"), []),
    "events": ({
        "id": int, "run_id": str, "time": float, "level": str, "stage_idx": int, "message": str,
        "details": str,
    }, "id", None, [("run_id",)]),
}

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
            if readonly:
                conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                       timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                       check_same_thread=False)
            else:
                conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000,
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
        self.db = sqlite_utils.Database(conn)
        self._check_schema()

    # ---- schema -------------------------------------------------------------------------------
    def _version(self) -> int | None:
        if "meta" not in self.db.table_names():
            return None
        row = self.conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0]) if row else None

    def _check_schema(self) -> None:
        version = self._version()
        if version is None:
            others = [t for t in self.db.table_names() if not t.startswith("sqlite_")]
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
            self.db["meta"].create({"key": str, "value": str}, pk="key", if_not_exists=True)
            for name, (columns, pk, unique, indexes) in _TABLES.items():
                table = self.db[name]
                table.create(columns, pk=pk, if_not_exists=True)
                if unique:
                    table.create_index(unique, unique=True, if_not_exists=True)
                for cols in indexes:
                    table.create_index(cols, if_not_exists=True)
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
        sql = (f"INSERT OR IGNORE INTO {table} ({', '.join(columns)}) "
               f"VALUES ({', '.join('?' for _ in columns)})")
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
                   parent_run_id: str | None = None, status: str = "queued",
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

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        return dict(row) if row else None

    def find_run(self, prefix: str) -> dict[str, Any] | None:
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

    def list_runs(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute("SELECT * FROM runs ORDER BY created_at")]

    # stages
    def stage_start(self, run_id: str, idx: int, name: str, type_: str, total: int | None = None) -> None:
        now = _now()
        with self.transaction() as conn:
            self._insert("stages", [{"run_id": run_id, "idx": idx, "name": name, "type": type_,
                                     "status": "running", "started_at": now, "updated_at": now,
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

    def get_stages(self, run_id: str) -> list[dict[str, Any]]:
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

    def checkpoints(self, run_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(
            "SELECT * FROM checkpoints WHERE run_id=? ORDER BY stage_idx, step", (run_id,))]

    def find_checkpoint(self, run_id: str, tag: str | None = None) -> dict[str, Any] | None:
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
        rows = []
        for r in records:
            constraints = ({"instruction_id_list": r.instruction_id_list, "kwargs": r.kwargs}
                           if r.instruction_id_list else None)
            rows.append({"run_id": run_id, "stage_idx": stage_idx, "key": r.id, "kind": r.kind,
                         "source": r.source, "prompt": r.prompt, "context": r.context,
                         "reference": r.reference, "constraints": _json(constraints)})
        self._insert("prompts", rows)
        return self.prompt_ids(run_id, stage_idx)

    def prompt_ids(self, run_id: str, stage_idx: int) -> dict[str, int]:
        return {row[0]: row[1] for row in self.conn.execute(
            "SELECT key, id FROM prompts WHERE run_id=? AND stage_idx=?", (run_id, stage_idx))}

    def add_samples(self, rows: list[dict[str, Any]]) -> int:
        now = _now()
        for r in rows:
            r.setdefault("created_at", now)
            if not isinstance(r.get("params"), (str, type(None))):
                r["params"] = _json(r["params"])
        return self._insert("samples", rows)

    def add_scores(self, rows: list[dict[str, Any]]) -> int:
        for r in rows:
            if not isinstance(r.get("details"), (str, type(None))):
                r["details"] = _json(r["details"])
        return self._insert("scores", rows)

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
        now = _now()
        for r in rows:
            r.setdefault("created_at", now)
            if not isinstance(r.get("details"), (str, type(None))):
                r["details"] = _json(r["details"])
        return self._insert("evals", rows)

    # ---- reading ------------------------------------------------------------------------------
    def read_since(self, table: str, after_id: int = 0, *, run_id: str | None = None,
                   limit: int | None = None) -> list[dict[str, Any]]:
        """Rows with id > after_id (optionally of one run), in id order: the cheap live poll."""
        if table not in _TABLES or table == "runs":
            raise ValueError(f"not an append-only table: {table}")
        sql = f"SELECT * FROM {table} WHERE id > ?"
        args: list[Any] = [after_id]
        if run_id is not None and "run_id" in _TABLES[table][0]:
            sql += " AND run_id = ?"
            args.append(run_id)
        sql += " ORDER BY id"
        if limit:
            sql += f" LIMIT {int(limit)}"
        return [dict(r) for r in self.conn.execute(sql, args)]

    def query(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
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
