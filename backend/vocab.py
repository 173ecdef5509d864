"""The project's words, defined once: judge categories, data kinds, stage types, run statuses.

StrEnum members are ``str``: they compare equal to the plain strings stored in SQLite, TOML and
JSON, and format as their value, so callers may pass either. The tuples below are the same words
as plain strings.
"""
from __future__ import annotations

from enum import StrEnum


class Category(StrEnum):
    """What a judge measures; the combined score is a weighted mean over these."""

    TASK = "task"
    FAITHFULNESS = "faithfulness"
    INSTRUCTION_FOLLOWING = "instruction_following"


class Kind(StrEnum):
    """What kind of prompt a record is."""

    INSTRUCTION = "instruction"
    QA_EXTRACTIVE = "qa_extractive"
    QA_ABSTRACTIVE = "qa_abstractive"
    SUMMARIZATION = "summarization"


class StageType(StrEnum):
    TRAIN = "train"
    SAMPLE = "sample"
    JUDGE = "judge"
    SELECT = "select"
    EVALUATE = "evaluate"


class Status(StrEnum):
    """Status of a run (and of a stage: the same words)."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    DIED = "died"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


# Plain-string views, in order: they print as words in messages ("use one of [...]").
CATEGORIES: tuple[str, ...] = tuple(c.value for c in Category)
KINDS: tuple[str, ...] = tuple(k.value for k in Kind)
# kinds whose records carry a context the answer must stay faithful to
GROUNDED_KINDS: tuple[str, ...] = (Kind.QA_EXTRACTIVE.value, Kind.QA_ABSTRACTIVE.value,
                                   Kind.SUMMARIZATION.value)
STAGE_TYPES: tuple[str, ...] = tuple(t.value for t in StageType)
RUN_STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
FINAL_STATUSES: tuple[str, ...] = (Status.SUCCEEDED.value, Status.FAILED.value,
                                   Status.CANCELLED.value, Status.DIED.value)
# the scores-table row names of the category scores ("cat:task", ...)
CATEGORY_ROWS: dict[str, str] = {c: f"cat:{c}" for c in CATEGORIES}
