"""The one scoring and selection rule, used by the judge stage, the select stage and the what-if
sliders (no Qt, no torch, no I/O).

Combined score: the weighted mean of a sample's category scores over the categories that apply
(score present) and have a positive weight, the weights renormalised over them; none such -> no
score (NaN in arrays, None for one sample). Weights: finite, >= 0, known categories, not all zero.

Selection: candidates whose combined score reaches the threshold; the best of each prompt (ties:
lower sample id); then at most ``per_kind_quota[kind]`` per kind and at most ``budget`` in all,
best first. Computed with numpy on all candidates at once: a what-if slider move on 100 000
candidates takes milliseconds.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .vocab import CATEGORIES, GROUNDED_KINDS, KINDS


def check_weights(weights: Mapping[str, Any]) -> dict[str, float]:
    """Weights as floats; ValueError for unknown categories, non-numbers, NaN/inf, negatives or
    weights that are all zero."""
    unknown = set(weights) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown judge categories in weights: {sorted(unknown)}; "
                         f"expected some of {list(CATEGORIES)}")
    w = {}
    for k, v in weights.items():
        try:
            v = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"weight for {k!r} is not a number: {v!r}") from None
        if math.isnan(v) or math.isinf(v):
            raise ValueError(f"weight for {k!r} must be finite, got {v}")
        if v < 0:
            raise ValueError(f"weight for {k!r} is negative ({v}); weights must be >= 0")
        w[str(k)] = v
    if not any(v > 0 for v in w.values()):
        raise ValueError(f"weights sum to zero: {dict(weights)}; "
                         "give at least one category a positive weight")
    return w


def _weight_column(weights: Mapping[str, Any]) -> np.ndarray:
    w = check_weights(weights)
    return np.array([w.get(c, 0.0) for c in CATEGORIES])[:, None]


def combined_scores(scores: np.ndarray, weights: Mapping[str, Any]) -> np.ndarray:
    """scores: (len(CATEGORIES), n) with NaN where a category does not apply -> (n,) combined
    scores, NaN where no category with a positive weight applies."""
    w = _weight_column(weights)
    have = ~np.isnan(scores) & (w > 0)
    den = np.where(have, w, 0.0).sum(axis=0)
    num = np.where(have, w * np.nan_to_num(scores), 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def _column(category_scores: Mapping[str, Any]) -> np.ndarray:
    return np.array([[np.nan if category_scores.get(c) is None else float(category_scores[c])]
                     for c in CATEGORIES])


def combine(category_scores: Mapping[str, Any], weights: Mapping[str, Any]) -> float | None:
    """Combined score of one sample from {category: score or None}; other keys are ignored."""
    v = float(combined_scores(_column(category_scores), weights)[0])
    return None if math.isnan(v) else v


def covered(category_scores: Mapping[str, Any], weights: Mapping[str, Any]) -> list[str]:
    """The categories a sample's combined score was computed over (present, positive weight)."""
    w = check_weights(weights)
    return [str(c) for c in CATEGORIES
            if w.get(c, 0.0) > 0 and category_scores.get(c) is not None
            and not math.isnan(float(category_scores[c]))]


# the categories each kind is meant to be scored in: the task score (against its reference) on every
# kind, faithfulness where there is a context, instruction following on instruction prompts. A
# weighted category meant for a kind but unscored drops out of its combined score (the weights
# renormalise over the rest): a coverage gap, said wherever it happens (uncovered*)
MEANT: dict[str, tuple[str, ...]] = {
    k: ("task", "faithfulness") if k in GROUNDED_KINDS else ("task", "instruction_following")
    for k in KINDS}


def uncovered(category_scores: Mapping[str, Any], weights: Mapping[str, Any], kind: str) -> list[str]:
    """The weighted categories meant for ``kind`` that one sample's combined score lacks."""
    w = check_weights(weights)
    have = set(covered(category_scores, weights))
    return [c for c in MEANT.get(kind, ()) if w.get(c, 0.0) > 0 and c not in have]


