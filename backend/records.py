"""The one record shape every data set is mapped into."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .vocab import GROUNDED_KINDS, KINDS  # noqa: F401  (re-exported: data loaders import them here)


@dataclass
class Record:
    id: str                      # stable within its data set: used as the key in the run log
    kind: str                    # one of KINDS
    prompt: str                  # the question / instruction (for summarization: the task line)
    context: str | None = None   # passage or article the answer must stay faithful to
    reference: str | None = None  # gold answer / summary / response, when known
    # every gold answer when the data set gives several (SQuAD): metrics take the max over them
    references: list[str] = field(default_factory=list)
    instruction_id_list: list[str] = field(default_factory=list)  # IFEval-style verifiable checks
    kwargs: list[dict[str, Any]] = field(default_factory=list)      # one dict per instruction id
    source: str = ""             # data set name in the mixture

    @property
    def grounded(self) -> bool:
        return self.kind in GROUNDED_KINDS


def prompt_constraints(record: Record) -> dict[str, Any] | None:
    """What a ``prompts`` row keeps as JSON in its ``constraints`` column: IFEval instruction ids
    and kwargs, and the gold answers when there are several (no schema change for either)."""
    cons: dict[str, Any] = {}
    if record.instruction_id_list:
        cons.update(instruction_id_list=record.instruction_id_list, kwargs=record.kwargs)
    golds = getattr(record, "references", None) or []  # duck-typed records may lack the field
    if len(golds) > 1:
        cons["references"] = list(golds)
    return cons or None


def record_from_prompt(row: dict[str, Any], key_field: str = "key") -> Record:
    """A Record rebuilt from a run log ``prompts`` row (constraints are stored as JSON)."""
    cons = json.loads(row["constraints"]) if row.get("constraints") else {}
    return Record(id=row[key_field], kind=row["kind"], prompt=row["prompt"],
                  context=row.get("context"), reference=row.get("reference"),
                  references=cons.get("references") or [],
                  source=row.get("source") or "",
                  instruction_id_list=cons.get("instruction_id_list") or [],
                  kwargs=cons.get("kwargs") or [])
