"""Experiments: one config run under several seeds, one run per seed, grouped in the run log.

A config lists ``seeds = [1, 2, 3]`` (or ``reset-gui run CONFIG --seeds 1,2,3``): each seed becomes
its own run (``seed = s``, named ``<name>-s<s>``), all created first and tagged with one experiment
id in the ``runs.experiment`` column, then started (``launcher.Studio.launch_seeds``). Seeds change
the training order, LoRA initialisation and sampling; the eval items are the same for every seed
(the held-out split does not depend on the run seed), so per-item scores of the seeds line up.

``merge_seeds`` pools the seeds of one checkpoint: each eval item's score is its mean over the seeds
that scored it, so the bootstrap over items of the pooled scores gives the interval of the
seed-averaged model, and the per-seed means are kept to show the spread between seeds.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

from .config import RunConfig
from .eval_details import ALL, CATEGORIES, EvalDetails, ItemScores
from .stats import METHOD, summarize_by_dataset

_SCORES = (*CATEGORIES, "combined")


def parse_seeds(text: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3]; rejects empty entries, negatives and repeats."""
    try:
        seeds = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise ValueError(f"--seeds takes comma-separated integers, e.g. 1,2,3; got {text!r}") from None
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds needs distinct non-negative integers, got {text!r}")
    return seeds


def seed_configs(cfg: RunConfig, seeds: Sequence[int] | None = None) -> list[RunConfig]:
    """One config per seed (``cfg.seeds`` unless ``seeds`` is given); a single seed is ``cfg``."""
    seeds = list(seeds if seeds is not None else cfg.seeds)
    if len(seeds) <= 1:
        return [cfg.model_copy(update={"seed": seeds[0] if seeds else cfg.seed, "seeds": []}, deep=True)]
    return [cfg.model_copy(update={"seed": s, "seeds": [], "name": f"{cfg.name}-s{s}"}, deep=True)
            for s in seeds]


def merge_seeds(dets: Sequence[EvalDetails]) -> EvalDetails:
    """One checkpoint's ``_all`` details pooled over seeds (see the module docstring). The result's
    ``seed_means`` holds each seed's own macro means."""
    items: dict[str, list[ItemScores]] = {}
    for d in dets:
        for k, it in d.items.items():
            items.setdefault(k, []).append(it)
    pooled: dict[str, ItemScores] = {}
    for k, its in items.items():
        vals = {}
        for c in _SCORES:
            got = [v for it in its if (v := it.get(c)) is not None]
            vals[c] = sum(got) / len(got) if got else None
        toks = [it.n_tokens for it in its if it.n_tokens is not None]
        pooled[k] = replace(its[0], **vals, n_tokens=round(sum(toks) / len(toks)) if toks else None)
    out = EvalDetails(kind=ALL, items=pooled, bootstrap={**METHOD, "seeds": len(dets),
                      "pooling": "item score = mean over the seeds that scored it"})
    summarize_by_dataset(out, _SCORES)
    for c in _SCORES:
        per_seed = [m for d in dets if (m := d.means.get(c)) is not None]
        if per_seed:
            out.seed_means[c] = per_seed
    return out
