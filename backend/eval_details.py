"""The ``details`` JSON of an ``evals`` row: one typed shape that the evaluate stage writes and every
reader (Live, Compare, the report) reads, so no reader guesses key names.

Version 1 (this module): per-category means and counts, 95 % bootstrap intervals, the per-item
scores keyed by eval item key (a record id, unique across data sets: ``"<set>:<id>"``), the
faithfulness-by-length buckets (the paper's Fig. 5) and, on a checkpoint's ``_all`` row, the per-set
summaries. Rows written before it (version 0: ``n_faithfulness``, ``faithfulness_by_length`` as a
label -> {n, faithfulness} dict, ``datasets``, ``combined``) still read: ``EvalDetails.from_row``
takes the means from the row's columns where the old details lack them.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from .records import GROUNDED_KINDS

VERSION = 1
CATEGORIES = ("faithfulness", "instruction_following", "task_score")  # the evals columns
# which data sets' items a checkpoint's ``_all`` mean of each category is macro-averaged over
CATEGORY_KINDS: dict[str, tuple[str, ...] | None] = {
    "faithfulness": GROUNDED_KINDS, "instruction_following": ("instruction",), "task_score": None,
    "combined": None}
ALL = "_all"


@dataclass(frozen=True)
class Interval:
    """A confidence interval (default: 95 % percentile bootstrap)."""
    lo: float
    hi: float
    level: float = 0.95

    def contains(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    @classmethod
    def from_json(cls, d: Any) -> "Interval | None":
        if isinstance(d, dict) and d.get("lo") is not None and d.get("hi") is not None:
            return cls(float(d["lo"]), float(d["hi"]), float(d.get("level", 0.95)))
        if isinstance(d, (list, tuple)) and len(d) == 2 and None not in d:
            return cls(float(d[0]), float(d[1]))
        return None


def with_interval(value: float, iv: Interval | None, spec: str = ".3f") -> str:
    """'0.620 [0.550, 0.700]' (spec ".3f"), or the value alone when it has no interval."""
    return f"{value:{spec}}" + (f" [{iv.lo:{spec}}, {iv.hi:{spec}}]" if iv else "")


@dataclass
class ItemScores:
    """One eval item's scores for one checkpoint (None: no judge of that category applied)."""
    dataset: str
    kind: str
    faithfulness: float | None = None
    instruction_following: float | None = None
    task_score: float | None = None
    combined: float | None = None
    n_tokens: int | None = None
    ref_tokens: int | None = None

    def get(self, category: str) -> float | None:
        return getattr(self, category, None)


@dataclass
class LengthBucket:
    """Faithfulness of the responses whose length falls in one bucket relative to the reference."""
    label: str
    n: int
    faithfulness: float | None
    interval: Interval | None = None


