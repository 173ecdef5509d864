"""The project's words, defined once: judge categories, data kinds, stage types, run statuses.

StrEnum members are ``str``: they compare equal to the plain strings stored in SQLite, TOML and
JSON, and format as their value, so callers may pass either.
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


CATEGORIES: tuple[Category, ...] = tuple(Category)
KINDS: tuple[Kind, ...] = tuple(Kind)
# kinds whose records carry a context the answer must stay faithful to
GROUNDED_KINDS: tuple[Kind, ...] = (Kind.QA_EXTRACTIVE, Kind.QA_ABSTRACTIVE, Kind.SUMMARIZATION)
STAGE_TYPES: tuple[StageType, ...] = tuple(StageType)
RUN_STATUSES: tuple[Status, ...] = tuple(Status)
FINAL_STATUSES: tuple[Status, ...] = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.DIED)
# the scores-table row names of the category scores ("cat:task", ...)
CATEGORY_ROWS: dict[Category, str] = {c: f"cat:{c}" for c in CATEGORIES}
