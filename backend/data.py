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
import tempfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable

from .config import DatasetSpec
from .errors import StudioError
from .records import KINDS, Record

FILE_TYPES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}

SUMMARIZE_PROMPT = "Summarize the article in two or three sentences."
XSUM_PROMPT = "Summarize the document in one sentence."
# Policy for a SQuAD v2 question with no answer: train on an explicit refusal grounded in the
# context, not skip it; learning to say so is the faithful behaviour the method is after.
UNANSWERABLE_REPLY = "The context does not contain the answer to this question."
CHARS_PER_TOKEN = 4  # the preview's token estimate (no tokenizer in the GUI); training counts exactly
# Truncation policy, stated in the preview and in the train stage's events.
TRUNCATION_POLICY = ("an example longer than max_length loses the END of its context first (an "
                     "article's lead and the passage's start are kept), so the whole reference is "
                     "learned; an extractive answer cut out of its context drops the example; only "
                     "an example without context loses the end of its response")

# format -> (implied kind, default column mapping: record field -> source column)
FORMATS: dict[str, tuple[str | None, dict[str, str]]] = {
    "records": (None, {"id": "id", "kind": "kind", "prompt": "prompt", "context": "context",
                       "reference": "reference", "instruction_id_list": "instruction_id_list",
                       "kwargs": "kwargs"}),
    "alpaca": ("instruction", {"prompt": "instruction", "input": "input", "reference": "output"}),
    "sharegpt": ("instruction", {"id": "id", "conversations": "conversations"}),
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
    ("sharegpt", {"messages"}),  # the OpenAI/TRL chat layout (role/content), as exported here
    ("alpaca", {"instruction", "output"}),
]


def _create_tqdm_lock() -> None:
    """tqdm creates its class-wide lock lazily; two threads loading data sets at once (the GUI's
    preview and launch checks) can race on it ("type object 'tqdm' has no attribute '_lock'").
    Creating it once, at import, removes the race."""
    from tqdm import tqdm

    tqdm.get_lock()


_create_tqdm_lock()


class DataError(StudioError, ValueError):
    """A data set that cannot be used; the message names the file, line or column."""


@dataclass
class DataReport:
    """What loading a data set did to its rows besides mapping them: nothing is changed silently."""
    name: str = ""
    rows: int = 0
    encoding: str | None = None  # a non-UTF-8 encoding the file was read as (from its BOM)
    no_reference: int = 0        # kept as prompts (sampling, evaluation); not trained on
    unanswerable: int = 0        # SQuAD v2 questions with no answer -> UNANSWERABLE_REPLY
    over_length: int = 0         # preview only: records estimated longer than max_length
    over_tokens: int = 0         # ... and the tokens that training would cut (estimate)
    max_length: int | None = None

    def notes(self) -> list[str]:
        out = []
        if self.encoding:
            out.append(f"{self.name}: file is {self.encoding.upper()} (byte-order mark); read it "
                       "as such")
        if self.unanswerable:
            out.append(f"{self.name}: {self.unanswerable} of {self.rows} questions have no answer "
                       f"(SQuAD v2 unanswerable): trained on the reply {UNANSWERABLE_REPLY!r}")
        if self.no_reference:
            out.append(f"{self.name}: {self.no_reference} of {self.rows} records have no reference "
                       "(e.g. an empty Alpaca `output`): kept as prompts for sampling and "
                       "evaluation, skipped by supervised training")
        if self.over_length:
            out.append(f"{self.name}: about {self.over_length} of {self.rows} records exceed "
                       f"max_length={self.max_length} tokens (≈{self.over_tokens} tokens would be "
                       f"cut, at {CHARS_PER_TOKEN} characters a token); {TRUNCATION_POLICY}")
        return out


_REPORTS: dict[str, DataReport] = {}  # the last load of each data set in this process, by name


class Preview(list):
    """The first mapped records of a data set, plus its whole-set report (``notes``)."""

    def __init__(self, records: list[Record], report: DataReport):
        super().__init__(records)
        self.report = report
        self.notes = report.notes()


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


_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32-le"),
         (b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))


