"""Exports: a checkpoint's adapter, a merged model, a selection as chat JSONL, the eval table as CSV.

Torch-free at import; only ``export_merged`` imports torch/transformers/peft (lazily).
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Any

from .data import chat_messages, write_jsonl
from .records import record_from_prompt
from .runlog import RunLog

# Trainer state in a checkpoint folder: pickles and resume state, not part of an adapter.
_TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "rng_state*.pth", "training_args.bin",
                   "trainer_state.json", "scaler.pt", "global_step*")

EVAL_COLUMNS = ("run_id", "run_name", "checkpoint_tag", "checkpoint_id", "dataset", "category", "n",
                "faithfulness", "instruction_following", "task_score", "mean_length",
                "faithfulness_judge")


class ExportError(ValueError):
    """An export that cannot be done; the message says why."""


def _checkpoint(log: RunLog, run_id: str, tag: str | None) -> tuple[dict[str, Any], Path]:
    run = log.find_run(run_id)
    if run is None:
        raise ExportError(f"no run {run_id!r}")
    ck = log.find_checkpoint(run["id"], tag)
    if ck is None:
        raise ExportError(f"run {run['id']} has no checkpoint" + (f" {tag!r}" if tag else ""))
    path = Path(ck["path"]).expanduser()
    if not path.is_absolute() and run.get("run_dir"):
        path = Path(run["run_dir"]) / path
    if not path.is_dir():
        raise ExportError(f"checkpoint {ck['tag']} of run {run['id']} is missing on disk: {path}")
    return {**ck, "run": run}, path


def _write_meta(out: Path, ck: dict[str, Any], what: str, **extra: Any) -> None:
    meta = {"exported_by": "ReSet Studio", "what": what, "run_id": ck["run_id"],
            "run_name": ck["run"].get("name"), "checkpoint_tag": ck["tag"], "step": ck["step"],
            "kind": ck["kind"], "base": ck.get("base"), **extra}
    (out / "reset_studio_export.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")


def _prepare_out(out: str | os.PathLike) -> Path:
    out = Path(out)
    busy = any(out.iterdir()) if out.is_dir() else out.exists()
    if busy:
        raise ExportError(f"{out} exists and is not an empty folder; choose another destination")
    out.mkdir(parents=True, exist_ok=True)
    return out


def export_adapter(log: RunLog, run_id: str, tag: str | None, out: str | os.PathLike) -> Path:
    """Copy a checkpoint's folder (adapter weights + config + tokenizer), without trainer state."""
    ck, src = _checkpoint(log, run_id, tag)
    out = _prepare_out(out)
    shutil.copytree(src, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns(*_TRAINING_STATE))
    _write_meta(out, ck, "adapter" if ck["kind"] == "adapter" else "full model")
    return out


def export_merged(log: RunLog, run_id: str, tag: str | None, out: str | os.PathLike) -> Path:
    """Load base + adapter, merge (peft merge_and_unload) and save safetensors + tokenizer."""
    from .models import load_model, resolve_model  # torch/transformers/peft load here

    ck, _src = _checkpoint(log, run_id, tag)
    ref = f"run:{ck['run_id']}:{ck['tag']}"
    resolved = resolve_model(ref, checkpoint_lookup=log.find_checkpoint)
    model, tokenizer = load_model(resolved, device="cpu", dtype="float32")
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    out = _prepare_out(out)
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    _write_meta(out, ck, "merged model", merged_from=ref)
    return out


def selection_rows(log: RunLog, run_id: str, selection_name: str) -> list[dict[str, Any]]:
    run = log.find_run(run_id)
    if run is None:
        raise ExportError(f"no run {run_id!r}")
    sel = log.query("SELECT id FROM selections WHERE run_id = ? AND name = ?", (run["id"], selection_name))
    if not sel:
        names = [r["name"] for r in log.query("SELECT name FROM selections WHERE run_id = ?", (run["id"],))]
        raise ExportError(f"run {run['id']} has no selection {selection_name!r}"
                          + (f"; it has {', '.join(names)}" if names else ""))
    return log.query(
        "SELECT p.key, p.kind, p.source, p.prompt, p.context, p.reference, p.constraints, s.text, "
        "it.combined, it.rank FROM selection_items it JOIN samples s ON s.id = it.sample_id "
        "JOIN prompts p ON p.id = s.prompt_id WHERE it.selection_id = ? ORDER BY it.id",
        (sel[0]["id"],))


def export_selection_jsonl(log: RunLog, run_id: str, selection_name: str,
                           out: str | os.PathLike) -> int:
    """The selected set as chat JSONL: {"messages": [{"role": "user", ...}, {"role": "assistant",
    ...}]} per line, the user turn formatted exactly as training sees it (backend.data.chat_messages).
    Returns the number of lines."""
    rows = selection_rows(log, run_id, selection_name)

    def lines():
        for r in rows:
            yield {"messages": chat_messages(record_from_prompt(r), r["text"] or "")}

    return write_jsonl(out, lines())


def export_evals_csv(log: RunLog, run_id: str | None, out: str | os.PathLike) -> int:
    """The evaluation table (every run, or one) as CSV; returns the number of data rows."""
    args: tuple = ()
    where = ""
    if run_id is not None:
        run = log.find_run(run_id)
        if run is None:
            raise ExportError(f"no run {run_id!r}")
        where, args = "WHERE e.run_id = ?", (run["id"],)
    rows = log.query(
        f"SELECT e.*, r.name AS run_name FROM evals e LEFT JOIN runs r ON r.id = e.run_id {where} "
        f"ORDER BY r.created_at, e.run_id, COALESCE(e.checkpoint_id, -1), e.checkpoint_tag, "
        f"e.dataset = '_all', e.dataset", args)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(EVAL_COLUMNS)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r.get(c) for c in EVAL_COLUMNS])
    tmp.replace(out)
    return len(rows)
