"""``reset-gui judge``: score the responses in a JSONL file with the same judges the runs use.

Input: one JSON object per line with ``response`` and ``prompt`` (strings), and optionally
``context``, ``reference``, ``instruction_id_list`` (list of strings), ``kwargs`` (list of objects,
one per instruction id), ``kind``, ``id``. Output: each input object plus ``scores`` (judge ->
value, for the judges that apply) and ``category_scores`` (``faithfulness`` /
``instruction_following`` / ``task`` where they apply, and ``combined``). Every line is checked
before any judge runs; a bad line is reported by number. The output is written atomically.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import StudioError
from .records import KINDS, Record

BATCH = 64


class JudgeFileError(StudioError, ValueError):
    """An input file that cannot be judged; the message names the file and line."""


def _record(obj: Any, where: str) -> tuple[Record, str]:
    if not isinstance(obj, dict):
        raise JudgeFileError(f"{where}: expected a JSON object, got a JSON {type(obj).__name__}")
    resp = obj.get("response")
    if not isinstance(resp, str):
        raise JudgeFileError(f"{where}: `response` must be a string"
                             + (" (missing)" if resp is None else f", got {type(resp).__name__}"))
    prompt = obj.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise JudgeFileError(f"{where}: `prompt` must be a non-empty string"
                             + (" (missing)" if prompt is None else ""))
    for field in ("context", "reference"):
        if obj.get(field) is not None and not isinstance(obj[field], str):
            raise JudgeFileError(f"{where}: `{field}` must be a string or null, got "
                                 f"{type(obj[field]).__name__}")
    ids = obj.get("instruction_id_list") or []
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise JudgeFileError(f"{where}: `instruction_id_list` must be a list of strings")
    kwargs = obj.get("kwargs") or []
    if isinstance(kwargs, dict):
        kwargs = [kwargs]
    if not isinstance(kwargs, list) or not all(isinstance(k, dict) for k in kwargs):
        raise JudgeFileError(f"{where}: `kwargs` must be a list of objects (one per instruction id)")
    if len(kwargs) > len(ids):
        raise JudgeFileError(f"{where}: {len(kwargs)} kwargs objects for {len(ids)} instruction ids")
    kwargs = [{k: v for k, v in kw.items() if v is not None} for kw in kwargs]
    kwargs += [{}] * (len(ids) - len(kwargs))
    context = obj.get("context") or None
    kind = obj.get("kind") or ("qa_abstractive" if context else "instruction")
    if kind not in KINDS:
        raise JudgeFileError(f"{where}: unknown kind {kind!r}; use one of {list(KINDS)}")
    rec = Record(id=str(obj.get("id", where)), kind=kind, prompt=prompt, context=context,
                 reference=obj.get("reference") or None, instruction_id_list=ids, kwargs=kwargs,
                 source="file")
    return rec, resp


def read_items(path: str | os.PathLike) -> list[tuple[dict[str, Any], Record, str]]:
    path = Path(path)
    if not path.is_file():
        raise JudgeFileError(f"input file not found: {path}")
    items = []
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line:
                continue
            where = f"{path}: line {lineno}"
            try:
                obj = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                raise JudgeFileError(f"{where} is not UTF-8 text") from None
            except json.JSONDecodeError as exc:
                raise JudgeFileError(f"{where} is not valid JSON ({exc.msg} at column "
                                     f"{exc.colno})") from None
            rec, resp = _record(obj, where)
            items.append((obj, rec, resp))
    if not items:
        raise JudgeFileError(f"{path}: no lines to judge")
    return items


def judge_file(input_path: str | os.PathLike, output_path: str | os.PathLike,
               judges: str | list[str] = "auto", weights: dict[str, float] | None = None,
               settings: dict[str, Any] | None = None) -> dict[str, Any]:
    """Judge every line of ``input_path`` into ``output_path``; returns a summary (counts, the
    judges that ran, mean per judge and per category)."""
    from .judges import build_judges, score_records
    from .config import JudgeSpec

    items = read_items(input_path)
    if isinstance(judges, str) and judges != "auto":
        judges = [j.strip() for j in judges.split(",") if j.strip()]
    built = build_judges(judges, settings or {})
    if not built:
        raise JudgeFileError("no judges selected")
    # a run's default weights (config.JudgeSpec), so the CLI and the runs rank alike
    w = dict(weights) if weights else dict(JudgeSpec().weights)
    out_path = Path(output_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    sums: dict[str, list[float]] = {}
    cat_sums: dict[str, list[float]] = {}
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            for k in range(0, len(items), BATCH):
                chunk = items[k:k + BATCH]
                results = score_records(built, [c[1] for c in chunk], [c[2] for c in chunk], w)
                for (obj, _, _), res in zip(chunk, results):
                    scores = {n: v for n, v in res["scores"].items() if v is not None}
                    errors = {n: d["error"] for n, d in res["details"].items()
                              if res["scores"].get(n) is None and isinstance(d, dict) and d.get("error")}
                    cats = {c: v for c, v in res["category_scores"].items()
                            if v is not None or c == "combined"}
                    out = {**obj, "scores": scores, "category_scores": cats}
                    if errors:
                        out["judge_errors"] = errors
                    fh.write(json.dumps(out, ensure_ascii=False) + "\n")
                    for n, v in scores.items():
                        sums.setdefault(n, []).append(v)
                    for c, v in cats.items():
                        if v is not None:
                            cat_sums.setdefault(c, []).append(v)
        tmp.replace(out_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    faith = next((j for j in built if j.category == "faithfulness"), None)
    return {
        "input": str(input_path), "output": str(out_path), "n": len(items),
        "judges": [j.name for j in built], "weights": w,
        "faithfulness_judge": faith.name if faith else None,
        "faithfulness_selection": getattr(faith, "selection_note", None) if faith else None,
        "mean_scores": {n: sum(v) / len(v) for n, v in sums.items()},
        "n_scored": {n: len(v) for n, v in sums.items()},
        "mean_category_scores": {c: sum(v) / len(v) for c, v in cat_sums.items()},
    }


def judge_list_text(settings: dict[str, Any] | None = None) -> str:
    """The table printed by ``reset-gui judge --list``."""
    from .judges import list_judges, pick_faithfulness_judge

    rows = list_judges(settings or {})
    w_name = max(len(r[0]) for r in rows)
    w_cat = max(len(r[1]) for r in rows)
    lines = [f"{'judge':<{w_name}}  {'category':<{w_cat}}  runs here"]
    for name, cat, ok, why in rows:
        lines.append(f"{name:<{w_name}}  {cat:<{w_cat}}  {'yes' if ok else 'no '}  {why}")
    auto = pick_faithfulness_judge(settings or {})
    lines.append("")
    lines.append(f"faithfulness \"auto\" picks: {auto.name}"
                 + (f" — {auto.selection_note}" if getattr(auto, "selection_note", None) else ""))
    return "\n".join(lines)
