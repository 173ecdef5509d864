"""Exports: a checkpoint's adapter, a merged model, a selection as chat JSONL, the eval table as CSV.

An adapter or merged folder is ready to push to the Hub as is: a README.md model card whose YAML
metadata names the base model, data sets, library and tags and carries the method, the selection
(size and acceptance per kind) and the evaluation table with its intervals; the tokenizer with its
chat template; safetensors weights only (pickled files are left out, never converted silently).
A selection can also be exported as a chat data set folder that TRL's SFTTrainer (``messages``)
and LLaMA-Factory (``dataset_info.json``, sharegpt formatting with OpenAI tags) read directly.

Torch-free at import; only ``export_merged`` imports torch/transformers/peft (lazily).
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

from . import queries
from .data import chat_messages, write_jsonl
from .errors import StudioError
from .eval_details import EvalDetails, Interval, with_interval
from .records import record_from_prompt
from .runlog import RunLog

# Trainer state in a checkpoint folder: pickles and resume state, not part of an adapter.
_TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "rng_state*.pth", "training_args.bin",
                   "trainer_state.json", "scaler.pt", "global_step*")
# Pickle-based files never go into a Hub-ready folder (safetensors only).
_PICKLES = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt")
# The embedded model is the Q4_1 GGUF build of this Hub model (dequantised to fp32 for training).
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
CARD_TAGS = ["reset-studio", "reset", "rejection-sampling", "self-instruct", "sft", "faithfulness"]

EVAL_COLUMNS = ("run_id", "run_name", "checkpoint_tag", "checkpoint_id", "dataset", "category", "n",
                "faithfulness", "instruction_following", "task_score", "mean_length",
                "faithfulness_judge")


class ExportError(StudioError, ValueError):
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
    """Copy a checkpoint's folder (adapter weights + config + tokenizer) without trainer state or
    pickles, and add the model card: a folder to push to the Hub as is."""
    ck, src = _checkpoint(log, run_id, tag)
    weights = [p.name for p in src.glob("*.safetensors")]
    if not weights:
        pickled = sorted(p.name for pat in _PICKLES for p in src.glob(pat)
                         if p.name not in ("training_args.bin",))
        raise ExportError(f"checkpoint {ck['tag']} of run {ck['run_id']} has no safetensors weights"
                          + (f" (only pickled {', '.join(pickled)})" if pickled else "")
                          + "; only safetensors are exported")
    out = _prepare_out(out)
    shutil.copytree(src, out, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(*_TRAINING_STATE, *_PICKLES))
    what = "adapter" if ck["kind"] == "adapter" else "full model"
    base_id = _hub_base(log, ck)
    if what == "adapter":
        _portable_adapter_config(out, base_id)
    _ensure_chat_template(out)
    _write_meta(out, ck, what)
    write_model_card(log, ck, out, what, base_id)
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
    model.config._name_or_path = _hub_base(log, ck) or ""
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    _ensure_chat_template(out)
    _write_meta(out, ck, "merged model", merged_from=ref)
    write_model_card(log, ck, out, "merged model", _hub_base(log, ck))
    return out


# ---- model card ---------------------------------------------------------------------------------
def _root_base(log: RunLog, ck: dict[str, Any]) -> str | None:
    """The model a checkpoint was trained from at the root of its chain of ``run:`` references."""
    base, seen = ck.get("base"), set()
    while base and base.startswith("run:") and base not in seen:
        seen.add(base)
        _, rid, tag = base.split(":", 2)
        parent = log.find_checkpoint(rid, tag)
        if parent is None:
            return None
        base = parent.get("base")
    if base is None and ck["kind"] == "full":
        base = (queries.config_dict(ck["run"].get("config_toml")).get("model") or {}).get("base")
    return base


def _hub_base(log: RunLog, ck: dict[str, Any]) -> str | None:
    """The base model as a Hub id (what the card's ``base_model`` must be), or None."""
    from .models import _HUB_ID

    base = _root_base(log, ck)
    if base == "embedded":
        return EMBEDDED_HUB_ID
    return base if base and _HUB_ID.match(base) and not Path(base).exists() else None


def _portable_adapter_config(out: Path, base_id: str | None) -> None:
    """peft loads an adapter's base from ``base_model_name_or_path``: make it the Hub id."""
    cfg_path = out / "adapter_config.json"
    if base_id and cfg_path.is_file():
        cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
        cfg["base_model_name_or_path"] = base_id
        cfg_path.write_text(json.dumps(cfg, indent=2, sort_keys=True), encoding="utf-8")


def _ensure_chat_template(out: Path) -> None:
    """The chat template the model was trained with travels with its tokenizer."""
    from .models import CHATML_TEMPLATE

    tok_cfg = out / "tokenizer_config.json"
    has = (out / "chat_template.jinja").is_file() or (out / "chat_template.json").is_file()
    if not has and tok_cfg.is_file():
        has = bool(json.loads(tok_cfg.read_text(encoding="utf-8")).get("chat_template"))
    if not has:  # the same fallback backend.models gives a tokenizer without one
        (out / "chat_template.jinja").write_text(CHATML_TEMPLATE, encoding="utf-8")


def _interval(details: Any, cat: str) -> list[float] | None:
    iv = EvalDetails.from_json(details).intervals.get(cat)
    return [round(iv.lo, 4), round(iv.hi, 4)] if iv else None


def card_facts(log: RunLog, ck: dict[str, Any]) -> dict[str, Any]:
    """What the card states, from the run log: method, data, selections, evaluation rows."""
    from .data import _is_hub_id

    run = ck["run"]
    cfg = queries.config_dict(run.get("config_toml"))
    stages = [{"name": st.get("name") or st.get("type"), "type": st.get("type")}
              for st in cfg.get("stages") or []]
    types = [st["type"] for st in stages]
    if "select" in types:
        method = "ReSet: rejection sampling for continued self-instruction tuning (Wu et al., 2024)"
    elif types.count("train") > 1:
        method = "two-stage fine-tuning"
    else:
        method = "supervised fine-tuning (multi-task mixture)"
    # a local file is named by its file name only: a pushed card must not carry local paths
    data = [{"name": d.get("name"), "format": d.get("format", "auto"),
             "source": d.get("source") if _is_hub_id(d.get("source") or "")
             else Path(d.get("source") or "").name}
            for d in cfg.get("data") or []]
    selections = []
    for sel in queries.selections(log, run["id"]):
        kinds = queries.selection_kinds(log, sel["id"])
        rates = {name.split("/", 1)[1]: round(v, 4) for name, v in
                 queries.metric_values(log, run["id"], sel["stage_idx"], "accept_rate/").items()}
        policy = json.loads(sel["policy"]) if sel.get("policy") else {}
        selections.append({
            "name": sel["name"], "size": sel["n_selected"],
            "threshold": policy.get("threshold"), "weights": policy.get("weights"),
            "per_kind": {k: {"selected": n, "acceptance": rates.get(k)} for k, n in kinds.items()}
                        | {k: {"selected": 0, "acceptance": v} for k, v in rates.items()
                           if k not in kinds}})
    evals = []
    for e in queries.evals(log, run["id"]):
        row = {"checkpoint": e["checkpoint_tag"], "dataset": e["dataset"], "n": e["n"]}
        for cat in ("faithfulness", "instruction_following", "task_score"):
            if e.get(cat) is not None:
                row[cat] = round(e[cat], 4)
                if (iv := _interval(e.get("details"), cat)) is not None:
                    row[f"{cat}_ci95"] = iv
        if e.get("mean_length") is not None:
            row["mean_length"] = round(e["mean_length"], 1)
        if e.get("faithfulness_judge"):
            row["faithfulness_judge"] = e["faithfulness_judge"]
        evals.append(row)
    return {"run_id": run["id"], "run_name": run.get("name"), "preset": run.get("preset"),
            "checkpoint": ck["tag"], "step": ck["step"], "method": method, "stages": stages,
            "data": data, "hub_datasets": [d["source"] for d in data
                                           if d["source"] and _is_hub_id(d["source"])],
            "selections": selections, "evaluation": evals}


def _fmt_score(row: dict[str, Any], cat: str) -> str:
    if cat not in row:
        return "–"
    return with_interval(row[cat], Interval.from_json(row.get(f"{cat}_ci95")))


def model_card(log: RunLog, ck: dict[str, Any], what: str, base_id: str | None) -> str:
    """README.md text: YAML metadata (checked by huggingface_hub) and a readable body."""
    from huggingface_hub import ModelCard, ModelCardData

    f = card_facts(log, ck)
    adapter = what == "adapter"
    meta = ModelCardData(
        base_model=base_id, datasets=f["hub_datasets"] or None,
        library_name="peft" if adapter else "transformers", pipeline_tag="text-generation",
        tags=CARD_TAGS + (["lora", "peft"] if adapter else []) + (["merged"] if what == "merged model" else []),
        reset_studio={k: f[k] for k in ("run_id", "run_name", "preset", "checkpoint", "step",
                                        "method", "stages", "data", "selections", "evaluation")})
    name = f"{f['run_name'] or f['run_id']} · {f['checkpoint']}"
    lines = [f"# {name}", "",
             f"A {what} exported by ReSet Studio from run `{f['run_id']}`, checkpoint "
             f"`{f['checkpoint']}` (step {f['step']}).", "",
             "## Method", "", f"{f['method']}.", "",
             "Stage plan: " + " → ".join(f"{s['name']} ({s['type']})" for s in f["stages"]) + "."
             if f["stages"] else "Stage plan: not recorded.", ""]
    if base_id == EMBEDDED_HUB_ID and _root_base(log, ck) == "embedded":
        lines += [f"Base model: `{base_id}`, trained from its Q4_1 GGUF build (dequantised to fp32), "
                  "so the weights differ slightly from the Hub's full-precision ones.", ""]
    elif base_id is None:
        lines += [f"Base model: `{_root_base(log, ck) or 'unknown'}` (a local model, not on the Hub).", ""]
    lines += ["## Data", "", "| name | source | format |", "|---|---|---|"]
    lines += [f"| {d['name']} | `{d['source']}` | {d['format']} |" for d in f["data"]] or ["| – | – | – |"]
    lines += [""]
    if f["selections"]:
        lines += ["## Selection", "", "| selection | kind | selected | acceptance |", "|---|---|---|---|"]
        for sel in f["selections"]:
            lines.append(f"| {sel['name']} | all | {sel['size']} | threshold {sel['threshold']} |")
            for kind, v in sorted(sel["per_kind"].items()):
                acc = "–" if v["acceptance"] is None else f"{v['acceptance']:.1%}"
                lines.append(f"| {sel['name']} | {kind} | {v['selected']} | {acc} |")
        lines += ["", "Acceptance: the share of a kind's prompts with at least one accepted sample.", ""]
    lines += ["## Evaluation", ""]
    if f["evaluation"]:
        lines += ["Means with 95 % bootstrap intervals over the eval items.", "",
                  "| checkpoint | data set | n | faithfulness | instruction following | task | "
                  "mean length | faithfulness judge |", "|---|---|---|---|---|---|---|---|"]
        for r in f["evaluation"]:
            lines.append(f"| {r['checkpoint']} | {r['dataset']} | {r['n']} | "
                         f"{_fmt_score(r, 'faithfulness')} | {_fmt_score(r, 'instruction_following')} | "
                         f"{_fmt_score(r, 'task_score')} | {r.get('mean_length', '–')} | "
                         f"{r.get('faithfulness_judge', '–')} |")
    else:
        lines.append("This run has no evaluation.")
    load = (f'PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained("{base_id}"), "PATH")'
            if adapter else 'AutoModelForCausalLM.from_pretrained("PATH")')
    lines += ["", "## Use", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer"
              + ("\nfrom peft import PeftModel" if adapter else ""),
              f"model = {load}", 'tokenizer = AutoTokenizer.from_pretrained("PATH")', "```", ""]
    content = f"---\n{meta.to_yaml()}\n---\n\n" + "\n".join(lines)
    ModelCard(content, ignore_metadata_errors=False)  # refuses metadata the Hub would reject
    return content


def write_model_card(log: RunLog, ck: dict[str, Any], out: Path, what: str,
                     base_id: str | None) -> Path:
    path = out / "README.md"
    path.write_text(model_card(log, ck, what, base_id), encoding="utf-8")
    return path


def selection_rows(log: RunLog, run_id: str, selection_name: str) -> list[dict[str, Any]]:
    run = log.find_run(run_id)
    if run is None:
        raise ExportError(f"no run {run_id!r}")
    sel = queries.selection(log, run["id"], selection_name)
    if not sel:
        names = [r["name"] for r in queries.selections(log, run["id"])]
        raise ExportError(f"run {run['id']} has no selection {selection_name!r}"
                          + (f"; it has {', '.join(names)}" if names else ""))
    return queries.selected_samples(log, sel["id"])


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


# LLaMA-Factory's dataset_info.json entry for OpenAI-style "messages" in sharegpt formatting
def _llamafactory_entry(file_name: str) -> dict[str, Any]:
    return {"file_name": file_name, "formatting": "sharegpt", "columns": {"messages": "messages"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant", "system_tag": "system"}}


def export_selection_dataset(log: RunLog, run_id: str, selection_name: str,
                             out: str | os.PathLike) -> Path:
    """A folder with the selection as ``train.jsonl`` (chat ``messages``: TRL's SFTTrainer loads it
    with ``load_dataset("json")`` or from the folder), ``dataset_info.json`` (LLaMA-Factory: set
    ``dataset_dir`` to the folder and ``dataset`` to the selection's name) and a data set card."""
    out = _prepare_out(out)
    n = export_selection_jsonl(log, run_id, selection_name, out / "train.jsonl")
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", selection_name) or "selection"
    (out / "dataset_info.json").write_text(
        json.dumps({name: _llamafactory_entry("train.jsonl")}, indent=2), encoding="utf-8")
    run = log.find_run(run_id)
    from huggingface_hub import DatasetCard, DatasetCardData

    meta = DatasetCardData(task_categories=["text-generation"], tags=CARD_TAGS + ["chat"],
                           configs=[{"config_name": "default",
                                     "data_files": [{"split": "train", "path": "train.jsonl"}]}])
    body = (f"# Selection `{selection_name}` of run `{run['id']}`\n\n{n} accepted (prompt, response) "
            "pairs as chat `messages`, the user turn formatted as training saw it.\n")
    content = f"---\n{meta.to_yaml()}\n---\n\n{body}"
    DatasetCard(content, ignore_metadata_errors=False)
    (out / "README.md").write_text(content, encoding="utf-8")
    return out


def export_evals_csv(log: RunLog, run_id: str | None, out: str | os.PathLike) -> int:
    """The evaluation table (every run, or one) as CSV; returns the number of data rows."""
    run = log.find_run(run_id) if run_id is not None else None
    if run_id is not None and run is None:
        raise ExportError(f"no run {run_id!r}")
    rows = queries.evals(log, run["id"] if run else None)
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
