"""Data layer: load data sets with `datasets`, map them into Records, mix them, split them.

Every source becomes a list of ``Record``; a mixture is a seeded, reproducible draw over several
sources by weight or budget; the eval split is chosen by a hash of the record id, so it is the
same on every machine and can never overlap the train split.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any, Iterable

from .config import DatasetSpec
from .records import KINDS, Record

FILE_TYPES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}

SUMMARIZE_PROMPT = "Summarize the article in two or three sentences."
XSUM_PROMPT = "Summarize the document in one sentence."

# format -> (implied kind, default column mapping: record field -> source column)
FORMATS: dict[str, tuple[str | None, dict[str, str]]] = {
    "records": (None, {"id": "id", "kind": "kind", "prompt": "prompt", "context": "context",
                       "reference": "reference", "instruction_id_list": "instruction_id_list",
                       "kwargs": "kwargs"}),
    "alpaca": ("instruction", {"prompt": "instruction", "input": "input", "reference": "output"}),
    "sharegpt": ("instruction", {"conversations": "conversations"}),
    "squad": ("qa_extractive", {"id": "id", "context": "context", "prompt": "question",
                                "reference": "answers"}),
    "cnn_dailymail": ("summarization", {"id": "id", "context": "article", "reference": "highlights"}),
    "xsum": ("summarization", {"id": "id", "context": "document", "reference": "summary"}),
    "ifeval": ("instruction", {"id": "key", "prompt": "prompt",
                               "instruction_id_list": "instruction_id_list", "kwargs": "kwargs",
                               "reference": "response"}),
    "custom": (None, {}),
}
# columns whose presence identifies a format (checked in this order)
_SIGNATURES = [
    ("records", {"kind", "prompt"}),
    ("ifeval", {"prompt", "instruction_id_list"}),
    ("squad", {"context", "question", "answers"}),
    ("cnn_dailymail", {"article", "highlights"}),
    ("xsum", {"document", "summary"}),
    ("sharegpt", {"conversations"}),
    ("alpaca", {"instruction", "output"}),
]


def _create_tqdm_lock() -> None:
    """tqdm creates its class-wide lock lazily; two threads loading data sets at once (the GUI's
    preview and launch checks) can race on it ("type object 'tqdm' has no attribute '_lock'").
    Creating it once, at import, removes the race."""
    from tqdm import tqdm

    tqdm.get_lock()


_create_tqdm_lock()


class DataError(ValueError):
    """A data set that cannot be used; the message names the file, line or column."""


# ---- loading ----------------------------------------------------------------------------------
def _check_jsonl(path: Path) -> None:
    """datasets reports a bad JSONL line without its number; find it first."""
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise DataError(f"{path}: line {lineno} is not valid JSON ({exc})") from None
            if not isinstance(value, dict):
                raise DataError(f"{path}: line {lineno} is a JSON {type(value).__name__}, "
                                "expected an object")


def _is_hub_id(source: str) -> bool:
    return not Path(source).suffix and source.count("/") == 1 and not source.startswith((".", "/"))


def load_rows(source: str, *, split: str = "train", subset: str | None = None) -> list[dict[str, Any]]:
    """Rows of a local file (json/jsonl/csv/parquet) or a hub data set, as plain dicts."""
    import datasets

    datasets.disable_progress_bars()
    path = Path(source).expanduser()
    try:
        if path.exists():
            kind = FILE_TYPES.get(path.suffix.lower())
            if kind is None:
                raise DataError(f"{path}: unsupported file type {path.suffix!r}; use "
                                f"{', '.join(sorted(FILE_TYPES))}")
            if path.stat().st_size < 4096 and not path.read_bytes().strip():
                raise DataError(f"{path}: the file is empty")
            if path.suffix.lower() == ".jsonl":
                _check_jsonl(path)
            ds = datasets.load_dataset(kind, data_files=str(path), split="train")
        elif _is_hub_id(source):
            try:
                ds = datasets.load_dataset(source, subset, split=split)
            except Exception as exc:  # noqa: BLE001 - any hub failure becomes one clear line
                raise DataError(f"could not load data set {source!r} from the hub (offline, or "
                                f"wrong id/split?): {type(exc).__name__}: {str(exc)[:200]}") from None
        else:
            raise DataError(f"data file not found: {source}")
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - parse errors from pyarrow/pandas
        while exc.__cause__ is not None or exc.__context__ is not None:  # datasets wraps the cause
            exc = exc.__cause__ or exc.__context__
        raise DataError(f"{source}: could not be read ({type(exc).__name__}: {str(exc)[:300]})") from None
    if len(ds) == 0:
        raise DataError(f"{source}: the data set is empty")
    return ds.to_list()


def detect_format(columns: Iterable[str]) -> str:
    cols = set(columns)
    for name, needed in _SIGNATURES:
        if needed <= cols:
            return name
    raise DataError(f"cannot tell the format from columns {sorted(cols)}; set `format` or a "
                    "column mapping (format = \"custom\")")


# ---- mapping ----------------------------------------------------------------------------------
def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict) and "text" in value:  # SQuAD answers
        value = value["text"]
    if isinstance(value, list):
        value = value[0] if value else None
        return _text(value)
    text = str(value).strip()
    return text or None


def _clean_kwargs(kwargs: Any, n: int) -> list[dict[str, Any]]:
    """Arrow fills every kwargs dict with all keys seen in the file; drop the None ones."""
    if isinstance(kwargs, str):
        kwargs = json.loads(kwargs) if kwargs.strip() else []
    kwargs = list(kwargs or [])
    out = [{k: v for k, v in (kw or {}).items() if v is not None} for kw in kwargs]
    return out + [{}] * (n - len(out))


def _conversation(turns: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    user = assistant = None
    for turn in turns or []:
        role = turn.get("from") or turn.get("role")
        value = turn.get("value") or turn.get("content")
        if role in ("human", "user") and user is None:
            user = value
        elif role in ("gpt", "assistant") and user is not None and assistant is None:
            assistant = value
    return user, assistant


def map_rows(rows: list[dict[str, Any]], spec: DatasetSpec) -> list[Record]:
    fmt = spec.format if spec.format != "auto" else (
        "custom" if spec.columns and spec.kind else detect_format(rows[0].keys()))
    implied_kind, mapping = FORMATS[fmt]
    mapping = {**mapping, **spec.columns}
    kind = spec.kind or implied_kind
    columns = set(rows[0].keys())
    required = {"prompt"} if fmt not in ("sharegpt", "cnn_dailymail", "xsum") else set()
    if fmt in ("sharegpt",):
        required = {"conversations"}
    for field in required | ({"context"} if kind in ("qa_extractive", "qa_abstractive",
                                                     "summarization") else set()):
        col = mapping.get(field)
        if col is None or col not in columns:
            raise DataError(f"{spec.name} ({spec.source}): missing column {col or field!r} for "
                            f"record field {field!r}; the file has columns {sorted(columns)}")
    if kind is None and "kind" not in columns:
        raise DataError(f"{spec.name}: set `kind` (one of {list(KINDS)}); the format {fmt!r} "
                        "does not imply one")
    records: list[Record] = []
    for i, row in enumerate(rows):
        get = lambda field: row.get(mapping[field]) if field in mapping else None  # noqa: E731
        rec_kind = kind or row.get(mapping.get("kind", "kind"))
        if rec_kind not in KINDS:
            raise DataError(f"{spec.name} row {i + 1}: unknown kind {rec_kind!r}; use {list(KINDS)}")
        if fmt == "sharegpt":
            prompt, reference = _conversation(get("conversations"))
        else:
            prompt, reference = _text(get("prompt")), _text(get("reference"))
            if fmt == "alpaca" and _text(get("input")):
                prompt = f"{prompt}\n\n{_text(get('input'))}"
        if rec_kind == "summarization" and not prompt:
            prompt = XSUM_PROMPT if fmt == "xsum" else SUMMARIZE_PROMPT
        context = _text(get("context"))
        if not prompt:
            raise DataError(f"{spec.name} row {i + 1}: empty prompt")
        if rec_kind != "instruction" and not context:
            raise DataError(f"{spec.name} row {i + 1}: a {rec_kind} record needs a context")
        ids = get("instruction_id_list") or []
        if isinstance(ids, str):
            ids = json.loads(ids) if ids.strip().startswith("[") else [ids]
        raw_id = get("id")
        records.append(Record(
            id=f"{spec.name}:{raw_id if raw_id not in (None, '') else i}",
            kind=rec_kind, prompt=prompt, context=context, reference=reference,
            instruction_id_list=list(ids), kwargs=_clean_kwargs(get("kwargs"), len(ids)),
            source=spec.name))
    keys = [r.id for r in records]
    if len(set(keys)) != len(keys):
        dupes = sorted({k for k in keys if keys.count(k) > 1})[:3]
        raise DataError(f"{spec.name}: duplicate ids {dupes}")
    return records


def load_dataset_records(spec: DatasetSpec) -> list[Record]:
    return map_rows(load_rows(spec.source, split=spec.split, subset=spec.subset), spec)


# ---- splits and mixtures ----------------------------------------------------------------------
def _unit(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:12], 16) / float(16 ** 12)


def split_records(spec: DatasetSpec) -> tuple[list[Record], list[Record]]:
    """(train, eval) for one data set: a held-out file, or a hash slice of the source."""
    records = load_dataset_records(spec)
    if spec.eval_source:
        eval_spec = spec.model_copy(update={"source": spec.eval_source, "eval_source": None})
        held = [r for r in load_dataset_records(eval_spec)]
        for r in held:
            r.id = r.id.replace(f"{spec.name}:", f"{spec.name}:eval:", 1)
        train = records
    else:
        held = [r for r in records if _unit(r.id) < spec.eval_fraction]
        train = [r for r in records if _unit(r.id) >= spec.eval_fraction]
    if spec.eval_size:
        held = held[: spec.eval_size]
    if not train:
        raise DataError(f"{spec.name}: no training records left after the eval split")
    return train, held


def mixture_counts(specs: list[DatasetSpec], sizes: dict[str, int], total: int | None = None) -> dict[str, int]:
    """Examples to draw from each data set: its budget, or its weight's share of the total."""
    weighted = [s for s in specs if s.budget is None]
    wsum = sum((s.weight or 0.0) for s in weighted)
    if weighted and wsum <= 0 and all(s.budget is None for s in specs):
        raise DataError("mixture weights sum to zero; give a data set a positive weight or a budget")
    counts = {s.name: s.budget for s in specs if s.budget is not None}
    if weighted:
        pool = total if total is not None else sum(sizes[s.name] for s in weighted)
        for s in weighted:
            counts[s.name] = int(round(pool * (s.weight or 0.0) / wsum)) if wsum > 0 else 0
    return counts


