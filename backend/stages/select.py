"""Select stage: keep the best-rated candidate per prompt, from stored scores only.

The rule is backend.scoring's (the what-if sliders use the same one): candidates are loaded with
``backend.queries.candidates`` (one SQL query; fast on 100 000 samples) and the combined score is
recomputed from the stored category scores with the stage's weights (else ``judges.weights``).
"""
from __future__ import annotations

from typing import Any

from .. import scoring
from ..config import JudgeSpec, SelectStage
from ..queries import candidates as load_candidates, config_dict
from ..vocab import CATEGORIES, StageType
from .context import StageContext
from .judge import warn_uncovered

__all__ = ["load_candidates", "policy_from_config", "run"]


def policy_from_config(config_toml: str | None) -> dict[str, Any]:
    """Weights, threshold, budget and per-kind quota of a run's (first) select stage, with the
    config's defaults where the TOML says nothing (or cannot be read): the what-if sliders' start."""
    stage = SelectStage()
    out: dict[str, Any] = {"weights": dict(JudgeSpec().weights), "threshold": stage.threshold,
                           "budget": stage.budget, "per_kind_quota": {}}
    cfg = config_dict(config_toml)
    w = (cfg.get("judges") or {}).get("weights")
    if isinstance(w, dict):
        out["weights"] = {str(c): float(w.get(c, 0.0)) for c in CATEGORIES}
    for st in cfg.get("stages") or []:
        if isinstance(st, dict) and st.get("type") == StageType.SELECT:
            if isinstance(st.get("weights"), dict):
                out["weights"] = {str(c): float(st["weights"].get(c, 0.0)) for c in CATEGORIES}
            out["threshold"] = float(st.get("threshold", out["threshold"]))
            out["budget"] = st.get("budget")
            out["per_kind_quota"] = dict(st.get("per_kind_quota") or {})
            break
    return out


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
    arrays = scoring.CandidateArrays(rows)
    kept, comb = scoring.select(arrays, weights, stage.threshold, stage.per_kind_quota, stage.budget)
    selected = scoring.selection_items(arrays, kept, comb)
    # a selection must not weigh a missing category silently: warn, and keep the gaps with it
    gaps = warn_uncovered(ctx, idx, j, weights, arrays)
    policy = {"samples_stage": ctx.cfg.stages[j].name, "samples_stage_idx": j,
              "threshold": stage.threshold, "weights": weights,
              "per_kind_quota": dict(stage.per_kind_quota), "budget": stage.budget,
              **({"uncovered": gaps} if gaps else {})}
    if stage.reset_threshold is not None:  # ReSet-S: its size next to ReSet's on these samples
        policy["vs_reset"] = scoring.size_vs_reset(arrays, weights, len(selected),
                                                   stage.reset_threshold)
    sel_id = ctx.log.add_selection(ctx.run_id, idx, stage.name, policy, selected)
    stored = ctx.log.count("selection_items", selection_id=sel_id)
    if stored != len(selected):
        ctx.event(idx, f"selection {stage.name!r} already existed with {stored} items; kept it",
                  level="warning")
    stats = scoring.selection_stats(arrays, kept, comb)
    if policy.get("vs_reset", {}).get("ratio") is not None:
        stats["size_vs_reset"] = policy["vs_reset"]["ratio"]
    ctx.log.log_metrics(ctx.run_id, idx, 0, stats)
    if not selected:
        ctx.event(idx, f"no candidate cleared threshold {stage.threshold}; the selection is empty "
                       "and a train stage on it will fail", level="warning")
    ctx.event(idx, f"selected {len(selected)} of {len(rows)} samples "
                   f"({stats['accept_rate']:.0%} of {int(stats['n_prompts'])} prompts) at threshold "
                   f"{stage.threshold}", details={"policy": policy, "stats": stats})
    ctx.progress(idx, 1, 1, f"selected {len(selected)}", force=True)
