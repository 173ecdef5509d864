"""The run log across machines: an append-only per-run JSONL journal on the shared filesystem.

SQLite in WAL mode must not be shared by processes on different hosts over a network
filesystem. A job on a compute node therefore keeps its own run log on the node's local disk
(a copy of the app's log made at submit time, plus the journal replayed), and an *exporter*
thread appends every row the job writes there to ``<run dir>/journal.jsonl``. The app's side
(the run's supervisor) *ingests* the journal into the app's run log.

A journal line is one row: ``{"t": table, "row": {...}}``. Row ids are local to the database that
wrote them, so links to other rows are written as natural keys (a prompt as
``[run_id, stage_idx, key]``, a sample as its prompt's key plus ``cand_idx``, a selection as
``[run_id, name]``, a checkpoint as ``[run_id, tag]``) and resolved again by the reader.

Ingestion is idempotent and survives a kill: the bytes consumed so far are stored in the target
log (``journal_offsets``) in the same transaction as the rows they carried, so a batch is
applied whole or not at all; a partly written last line is left for later; and every table has a
natural key (or, for events, the offset alone) that makes a re-applied row a no-op.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

JOURNAL_NAME = "journal.jsonl"
# append-only tables: exported by id; mutable ones: exported when their content changes
APPEND = ("prompts", "samples", "metrics", "scores", "selections", "selection_items", "evals",
          "events")
MUTABLE = ("runs", "stages", "checkpoints")
# natural keys (the ON CONFLICT targets of the upserts)
KEYS = {"runs": ("id",), "stages": ("run_id", "idx"), "checkpoints": ("run_id", "tag")}
# run-row fields that belong to the app (its process ids, the cancel flag, the config)
APP_OWNED = {"id", "pid", "cancel_requested", "config_toml", "run_dir", "created_at", "name",
             "preset", "parent_run_id", "experiment"}


def journal_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / JOURNAL_NAME


# ---- writing (the job's side) -----------------------------------------------------------------
def _q(conn, sql: str, args=()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, tuple(args))
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def _one(conn, sql: str, args=()) -> dict[str, Any] | None:
    rows = _q(conn, sql, args)
    return rows[0] if rows else None


def _prompt_key(conn, pid: int) -> list | None:
    r = _one(conn, "SELECT run_id, stage_idx, key FROM prompts WHERE id=?", (pid,))
    return [r["run_id"], r["stage_idx"], r["key"]] if r else None


def _sample_key(conn, sid: int) -> list | None:
    r = _one(conn, "SELECT prompt_id, cand_idx FROM samples WHERE id=?", (sid,))
    return [_prompt_key(conn, r["prompt_id"]), r["cand_idx"]] if r else None


def _portable(conn, table: str, row: dict[str, Any]) -> dict[str, Any]:
    """The row with its local ids replaced by natural keys."""
    row = dict(row)
    if table in APPEND or table in ("stages", "checkpoints"):
        row.pop("id", None)
    if "prompt_id" in row and table in ("samples", "selection_items"):
        row["prompt_id"] = _prompt_key(conn, row["prompt_id"])
    if "sample_id" in row:
        row["sample_id"] = _sample_key(conn, row["sample_id"])
    if table == "selection_items":
        s = _one(conn, "SELECT run_id, name FROM selections WHERE id=?", (row["selection_id"],))
        row["selection_id"] = [s["run_id"], s["name"]] if s else None
    if table == "evals" and row.get("checkpoint_id") is not None:
        c = _one(conn, "SELECT run_id, tag FROM checkpoints WHERE id=?", (row["checkpoint_id"],))
        row["checkpoint_id"] = [c["run_id"], c["tag"]] if c else None
    return row


class Exporter:
    """Appends the rows of one run that appeared or changed in a (node-local) run log to the
    run's journal. ``mark_seen`` first: rows already there (the seed and a replayed journal) are
    not exported again."""

    def __init__(self, db_path: str | os.PathLike, run_id: str, journal: str | os.PathLike,
                 hold=None):
        import sqlite3

        self.hold = hold  # hold(table, row) -> True: not yet (asked again at the next flush)
        self.run_id = run_id
        self.journal = Path(journal)
        self.conn = sqlite3.connect(str(db_path), timeout=60, check_same_thread=False)
        self.last: dict[str, int] = {}
        self.digest: dict[tuple, str] = {}
        self.lock = threading.Lock()

    def _append_rows(self, table: str, after: int) -> list[dict[str, Any]]:
        if table == "selection_items":
            return _q(self.conn, "SELECT it.* FROM selection_items it JOIN selections s ON "
                      "s.id = it.selection_id WHERE s.run_id=? AND it.id > ? ORDER BY it.id",
                      (self.run_id, after))
        return _q(self.conn, f"SELECT * FROM {table} WHERE run_id=? AND id > ? ORDER BY id",
                  (self.run_id, after))

    def _mutable_rows(self, table: str) -> list[dict[str, Any]]:
        col = "id" if table == "runs" else "run_id"
        return _q(self.conn, f"SELECT * FROM {table} WHERE {col}=?", (self.run_id,))

    @staticmethod
    def _hash(row: dict[str, Any]) -> str:
        return hashlib.sha1(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()

    def _key(self, table: str, row: dict[str, Any]) -> tuple:
        return (table, *(row[k] for k in KEYS[table]))

    def mark_seen(self) -> None:
        with self.lock:
            for t in APPEND:
                self.last[t] = max((r["id"] for r in self._append_rows(t, 0)), default=0)
            for t in MUTABLE:
                for r in self._mutable_rows(t):
                    self.digest[self._key(t, r)] = self._hash(r)

    def flush(self) -> int:
        """Append what is new since the last flush; returns the number of rows written."""
        with self.lock:
            lines = []
            # mutable rows first: a stage row exists before the metrics that point into it
            for t in MUTABLE:
                for r in self._mutable_rows(t):
                    h = self._hash(r)
                    held = self.hold is not None and self.hold(t, r)
                    if not held and self.digest.get(self._key(t, r)) != h:
                        lines.append((t, r, ("digest", self._key(t, r), h)))
            for t in APPEND:
                lines += [(t, r, ("last", t, r["id"]))
                          for r in self._append_rows(t, self.last.get(t, 0))]
            if not lines:
                return 0
            text = "".join(json.dumps({"t": t, "row": _portable(self.conn, t, r)},
                                      default=str) + "\n" for t, r, _ in lines)
            with open(self.journal, "a", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            for _, _, (kind, key, value) in lines:  # only once the lines are on disk
                if kind == "digest":
                    self.digest[key] = value
                else:
                    self.last[key] = max(self.last.get(key, 0), value)
            return len(lines)

    def close(self) -> None:
        self.conn.close()


def repair_tail(journal: str | os.PathLike) -> int:
    """Cut a partly written last line (its writer was killed); the sole writer calls this
    before appending again. Returns the bytes cut."""
    path = Path(journal)
    if not path.exists():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as fh:
        fh.truncate(keep)
    return len(data) - keep


# ---- reading (the app's side, and a requeued job's replay) -----------------------------------
OFFSETS_DDL = ("CREATE TABLE IF NOT EXISTS journal_offsets (path TEXT PRIMARY KEY, "
               "offset INTEGER NOT NULL, rows INTEGER NOT NULL DEFAULT 0)")


def _resolve_prompt(conn, key) -> int | None:
    if not key:
        return None
    r = conn.execute("SELECT id FROM prompts WHERE run_id=? AND stage_idx=? AND key=?",
                     tuple(key)).fetchone()
    return r[0] if r else None


def _resolve_sample(conn, key) -> int | None:
    if not key:
        return None
    pid = _resolve_prompt(conn, key[0])
    r = conn.execute("SELECT id FROM samples WHERE prompt_id=? AND cand_idx=?",
                     (pid, key[1])).fetchone() if pid else None
    return r[0] if r else None


def _apply(conn, table: str, row: dict[str, Any]) -> None:
    row = dict(row)
    if table == "runs":
        fields = {k: v for k, v in row.items() if k not in APP_OWNED}
        if fields:
            conn.execute(f"UPDATE runs SET {', '.join(f'{k}=?' for k in fields)} WHERE id=?",
                         (*fields.values(), row["id"]))
        return
    if table in ("samples", "selection_items") and row.get("prompt_id") is not None:
        row["prompt_id"] = _resolve_prompt(conn, row["prompt_id"])
    if "sample_id" in row:
        row["sample_id"] = _resolve_sample(conn, row["sample_id"])
    if table == "selection_items":
        r = conn.execute("SELECT id FROM selections WHERE run_id=? AND name=?",
                         tuple(row["selection_id"] or ("", ""))).fetchone()
        row["selection_id"] = r[0] if r else None
    if table == "evals" and row.get("checkpoint_id") is not None:
        r = conn.execute("SELECT id FROM checkpoints WHERE run_id=? AND tag=?",
                         tuple(row["checkpoint_id"])).fetchone()
        row["checkpoint_id"] = r[0] if r else None
    cols = list(row)
    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})"
    if table in KEYS:
        keys = KEYS[table]
        sets = ", ".join(f"{c}=excluded.{c}" for c in cols if c not in keys)
        sql += f" ON CONFLICT({', '.join(keys)}) DO UPDATE SET {sets}"
    elif table != "events":
        sql = sql.replace("INSERT INTO", "INSERT OR IGNORE INTO", 1)
    conn.execute(sql, tuple(row[c] for c in cols))


def ingest(log, journal: str | os.PathLike, *, max_lines: int = 2000,
           _fault_after: int | None = None) -> int:
    """Apply the journal's complete lines not yet applied to ``log`` (a RunLog), in batches of
    at most ``max_lines``, each in one transaction with its new offset. Returns rows applied.

    ``_fault_after`` (tests) raises after that many rows of a batch, inside its transaction."""
    path = Path(journal)
    key = f"{path.parent.name}/{path.name}"  # the run's folder: the same on every machine
    conn = log.conn
    conn.execute(OFFSETS_DDL)
    total = 0
    if not path.exists():
        return 0
    with open(path, "rb") as fh:
        while True:
            r = conn.execute("SELECT offset FROM journal_offsets WHERE path=?", (key,)).fetchone()
            offset = r[0] if r else 0
            fh.seek(offset)
            batch, pos = [], offset
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # a line still being written (or cut by a kill): later
                batch.append(raw)
                pos += len(raw)
                if len(batch) >= max_lines:
                    break
            if not batch:
                return total
            with log.transaction() as c:
                for i, raw in enumerate(batch):
                    if _fault_after is not None and i == _fault_after:
                        raise KeyboardInterrupt("injected kill in the middle of a batch")
                    item = json.loads(raw)
                    _apply(c, item["t"], item["row"])
                c.execute("INSERT INTO journal_offsets (path, offset, rows) VALUES (?, ?, ?) "
                          "ON CONFLICT(path) DO UPDATE SET offset=excluded.offset, "
                          "rows=journal_offsets.rows + ?", (key, pos, len(batch), len(batch)))
            total += len(batch)


__all__ = ["Exporter", "ingest", "repair_tail", "journal_path"]
