"""Registry, construction and batch scoring (the combined score is backend.scoring's)."""
from __future__ import annotations

from typing import Any

import numpy as np

from backend.records import Record
from backend.scoring import check_weights, combined_scores, covered
from backend.vocab import CATEGORIES

from .base import Judge, JudgeResult
from .factcc import FactCCFaithfulness
from .faithfulness import (
    LexicalFaithfulness,
    MiniLMFaithfulness,
    SummaCZS,
    pick_faithfulness_judge,
)
from .instruction import IFEvalJudge, LLMJudge
from .likelihood import LikelihoodFaithfulness
from .task import RougeL, TokenF1

JUDGES: dict[str, type[Judge]] = {
    cls.name: cls
    for cls in (RougeL, TokenF1, LexicalFaithfulness, MiniLMFaithfulness, FactCCFaithfulness,
                LikelihoodFaithfulness, SummaCZS, IFEvalJudge, LLMJudge)
}

def list_judges(settings: dict[str, Any] | None = None) -> list[tuple[str, str, bool, str]]:
    """(name, category, available, reason) for every registered judge."""
    return [(name, cls.category, *cls(settings or {}).available()) for name, cls in JUDGES.items()]


def build_judges(names: list[str] | str = "auto", settings: dict[str, Any] | None = None) -> list[Judge]:
    """Instantiate judges by name. "auto": rouge_l, token_f1, the best available faithfulness judge
    (pick_faithfulness_judge), ifeval, and llm_judge when it is configured. Explicit names must be
    registered and available; the pseudo-name "faithfulness" means the auto-picked one."""
    settings = dict(settings or {})
    if names == "auto":
        optional = [j for j in (IFEvalJudge(settings), LLMJudge(settings)) if j.available()[0]]
        return [RougeL(settings), TokenF1(settings), pick_faithfulness_judge(settings), *optional]
    if isinstance(names, str):
        raise ValueError(f'names must be a list of judge names or "auto", got {names!r}')
    judges: list[Judge] = []
    seen = set()
    for n in names:
        if n == "faithfulness":
            j = pick_faithfulness_judge(settings)
        elif n in JUDGES:
            j = JUDGES[n](settings)
        else:
            raise ValueError(f"unknown judge {n!r}; known: {', '.join(JUDGES)} (or 'faithfulness')")
        if j.name in seen:
            continue
        ok, why = j.available()
        if not ok:
            raise ValueError(f"judge {n!r} is not available here: {why}")
        seen.add(j.name)
        judges.append(j)
    return judges


def score_records(judges: list[Judge], records: list[Record], responses: list[str],
                  weights: dict[str, float]) -> list[dict[str, Any]]:
    """Run every judge over the items it applies to (one batch per judge).

    Returns per item {"scores": {judge: value}, "details": {judge: details},
    "category_scores": {category: mean of its judges' non-None values, ..., "combined": float|None},
    "covered": [categories the combined score was computed over]} (backend.scoring's rule).
    A judge appears in scores/details only when it applies to the item; a category only when at
    least one of its judges produced a value; "combined" is always there (None when nothing applies).
    """
    if len(records) != len(responses):
        raise ValueError(f"{len(records)} records but {len(responses)} responses")
    w = check_weights(weights)
    out: list[dict[str, Any]] = [{"scores": {}, "details": {}, "category_scores": {}} for _ in records]
    per_cat: list[dict[str, list[float]]] = [{} for _ in records]
    for judge in judges:
        idx = [i for i, r in enumerate(records) if judge.applies(r)]
        if not idx:
            continue
        try:
            results = judge.score_batch([records[i] for i in idx], [responses[i] for i in idx])
        except Exception as e:  # one broken judge must not sink the others
            results = [JudgeResult(None, {"error": f"{type(e).__name__}: {e}"}) for _ in idx]
        if len(results) != len(idx):
            raise RuntimeError(f"judge {judge.name} returned {len(results)} results for {len(idx)} items")
        for i, res in zip(idx, results):
            out[i]["scores"][judge.name] = res.value
            out[i]["details"][judge.name] = res.details
            if res.value is not None:
                per_cat[i].setdefault(judge.category, []).append(float(res.value))
    for item, cats in zip(out, per_cat):
        item["category_scores"] = {c: sum(v) / len(v) for c, v in cats.items()}
    matrix = np.array([[item["category_scores"].get(c, np.nan) for item in out] for c in CATEGORIES],
                      dtype=float).reshape(len(CATEGORIES), len(out))
    for item, comb in zip(out, combined_scores(matrix, w)):
        item["covered"] = covered(item["category_scores"], w)
        item["category_scores"]["combined"] = None if np.isnan(comb) else float(comb)
    return out