def _as_utf8(path: Path) -> tuple[Path, str | None]:
    """A text file with a byte-order mark is re-encoded once to a UTF-8 copy (cached by content
    hash) that the loaders read; a UTF-16 file without one is named, not mis-parsed."""
    if path.suffix.lower() not in (".json", ".jsonl", ".csv"):
        return path, None
    with path.open("rb") as fh:
        head = fh.read(4096)
    encoding = next((enc for bom, enc in _BOMS if head.startswith(bom)), None)
    if encoding is None:
        if len(head) >= 4 and head.count(b"\x00") > len(head) // 4:
            raise DataError(f"{path}: file looks UTF-16 or UTF-32 without a byte-order mark; save "
                            "it as UTF-8")
        return path, None
    data = path.read_bytes()
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: starts with a {encoding} byte-order mark but is not valid "
                        f"{encoding} ({exc}); save it as UTF-8") from None
    digest = hashlib.sha1(data).hexdigest()[:16]
    copy = Path(tempfile.gettempdir()) / "reset-studio-utf8" / f"{digest}{path.suffix.lower()}"
    if not copy.exists():
        copy.parent.mkdir(parents=True, exist_ok=True)
        tmp = copy.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(copy)
    return copy, (None if encoding == "utf-8-sig" else encoding)


def _is_hub_id(source: str) -> bool:
    return not Path(source).suffix and source.count("/") == 1 and not source.startswith((".", "/"))


def load_rows(source: str, *, split: str = "train", subset: str | None = None,
              report: DataReport | None = None) -> list[dict[str, Any]]:
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
            readable, encoding = _as_utf8(path)
            if report is not None:
                report.encoding = encoding
            if path.suffix.lower() == ".jsonl":
                try:
                    _check_jsonl(readable)
                except DataError as exc:  # name the user's file, not the UTF-8 copy
                    raise DataError(str(exc).replace(str(readable), str(path))) from None
            ds = datasets.load_dataset(kind, data_files=str(readable), split="train")
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
        return _text(value[0] if value else None)
    text = str(value).strip()
    return text or None


def _texts(value: Any) -> list[str]:
    """Every distinct gold text of a reference cell, in order: SQuAD's ``answers`` holds several
    ({"text": [...]} in v1/v2 Parquet, or a list of {"text": ...} in the original JSON)."""
    if isinstance(value, dict) and "text" in value:
        value = value["text"]
    items = value if isinstance(value, (list, tuple)) else [value]
    return list(dict.fromkeys(t for t in map(_text, items) if t is not None))  # distinct, in order


def _clean_kwargs(kwargs: Any, n: int) -> list[dict[str, Any]]:
    """Arrow fills every kwargs dict with all keys seen in the file; drop the None ones."""
    if isinstance(kwargs, str):
        kwargs = json.loads(kwargs) if kwargs.strip() else []
    kwargs = list(kwargs or [])
    out = [{k: v for k, v in (kw or {}).items() if v is not None} for kw in kwargs]
    return out + [{}] * (n - len(out))


def _conversation(turns: Any) -> tuple[str | None, str | None]:
    """The first user turn and the assistant turn answering it (system turns are skipped)."""
    if isinstance(turns, dict):  # a struct of lists (Sequence of dict features) -> list of dicts
        keys = list(turns)
        turns = [dict(zip(keys, vals)) for vals in zip(*(turns[k] or [] for k in keys))]
    user = assistant = None
    for turn in turns or []:
        role = turn.get("from") or turn.get("role")
        value = turn.get("value") or turn.get("content")
        if role in ("human", "user") and user is None:
            user = value
        elif role in ("gpt", "assistant") and user is not None and assistant is None:
            assistant = value
    return user, assistant


def _no_answers(value: Any) -> bool:
    """SQuAD v2 marks an unanswerable question with empty answer lists."""
    if isinstance(value, dict):
        value = value.get("text")
    return isinstance(value, (list, tuple)) and len(value) == 0


