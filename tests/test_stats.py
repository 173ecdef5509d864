"""Bootstrap intervals: coverage on data with a known mean, macro means, paired vs unpaired."""
from __future__ import annotations

import numpy as np
import pytest

from backend.eval_details import EvalDetails, ItemScores
from backend.stats import bootstrap_ci, compare_details, diff_ci, macro_mean


def test_interval_is_seeded_and_degenerate_on_a_constant():
    x = np.random.default_rng(3).random(30)
    assert bootstrap_ci([x]) == bootstrap_ci([x])
    assert bootstrap_ci([x], seed=1) != bootstrap_ci([x], seed=2)
    iv = bootstrap_ci([[0.5] * 7])
    assert iv.lo == iv.hi == 0.5
    assert bootstrap_ci([]) is None and bootstrap_ci([[]]) is None and macro_mean([[], []]) is None


def test_coverage_of_the_95_interval_on_a_known_mean():
    """Items drawn from Beta(2, 3) (mean 0.4): about 95 % of the intervals cover 0.4."""
    rng = np.random.default_rng(0)
    hits = 0
    trials = 300
    for t in range(trials):
        x = rng.beta(2, 3, size=40)
        iv = bootstrap_ci([x], n_boot=1000, seed=t)
        hits += iv.contains(0.4)
    rate = hits / trials
    print(f"\ncoverage of the 95 % percentile bootstrap, n = 40: {rate:.3f}")
    assert 0.90 <= rate <= 0.98


def test_macro_mean_is_stratified():
    a, b = [1.0, 1.0, 1.0, 1.0], [0.0, 0.0]
    assert macro_mean([a, b]) == 0.5  # not the pooled 4/6
    iv = bootstrap_ci([a, b])
    assert iv.lo == iv.hi == 0.5  # each set is constant: resampling within sets cannot move it


def test_paired_difference_sees_what_two_independent_intervals_miss():
    """Items vary a lot between themselves, and b beats a by 0.04 on every item: two separate
    intervals overlap, the paired interval of the difference excludes 0."""
    rng = np.random.default_rng(1)
    base = rng.random(40)
    a = {"s": {f"k{i}": float(v) for i, v in enumerate(base)}}
    b = {"s": {f"k{i}": float(v + 0.04 + rng.normal(0, 0.01)) for i, v in enumerate(base)}}
    ia, ib = bootstrap_ci([list(a["s"].values())]), bootstrap_ci([list(b["s"].values())])
    assert ia.hi > ib.lo  # separate intervals overlap
    d = diff_ci(a, b)
    assert d.paired and d.n == 40 and not d.within_noise
    assert d.diff == pytest.approx(0.04, abs=0.01) and 0.02 < d.interval.lo < d.interval.hi < 0.06
    # b on other eval items only: resampled apart, and the difference is within noise
    c = {"s": {f"other{i}": v for i, v in enumerate(b["s"].values())}}
    u = diff_ci(a, c)
    assert not u.paired and u.within_noise and u.n == 80
    assert u.diff == pytest.approx(d.diff)
    assert diff_ci(a, {}) is None


def test_only_shared_items_are_paired():
    a = {"s": {"x": 0.0, "y": 0.0}, "t": {"z": 1.0}}
    b = {"s": {"x": 1.0, "y": 1.0, "extra": 0.0}, "u": {"w": 0.0}}
    d = diff_ci(a, b)
    assert d.paired and d.n == 2 and d.diff == 1.0 and d.interval.lo == d.interval.hi == 1.0


def test_compare_details_uses_the_category_strata():
    def det(f: float, i: float) -> EvalDetails:
        return EvalDetails(items={
            "q:1": ItemScores("q", "qa_extractive", faithfulness=f, task_score=0.5),
            "q:2": ItemScores("q", "qa_extractive", faithfulness=f, task_score=0.5),
            # an instruction item with a faithfulness score: not part of the faithfulness summary
            "a:1": ItemScores("a", "instruction", faithfulness=0.0, instruction_following=i)})
    out = compare_details(det(0.5, 0.2), det(0.7, 0.9))
    assert out["faithfulness"].diff == pytest.approx(0.2) and out["faithfulness"].n == 2
    assert out["instruction_following"].diff == pytest.approx(0.7)
    assert out["task_score"].diff == 0.0 and out["task_score"].within_noise
    assert compare_details(EvalDetails(), det(0.1, 0.1))["faithfulness"] is None