class CandidateArrays:
    """Category scores of every candidate of one sample stage, as numpy arrays.

    rows: dicts with sample_id, prompt_id, kind and one key per category (None or absent when
    the category does not apply), as ``backend.stages.select.load_candidates`` returns them."""

    def __init__(self, rows: Sequence[Mapping[str, Any]]):
        self.n = len(rows)
        self.sample_id = np.fromiter((r["sample_id"] for r in rows), dtype=np.int64, count=self.n)
        self.prompt_id = np.fromiter((r["prompt_id"] for r in rows), dtype=np.int64, count=self.n)
        kinds = [r.get("kind") or "?" for r in rows]
        self.kinds: list[str] = sorted(set(kinds), key=lambda k: (KINDS.index(k) if k in KINDS else 99, k))
        kind_index = {k: i for i, k in enumerate(self.kinds)}
        self.kind = np.fromiter((kind_index[k] for k in kinds), dtype=np.int16, count=self.n)
        self.scores = np.array([[np.nan if r.get(c) is None else float(r[c]) for r in rows]
                                for c in CATEGORIES], dtype=float).reshape(len(CATEGORIES), self.n)
        # per kind (and "all"): candidates and distinct prompts; fixed, so computed once
        self.kind_counts: dict[str, tuple[int, int]] = {}
        for ki, k in enumerate(self.kinds):
            m = self.kind == ki
            self.kind_counts[k] = (int(m.sum()), int(np.unique(self.prompt_id[m]).size))
        self.kind_counts["all"] = (self.n, int(np.unique(self.prompt_id).size))

    def combined(self, weights: Mapping[str, Any]) -> np.ndarray:
        return combined_scores(self.scores, weights)