@dataclass
class EvalDetails:
    kind: str | None = None                     # the data set's kind; "_all" on a summary row
    means: dict[str, float | None] = field(default_factory=dict)  # CATEGORIES + "combined"
    n: dict[str, int] = field(default_factory=dict)               # items scored per category
    intervals: dict[str, Interval] = field(default_factory=dict)  # 95 % bootstrap per category
    items: dict[str, ItemScores] = field(default_factory=dict)    # eval item key -> scores
    length_buckets: list[LengthBucket] = field(default_factory=list)
    truncated_rate: float | None = None
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # _all row: per-set summary
    aggregation: str | None = None
    bootstrap: dict[str, Any] = field(default_factory=dict)       # method, resamples, seed
    seed_means: dict[str, list[float]] = field(default_factory=dict)  # pooled seeds: each one's mean
    # IFEval's own four accuracies over the items it checked (judges.instruction.ifeval_accuracies):
    # prompt_strict, prompt_loose, instruction_strict, instruction_loose, n_prompts, n_instructions
    ifeval: dict[str, Any] = field(default_factory=dict)
    version: int = VERSION

    # ---- writing ------------------------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)  # intervals become {lo, hi, level}

    # ---- reading ------------------------------------------------------------------------------
    @classmethod
    def from_json(cls, value: Any) -> "EvalDetails":
        """From stored details (JSON text or an already decoded dict); junk gives an empty one."""
        d = value
        if isinstance(value, (str, bytes)):
            try:
                d = json.loads(value)
            except ValueError:
                d = None
        if not isinstance(d, dict):
            return cls(version=0)
        return cls._from_v1(d) if int(d.get("version") or 0) >= 1 else cls._from_v0(d)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> "EvalDetails":
        """From a whole evals row: version-0 details lack the means, which the columns hold."""
        det = cls.from_json(row.get("details"))
        for c in CATEGORIES:
            if det.means.get(c) is None and row.get(c) is not None:
                det.means[c] = float(row[c])
        if det.kind is None and row.get("category"):
            det.kind = row["category"]
        return det

    @classmethod
    def _from_v1(cls, d: dict[str, Any]) -> "EvalDetails":
        names = ItemScores.__dataclass_fields__.keys()
        items = {k: ItemScores(**{f: v for f, v in it.items() if f in names})
                 for k, it in (d.get("items") or {}).items() if isinstance(it, dict)}
        intervals = {k: iv for k, v in (d.get("intervals") or {}).items()
                     if (iv := Interval.from_json(v)) is not None}
        buckets = [LengthBucket(str(b["label"]), int(b.get("n") or 0), b.get("faithfulness"),
                                Interval.from_json(b.get("interval")))
                   for b in d.get("length_buckets") or [] if isinstance(b, dict) and "label" in b]
        return cls(kind=d.get("kind"), means=dict(d.get("means") or {}), n=dict(d.get("n") or {}),
                   intervals=intervals, items=items, length_buckets=buckets,
                   truncated_rate=d.get("truncated_rate"), datasets=dict(d.get("datasets") or {}),
                   aggregation=d.get("aggregation"), bootstrap=dict(d.get("bootstrap") or {}),
                   seed_means=dict(d.get("seed_means") or {}), ifeval=dict(d.get("ifeval") or {}),
                   version=int(d["version"]))

    @classmethod
    def _from_v0(cls, d: dict[str, Any]) -> "EvalDetails":
        """The shape evaluate wrote before this module: counts as n_<category>, buckets as a
        label -> {n, faithfulness} dict, no items, no intervals."""
        n = {c: int(d[f"n_{c}"]) for c in ("faithfulness", "instruction_following")
             if d.get(f"n_{c}") is not None}
        if d.get("n_task") is not None:
            n["task_score"] = int(d["n_task"])
        raw = d.get("faithfulness_by_length")
        buckets = [LengthBucket(str(label), int(v.get("n") or 0), v.get("faithfulness"))
                   for label, v in (raw.items() if isinstance(raw, dict) else ()) if isinstance(v, dict)]
        means = {"combined": d["combined"]} if d.get("combined") is not None else {}
        return cls(kind=d.get("kind"), means=means, n=n, length_buckets=buckets,
                   truncated_rate=d.get("truncated_rate"), datasets=dict(d.get("datasets") or {}),
                   aggregation=d.get("aggregation"), version=0)

    # ---- views --------------------------------------------------------------------------------
    def filled_buckets(self) -> list[LengthBucket]:
        """Buckets that have a faithfulness mean (empty ones dropped), in stored order."""
        return [b for b in self.length_buckets if b.faithfulness is not None]

    def grouped(self, category: str) -> dict[str, dict[str, float]]:
        """Data set -> {item key: score} for ``category``, over the sets whose kind the summary of
        that category covers (CATEGORY_KINDS): the strata of the macro mean and its bootstrap."""
        kinds = CATEGORY_KINDS.get(category)
        out: dict[str, dict[str, float]] = {}
        for k, it in self.items.items():
            v = it.get(category)
            if v is None or (kinds is not None and it.kind not in kinds):
                continue
            out.setdefault(it.dataset, {})[k] = float(v)
        return out
