"""Select stage: keep the best-rated candidate per prompt, from stored scores only.

``select_samples`` is pure (no I/O) so the GUI's what-if sliders can call it on rows loaded once
with ``load_candidates`` (one SQL query; fast on 100 000 samples). The combined score is
recomputed from the stored category scores with the stage's weights (else ``judges.weights``):
a weighted mean over the categories that apply, weights renormalised over them — the same rule
as ``backend.judges.combine``.
"""
from __future__ import annotations

import math
from typing import Any, Iterable

from ..config import CATEGORIES, SelectStage
from .context import StageContext


def check_weights(weights: dict[str, float]) -> dict[str, float]:
    unknown = set(weights) - set(CATEGORIES)
    if unknown:
        raise ValueError(f"unknown weight categories {sorted(unknown)}; use {list(CATEGORIES)}")
    w = {k: float(v) for k, v in weights.items()}
    bad = {k: v for k, v in w.items() if v < 0 or math.isnan(v) or math.isinf(v)}
    if bad:
        raise ValueError(f"weights must be finite and >= 0, got {bad}")
    if not any(v > 0 for v in w.values()):
        raise ValueError(f"weights are all zero: {weights}")
    return w


def combined_score(row: dict[str, Any], weights: dict[str, float]) -> float | None:
    """Weighted mean of the row's category scores that are not None (weights already checked)."""
    num = den = 0.0
    for cat, wi in weights.items():
        if wi <= 0:
            continue
        v = row.get(cat)
        if v is None:
            continue
        num += wi * v
        den += wi
    return num / den if den > 0 else None


def select_samples(rows: Iterable[dict[str, Any]], threshold: float, weights: dict[str, float],
                   per_kind_quota: dict[str, int] | None = None, budget: int | None = None
                   ) -> list[dict[str, Any]]:
    """Best candidate per prompt whose combined score >= threshold, then per-kind quotas (top-N by
    score within a kind; kinds without a quota are not capped), then a total budget (top-N).

    rows: dicts with sample_id, prompt_id, kind and the category scores ("task", "faithfulness",
    "instruction_following"; None or absent when not applicable). Returns items sorted by combined
    score (best first): {sample_id, prompt_id, kind, combined, rank} with rank 1, 2, ...
    Ties break on the lower sample id, so the result is deterministic.
    """
    w = check_weights(weights)
    best: dict[Any, tuple[float, int, dict[str, Any]]] = {}
    for row in rows:
        c = combined_score(row, w)
        if c is None or c < threshold:
            continue
        pid = row["prompt_id"]
        cur = best.get(pid)
        if cur is None or c > cur[0] or (c == cur[0] and row["sample_id"] < cur[1]):
            best[pid] = (c, row["sample_id"], row)
    chosen = sorted(best.values(), key=lambda t: (-t[0], t[1]))
    if per_kind_quota:
        taken: dict[str, int] = {}
        kept = []
        for item in chosen:
            kind = item[2].get("kind")
            cap = per_kind_quota.get(kind)
            if cap is not None and taken.get(kind, 0) >= cap:
                continue
            taken[kind] = taken.get(kind, 0) + 1
            kept.append(item)
        chosen = kept
    if budget is not None:
        chosen = chosen[: max(0, int(budget))]
    return [{"sample_id": sid, "prompt_id": row["prompt_id"], "kind": row.get("kind"),
             "combined": c, "rank": i + 1} for i, (c, sid, row) in enumerate(chosen)]


def selection_stats(rows: list[dict[str, Any]], selected: list[dict[str, Any]],
                    weights: dict[str, float]) -> dict[str, float]:
    """Metrics of a selection: acceptance rate per kind (prompts with an accepted candidate /
    prompts), n_selected, mean combined score of selected vs. rejected samples."""
    w = check_weights(weights)
    chosen_ids = {s["sample_id"] for s in selected}
    chosen_prompts = {s["prompt_id"] for s in selected}
    prompts_by_kind: dict[str, set] = {}
    sel_scores, rej_scores = [], []
    for row in rows:
        prompts_by_kind.setdefault(row.get("kind") or "?", set()).add(row["prompt_id"])
        c = combined_score(row, w)
        if c is None:
            continue
        (sel_scores if row["sample_id"] in chosen_ids else rej_scores).append(c)
    out: dict[str, float] = {}
    for kind, pids in sorted(prompts_by_kind.items()):
        out[f"accept_rate/{kind}"] = len(pids & chosen_prompts) / len(pids) if pids else 0.0
    all_prompts = set().union(*prompts_by_kind.values()) if prompts_by_kind else set()
    out["accept_rate"] = len(chosen_prompts) / len(all_prompts) if all_prompts else 0.0
    out["n_selected"] = float(len(selected))
    out["n_candidates"] = float(len(rows))
    out["n_prompts"] = float(len(all_prompts))
    if sel_scores:
        out["mean_combined/selected"] = sum(sel_scores) / len(sel_scores)
    if rej_scores:
        out["mean_combined/rejected"] = sum(rej_scores) / len(rej_scores)
    return out