def select(arrays: CandidateArrays, weights: Mapping[str, Any], threshold: float,
           per_kind_quota: Mapping[str, int] | None = None, budget: int | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the kept candidates, best first; combined scores of all candidates).
    budget None: no limit. ValueError for bad weights."""
    comb = arrays.combined(weights)
    idx = np.nonzero(~np.isnan(comb) & (comb >= threshold))[0]
    # best first; ties: lower sample id first
    idx = idx[np.lexsort((arrays.sample_id[idx], -comb[idx]))]
    _, first = np.unique(arrays.prompt_id[idx], return_index=True)  # first = best of each prompt
    idx = idx[np.sort(first)]
    if per_kind_quota:
        keep = np.ones(idx.size, dtype=bool)
        for k, quota in per_kind_quota.items():
            if k in arrays.kinds:
                keep[np.nonzero(arrays.kind[idx] == arrays.kinds.index(k))[0][max(0, int(quota)):]] = False
        idx = idx[keep]
    if budget is not None:
        idx = idx[:max(0, int(budget))]
    return idx, comb


def size_vs_reset(arrays: CandidateArrays, weights: Mapping[str, Any], n_kept: int,
                  reset_threshold: float) -> dict[str, Any]:
    """How big a (ReSet-S) selection is next to the ReSet selection of the same candidates: the
    same weights at ``reset_threshold``, no per-kind budget or total budget."""
    ref, _ = select(arrays, weights, reset_threshold)
    kinds = {k: int((arrays.kind[ref] == i).sum()) for i, k in enumerate(arrays.kinds)}
    return {"reset_threshold": reset_threshold, "reset_n_selected": int(ref.size),
            "reset_per_kind": kinds, "n_selected": int(n_kept),
            "ratio": n_kept / ref.size if ref.size else None}


def selection_items(arrays: CandidateArrays, idx: np.ndarray, comb: np.ndarray) -> list[dict[str, Any]]:
    """{sample_id, prompt_id, combined, rank} per kept candidate, rank 1 = best: the rows
    ``RunLog.add_selection`` stores."""
    return [{"sample_id": int(arrays.sample_id[i]), "prompt_id": int(arrays.prompt_id[i]),
             "combined": float(comb[i]), "rank": r + 1} for r, i in enumerate(idx.tolist())]


def _mean(a: np.ndarray) -> float:
    a = a[~np.isnan(a)]
    return float(a.mean()) if a.size else float("nan")


def selection_stats(arrays: CandidateArrays, idx: np.ndarray, comb: np.ndarray) -> dict[str, float]:
    """Metrics of a selection: acceptance rate per kind (prompts with a kept candidate / prompts),
    counts, mean combined score of kept vs. not kept candidates (where one exists)."""
    out: dict[str, float] = {}
    kept_prompts = set(arrays.prompt_id[idx].tolist())
    for ki, kind in sorted(enumerate(arrays.kinds), key=lambda t: t[1]):
        pids = set(arrays.prompt_id[arrays.kind == ki].tolist())
        out[f"accept_rate/{kind}"] = len(pids & kept_prompts) / len(pids)
    n_prompts = arrays.kind_counts["all"][1]
    out["accept_rate"] = len(kept_prompts) / n_prompts if n_prompts else 0.0
    out.update(n_selected=float(idx.size), n_candidates=float(arrays.n), n_prompts=float(n_prompts))
    kept = np.zeros(arrays.n, dtype=bool)
    kept[idx] = True
    for name, mask in (("selected", kept), ("rejected", ~kept)):
        if (~np.isnan(comb[mask])).any():
            out[f"mean_combined/{name}"] = _mean(comb[mask])
    return out


@dataclass
class KindSummary:
    kind: str              # a kind, or "all"
    candidates: int
    prompts: int
    kept: int
    mean_combined: float   # over the kept candidates (NaN when none)
    means: dict[str, float]  # category -> mean over the kept candidates


def summarize_selection(arrays: CandidateArrays, idx: np.ndarray, comb: np.ndarray) -> list[KindSummary]:
    """Per kind, then "all": what a selection keeps (the what-if table)."""
    out = []
    for ki, kind in enumerate(arrays.kinds + ["all"]):
        sel = idx if kind == "all" else idx[arrays.kind[idx] == ki]
        n_cands, n_prompts = arrays.kind_counts[kind]
        out.append(KindSummary(
            kind=kind, candidates=n_cands, prompts=n_prompts, kept=int(sel.size),
            mean_combined=_mean(comb[sel]),
            means={str(c): _mean(arrays.scores[j, sel]) for j, c in enumerate(CATEGORIES)}))
    return out


def uncovered_by_kind(arrays: CandidateArrays, weights: Mapping[str, Any]) -> dict[str, dict[str, list[int]]]:
    """Per kind, each weighted category meant for it (MEANT) that some of its candidates have no
    score in: {kind: {category: [unscored, candidates]}}; empty when every combined score covers
    every weighted category meant for its kind."""
    w = check_weights(weights)
    out: dict[str, dict[str, list[int]]] = {}
    for ki, kind in enumerate(arrays.kinds):
        m = arrays.kind == ki
        for j, c in enumerate(CATEGORIES):
            if w.get(c, 0.0) <= 0 or c not in MEANT.get(kind, ()):
                continue
            miss = int(np.isnan(arrays.scores[j, m]).sum())
            if miss:
                out.setdefault(kind, {})[str(c)] = [miss, int(m.sum())]
    return out


def uncovered_message(gaps: Mapping[str, Mapping[str, Sequence[int]]],
                      weights: Mapping[str, Any]) -> str:
    """``uncovered_by_kind`` in words, for a warning event ('' when there is no gap)."""
    if not gaps:
        return ""
    w = check_weights(weights)
    parts = [f"{kind}: no {c.replace('_', ' ')} score on {n} of {total} (weight {w[c]:g} dropped, "
             "the rest renormalised)"
             for kind, cats in gaps.items() for c, (n, total) in cats.items()]
    hint = (" Instruction prompts without IFEval constraints (free-form, e.g. Alpaca) need an LLM "
            "judge (judges.llm_endpoint) for an instruction-following score."
            if any("instruction_following" in cats for cats in gaps.values()) else "")
    return ("combined scores lack a weighted category for kind(s) " + ", ".join(gaps) + ": "
            + "; ".join(parts) + "." + hint)


@dataclass
class Coverage:
    """How many eval items a category's mean rests on, of those it is meant for (MEANT)."""
    category: str
    scored: dict[str, int]    # data set -> items with a score
    unscored: dict[str, int]  # data set -> items of a kind meant for the category, without one

    @property
    def n(self) -> int:
        return sum(self.scored.values())

    @property
    def total(self) -> int:
        return self.n + sum(self.unscored.values())

    @property
    def complete(self) -> bool:
        return not any(self.unscored.values())

    def label(self) -> str:
        """e.g. 'IF: n = 24 of 47 instruction prompts (ifeval_instructions); unscored: alpaca_instructions (23)'."""
        short = {"instruction_following": "IF", "faithfulness": "faithfulness", "task": "task"}
        head = f"{short.get(self.category, self.category)}: n = {self.n}"
        what = "instruction prompts" if self.category == "instruction_following" else "items"
        if self.complete:
            return f"{head} {what}, all scored"
        sets = ", ".join(k for k, v in self.scored.items() if v)
        return (f"{head} of {self.total} {what}" + (f" ({sets})" if sets else "") + "; unscored: "
                + ", ".join(f"{k} ({v})" for k, v in self.unscored.items() if v))


def coverage(items: Sequence[tuple[str, str, Any]], category: str) -> Coverage:
    """Coverage of ``category`` over (data set, kind, score or None) items, counting only the
    kinds the category is meant for."""
    scored: dict[str, int] = {}
    unscored: dict[str, int] = {}
    for dataset, kind, value in items:
        if category not in MEANT.get(kind, ()):
            continue
        ok = value is not None and not (isinstance(value, float) and math.isnan(value))
        target = scored if ok else unscored
        target[dataset] = target.get(dataset, 0) + 1
        (unscored if ok else scored).setdefault(dataset, 0)
    return Coverage(category, scored, unscored)