def map_rows(rows: list[dict[str, Any]], spec: DatasetSpec,
             report: DataReport | None = None) -> list[Record]:
    fmt = spec.format if spec.format != "auto" else (
        "custom" if spec.columns and spec.kind else detect_format(rows[0].keys()))
    implied_kind, mapping = FORMATS[fmt]
    mapping = {**mapping, **spec.columns}
    kind = spec.kind or implied_kind
    columns = set(rows[0].keys())
    required = {"prompt"} if fmt not in ("sharegpt", "cnn_dailymail", "xsum") else set()
    if fmt == "sharegpt":
        required = {"conversations"}
        if mapping["conversations"] not in columns and "messages" in columns:
            mapping["conversations"] = "messages"
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
            if fmt == "squad" and reference is None and _no_answers(get("reference")):
                reference = UNANSWERABLE_REPLY
                if report is not None:
                    report.unanswerable += 1
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
        golds = _texts(get("reference")) if fmt != "sharegpt" else []
        if reference is None and report is not None:
            report.no_reference += 1
        records.append(Record(
            id=f"{spec.name}:{raw_id if raw_id not in (None, '') else i}",
            kind=rec_kind, prompt=prompt, context=context, reference=reference,
            references=golds if len(golds) > 1 else [],
            instruction_id_list=list(ids), kwargs=_clean_kwargs(get("kwargs"), len(ids)),
            source=spec.name))
    dupes = sorted(k for k, n in Counter(r.id for r in records).items() if n > 1)
    if dupes:
        raise DataError(f"{spec.name}: duplicate ids {dupes[:3]}")
    return records


def load_dataset_records(spec: DatasetSpec, report: DataReport | None = None) -> list[Record]:
    report = report if report is not None else DataReport()
    report.name = spec.name
    rows = load_rows(spec.source, split=spec.split, subset=spec.subset, report=report)
    report.rows = len(rows)
    records = map_rows(rows, spec, report)
    _REPORTS[spec.name] = report
    return records


def data_notes(specs: list[DatasetSpec], names: list[str] | None = None) -> list[str]:
    """The load notes (encoding, unanswerable, no reference) of the data sets a stage uses, for
    its events; from this process's last load of each, else loaded now."""
    out = []
    for s in specs:
        if names and s.name not in names:
            continue
        if s.name not in _REPORTS:
            load_dataset_records(s)
        out.extend(_REPORTS[s.name].notes())
    return out


# ---- splits and mixtures ----------------------------------------------------------------------
def _unit(key: str) -> float:
    return int(hashlib.sha1(key.encode()).hexdigest()[:12], 16) / float(16 ** 12)


def split_records(spec: DatasetSpec) -> tuple[list[Record], list[Record]]:
    """(train, eval) for one data set: a held-out file, or a hash slice of the source."""
    records = load_dataset_records(spec)
    if spec.eval_source:
        eval_spec = spec.model_copy(update={"source": spec.eval_source, "eval_source": None})
        held = load_dataset_records(eval_spec)
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
        mixed.extend(pool[order[i % len(pool)]] for i in range(want))
    rng.shuffle(mixed)
    if max_examples is not None:
        mixed = mixed[:max_examples]
    if not mixed:
        raise DataError("the mixture is empty after applying weights and budgets")
    return mixed


def eval_sets(specs: list[DatasetSpec], names: list[str] | None = None,
              size: int | None = None) -> dict[str, list[Record]]:
    held = {s.name: split_records(s)[1][:size or None] for s in specs
            if not names or s.name in names}
    return {name: records for name, records in held.items() if records}


def _estimated_tokens(record: Record) -> int:
    text = user_message(record) + (record.reference or "")
    return len(text) // CHARS_PER_TOKEN + 8  # + the chat template's few tokens


def preview(spec: DatasetSpec, n: int = 5, max_length: int | None = None) -> Preview:
    """First records of a data set, for the GUI's mixture editor, with the whole set's report:
    every row is mapped so the counts (no reference, unanswerable, over max_length) are real."""
    report = DataReport()
    records = load_dataset_records(spec, report)
    if max_length:
        report.max_length = max_length
        over = [_estimated_tokens(r) - max_length for r in records]
        over = [o for o in over if o > 0]
        report.over_length, report.over_tokens = len(over), sum(over)
    return Preview(records[: max(n, 1)], report)


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
        for n, row in enumerate(rows, 1):
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return n


# ---- fitting examples into max_length (the stated truncation policy) -------------------------
IGNORE_INDEX = -100