# Correlated look-ups on the unique (sample_id, judge) index: faster than joining and grouping
# (about 1 s for 100 000 samples with six score rows each on a 2-core machine).
_CANDIDATES_SQL = """
SELECT s.id AS sample_id, s.prompt_id AS prompt_id, p.kind AS kind, p.key AS prompt_key,
       s.cand_idx AS cand_idx, s.decoding AS decoding, s.n_tokens AS n_tokens,
       (SELECT value FROM scores WHERE sample_id = s.id AND judge = 'cat:task') AS task,
       (SELECT value FROM scores WHERE sample_id = s.id AND judge = 'cat:faithfulness')
           AS faithfulness,
       (SELECT value FROM scores WHERE sample_id = s.id AND judge = 'cat:instruction_following')
           AS instruction_following,
       (SELECT value FROM scores WHERE sample_id = s.id AND judge = 'combined') AS stored_combined,
       EXISTS (SELECT 1 FROM scores WHERE sample_id = s.id AND judge = 'combined') AS judged
FROM samples s JOIN prompts p ON p.id = s.prompt_id
WHERE s.run_id = ? AND s.stage_idx = ?
ORDER BY s.id
"""


def load_candidates(log, run_id: str, stage_idx: int) -> list[dict[str, Any]]:
    """Per sample of a sample stage: ids, kind, decoding, length and stored category scores
    (``judged`` is false for samples the judge stage has not reached)."""
    cur = log.conn.cursor()
    cur.row_factory = None  # plain tuples: sqlite3.Row costs a third more on 100 000 rows
    try:
        cur.execute(_CANDIDATES_SQL, (run_id, stage_idx))
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r)) for r in cur.fetchall()]
    finally:
        cur.close()


def run(ctx: StageContext, idx: int, stage: SelectStage) -> None:
    j = ctx.cfg.resolve_ref(idx, stage.samples, "sample")
    if j is None:
        raise ValueError(f"stage {stage.name}: no sample stage {stage.samples!r} before it")
    weights = dict(stage.weights) if stage.weights else dict(ctx.cfg.judges.weights)
    ctx.progress(idx, 0, None, "loading scores", force=True)
    rows = load_candidates(ctx.log, ctx.run_id, j)
    if not rows:
        raise ValueError(f"stage {stage.name}: sample stage {ctx.cfg.stages[j].name!r} has no samples")
    unjudged = sum(1 for r in rows if not r["judged"])
    if unjudged == len(rows):
        raise ValueError(f"stage {stage.name}: none of the {len(rows)} samples of "
                         f"{ctx.cfg.stages[j].name!r} has been judged; add a judge stage before it")
    if unjudged:
        ctx.event(idx, f"{unjudged} of {len(rows)} samples have no scores and cannot be selected",
                  level="warning")
    selected = select_samples(rows, stage.threshold, weights, stage.per_kind_quota, stage.budget)
    policy = {"samples_stage": ctx.cfg.stages[j].name, "samples_stage_idx": j,
              "threshold": stage.threshold, "weights": weights,
              "per_kind_quota": dict(stage.per_kind_quota), "budget": stage.budget}
    sel_id = ctx.log.add_selection(ctx.run_id, idx, stage.name, policy,
                                   [{k: s[k] for k in ("sample_id", "prompt_id", "combined", "rank")}
                                    for s in selected])
    stored = ctx.log.count("selection_items", selection_id=sel_id)
    if stored != len(selected):
        ctx.event(idx, f"selection {stage.name!r} already existed with {stored} items; kept it",
                  level="warning")
    stats = selection_stats(rows, selected, weights)
    ctx.log.log_metrics(ctx.run_id, idx, 0, stats)
    if not selected:
        ctx.event(idx, f"no candidate cleared threshold {stage.threshold}; the selection is empty "
                       "and a train stage on it will fail", level="warning")
    ctx.event(idx, f"selected {len(selected)} of {len(rows)} samples "
                   f"({stats['accept_rate']:.0%} of {int(stats['n_prompts'])} prompts) at threshold "
                   f"{stage.threshold}", details={"policy": policy, "stats": stats})
    ctx.progress(idx, 1, 1, f"selected {len(selected)}", force=True)
