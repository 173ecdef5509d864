"""Intervals for evaluation means: percentile bootstrap over eval items (numpy, seeded).

A checkpoint's summary score is a macro mean (the mean of per-data-set means), so resampling is
stratified: items are drawn with replacement within each data set and the macro mean recomputed;
one data set is the plain mean. Two checkpoints evaluated on the same items are compared *paired*:
the per-item differences are resampled, which removes the between-item variance both share and
gives a much narrower interval than two independent ones. A difference whose interval contains 0 is
within noise.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from .eval_details import CATEGORIES, EvalDetails, Interval

N_BOOT = 2000
SEED = 0
LEVEL = 0.95
METHOD = {"method": "percentile bootstrap over eval items, stratified by data set",
          "resamples": N_BOOT, "seed": SEED, "level": LEVEL}


def _groups(groups: Sequence[Sequence[float]]) -> list[np.ndarray]:
    return [a for g in groups if (a := np.asarray(g, dtype=float)).size]


def macro_mean(groups: Sequence[Sequence[float]]) -> float | None:
    gs = _groups(groups)
    return float(np.mean([g.mean() for g in gs])) if gs else None


def bootstrap_ci(groups: Sequence[Sequence[float]], *, n_boot: int = N_BOOT, seed: int = SEED,
                 level: float = LEVEL) -> Interval | None:
    """Percentile bootstrap interval of the macro mean of ``groups`` (each a data set's item
    scores; pass one group for a plain mean). None when there is no item."""
    gs = _groups(groups)
    if not gs:
        return None
    return _interval(_boot_macro(gs, n_boot, np.random.default_rng(seed)), level)


def _boot_macro(groups: list[np.ndarray], n_boot: int, rng: np.random.Generator) -> np.ndarray:
    boot = np.zeros(n_boot)
    for g in groups:
        boot += g[rng.integers(0, g.size, size=(n_boot, g.size))].mean(axis=1)
    return boot / len(groups)


def _interval(boot: np.ndarray, level: float) -> Interval:
    alpha = (1.0 - level) / 2
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return Interval(float(lo), float(hi), level)


@dataclass(frozen=True)
class Diff:
    """(macro mean of b) − (macro mean of a), with its bootstrap interval."""
    diff: float
    interval: Interval
    n: int                      # paired items (paired) or all items of both sides (unpaired)
    paired: bool                # False: no shared item, so the two sides were resampled apart

    @property
    def within_noise(self) -> bool:
        return self.interval.contains(0.0)


def diff_ci(a: Mapping[str, Mapping[str, float]], b: Mapping[str, Mapping[str, float]], *,
            n_boot: int = N_BOOT, seed: int = SEED, level: float = LEVEL) -> Diff | None:
    """Bootstrap interval of b − a, each given as data set -> {item key: score}
    (``EvalDetails.grouped``).

    Paired where the two share items: only the items both were scored on count, per data set, and
    the per-item differences are resampled. Without a shared item (different eval sets) the two
    sides are resampled independently. None when a side has no item."""
    paired: list[np.ndarray] = []
    for ds in sorted(set(a) & set(b)):
        keys = sorted(set(a[ds]) & set(b[ds]))
        if keys:
            paired.append(np.array([b[ds][k] - a[ds][k] for k in keys], dtype=float))
    rng = np.random.default_rng(seed)
    if paired:
        diff = float(np.mean([g.mean() for g in paired]))
        return Diff(diff, _interval(_boot_macro(paired, n_boot, rng), level),
                    sum(g.size for g in paired), True)
    ga = _groups([list(v.values()) for _k, v in sorted(a.items())])
    gb = _groups([list(v.values()) for _k, v in sorted(b.items())])
    if not ga or not gb:
        return None
    boot = _boot_macro(gb, n_boot, rng) - _boot_macro(ga, n_boot, rng)
    diff = float(np.mean([g.mean() for g in gb]) - np.mean([g.mean() for g in ga]))
    return Diff(diff, _interval(boot, level), sum(g.size for g in ga + gb), False)


def compare_details(a: EvalDetails, b: EvalDetails,
                    categories: Sequence[str] = CATEGORIES) -> dict[str, Diff | None]:
    """b − a per category for two checkpoints' ``_all`` details (None: a side lacks items, e.g. a
    row written before per-item scores were stored)."""
    return {c: diff_ci(a.grouped(c), b.grouped(c)) for c in categories}


def summarize_by_dataset(det: EvalDetails, categories) -> None:
    """Fill ``det``'s mean, n and 95 % interval of each category: the macro mean over the data
    sets that category covers, bootstrapped within each set (the one rule for a checkpoint and
    for seeds pooled)."""
    for cat in categories:
        groups = [list(g.values()) for _ds, g in sorted(det.grouped(cat).items())]
        det.means[cat] = macro_mean(groups)
        det.n[cat] = sum(len(g) for g in groups)
        iv = bootstrap_ci(groups)
        if iv is not None:
            det.intervals[cat] = iv