@dataclass
class FitReport:
    """What fitting a training set into max_length cut; every number goes to the stage's events."""
    max_length: int
    examples: int = 0
    context_cut: int = 0          # examples whose context lost its end
    context_tokens_cut: int = 0
    response_cut: int = 0         # examples (no context) whose response lost its end
    response_tokens_cut: int = 0
    dropped_prompt: int = 0       # the prompt alone fills the window (no context to cut)
    dropped_answer: int = 0       # an extractive answer no longer in the cut context
    dropped_template: int = 0     # the chat template renders the prompt differently in context

    @property
    def dropped(self) -> int:
        return self.dropped_prompt + self.dropped_answer + self.dropped_template

    def events(self) -> list[tuple[str, str]]:
        """(level, message) lines: the policy once, then each count that is not zero."""
        of, fit = f" of {self.examples}", f"max_length={self.max_length}"
        warnings = [
            (self.context_cut, f"{self.context_cut}{of} examples had the end of their context cut "
                               f"({self.context_tokens_cut} tokens) to fit {fit}"),
            (self.response_cut, f"{self.response_cut}{of} examples had the end of their response "
                                f"cut ({self.response_tokens_cut} tokens) to fit {fit}"),
            (self.dropped_answer, f"{self.dropped_answer}{of} extractive examples dropped: their "
                                  "answer lay in the cut end of the context"),
            (self.dropped_prompt, f"{self.dropped_prompt}{of} examples dropped: prompt longer "
                                  f"than {fit}"),
            (self.dropped_template, f"{self.dropped_template}{of} examples dropped: the chat "
                                    "template renders their prompt differently inside the full "
                                    "conversation")]
        out = [("warning", msg) for n, msg in warnings if n]
        if out:  # something was cut or dropped: the policy first
            out.insert(0, ("info", f"truncation policy at {fit}: {TRUNCATION_POLICY}"))
        return out


def _template_ids(tokenizer, record: Record, response: str) -> tuple[list[int], list[int]]:
    prompt_ids = tokenizer.apply_chat_template(chat_messages(record), add_generation_prompt=True,
                                               tokenize=True, return_dict=False)
    full_ids = tokenizer.apply_chat_template(chat_messages(record, response), tokenize=True,
                                             return_dict=False)
    if hasattr(prompt_ids, "keys"):  # some tokenizers return a BatchEncoding regardless
        prompt_ids, full_ids = prompt_ids["input_ids"], full_ids["input_ids"]
    return list(prompt_ids), list(full_ids)


def fit_example(tokenizer, record: Record, response: str, max_length: int,
                report: FitReport) -> dict[str, list[int]] | None:
    """Chat-template one example within max_length, by the stated policy; labels are -100 on the
    prompt so only the response is learned. None when it is dropped (counted in ``report``)."""
    report.examples += 1
    prompt_ids, full_ids = _template_ids(tokenizer, record, response)
    over = len(full_ids) - max_length
    if over > 0 and record.context:
        ctx_ids = tokenizer(record.context, add_special_tokens=False)["input_ids"]
        keep = len(ctx_ids)
        for _ in range(4):  # re-tokenising a cut text can shift a token or two: tighten and retry
            keep = max(keep - over - 2, 0)
            cut = replace(record, context=tokenizer.decode(ctx_ids[:keep]).rstrip())
            prompt_ids, full_ids = _template_ids(tokenizer, cut, response)
            over = len(full_ids) - max_length
            if over <= 0 or keep == 0:
                break
        if record.kind == "qa_extractive" and response.strip() not in cut.context:
            report.dropped_answer += 1
            return None
        report.context_cut += 1
        report.context_tokens_cut += len(ctx_ids) - keep
    if full_ids[: len(prompt_ids)] != prompt_ids:
        report.dropped_template += 1
        return None
    if len(prompt_ids) >= max_length - 4:
        report.dropped_prompt += 1
        return None
    if len(full_ids) > max_length:
        report.response_cut += 1
        report.response_tokens_cut += len(full_ids) - max_length
        full_ids = full_ids[:max_length]
    labels = [IGNORE_INDEX] * len(prompt_ids) + full_ids[len(prompt_ids):]
    return {"input_ids": full_ids, "attention_mask": [1] * len(full_ids), "labels": labels}


def encode_examples(tokenizer, pairs: list[tuple[Record, str]],
                    max_length: int) -> tuple[list[dict[str, list[int]]], FitReport]:
    report = FitReport(max_length=max_length)
    encoded = [fit_example(tokenizer, r, resp, max_length, report) for r, resp in pairs]
    return [e for e in encoded if e is not None], report