def build_mixture(specs: list[DatasetSpec], seed: int, *, names: list[str] | None = None,
                  max_examples: int | None = None) -> list[Record]:
    """Seeded draw over the train splits; a data set asked for more than it has is repeated."""
    chosen = [s for s in specs if not names or s.name in names]
    if not chosen:
        raise DataError("the mixture is empty: no data sets selected")
    trains = {s.name: split_records(s)[0] for s in chosen}
    counts = mixture_counts(chosen, {k: len(v) for k, v in trains.items()})
    rng = random.Random(seed)
    mixed: list[Record] = []
    for s in chosen:
        pool, want = trains[s.name], counts[s.name]
        order = list(range(len(pool)))
        rng.shuffle(order)
        picks = [pool[order[i % len(pool)]] for i in range(want)]
        mixed.extend(picks)
    rng.shuffle(mixed)
    if max_examples is not None:
        mixed = mixed[:max_examples]
    if not mixed:
        raise DataError("the mixture is empty after applying weights and budgets")
    return mixed


def eval_sets(specs: list[DatasetSpec], names: list[str] | None = None,
              size: int | None = None) -> dict[str, list[Record]]:
    out = {}
    for s in specs:
        if names and s.name not in names:
            continue
        held = split_records(s)[1]
        if size:
            held = held[:size]
        if held:
            out[s.name] = held
    return out


def preview(spec: DatasetSpec, n: int = 5) -> list[Record]:
    """First records of a data set, for the GUI's mixture editor."""
    rows = load_rows(spec.source, split=spec.split, subset=spec.subset)
    return map_rows(rows[: max(n, 1)], spec)


# ---- chat formatting --------------------------------------------------------------------------
def user_message(record: Record) -> str:
    if record.kind == "summarization":
        return f"{record.prompt}\n\nArticle:\n{record.context}"
    if record.context:
        return (f"Answer the question using only the context.\n\nContext:\n{record.context}\n\n"
                f"Question: {record.prompt}")
    return record.prompt


def chat_messages(record: Record, response: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": user_message(record)}]
    if response is not None:
        messages.append({"role": "assistant", "content": response})
    return messages


def write_jsonl(path: str | os.PathLike, rows: Iterable[dict[str, Any]]) -> int:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n
