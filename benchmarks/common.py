"""Shared pieces of the benchmarks: options, timing with interleaved repetitions, targets."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

CACHE_DIR = "/tmp/reset_studio_bench"


@dataclass
class Options:
    quick: bool = False
    reps: int | None = None  # override the repetitions of each benchmark
    keep: bool = False  # keep temporary run logs and homes
    shared: dict[str, Any] = field(default_factory=dict)  # results one benchmark hands another

    def n(self, quick: int, full: int) -> int:
        return quick if self.quick else full


@dataclass
class Target:
    """One figure with a target: ``value op threshold`` (e.g. ratio >= 2.0)."""

    bench: str
    name: str
    value: float | None
    op: str  # ">=" | "<=" | "info"
    threshold: float | None = None
    unit: str = ""
    note: str = ""

    @property
    def status(self) -> str:
        if self.op == "info" or self.threshold is None:
            return "info"
        if self.value is None:
            return "ERROR"
        ok = self.value >= self.threshold if self.op == ">=" else self.value <= self.threshold
        return "PASS" if ok else "MISS"


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    if unit == "%":
        return f"{value:.1f} %"
    if unit == "ms":
        return f"{value:.1f} ms" if value < 100 else f"{value:.0f} ms"
    if unit == "MiB":
        return f"{value:.0f} MiB"
    if abs(value) >= 100:
        return f"{value:,.0f}{(' ' + unit) if unit else ''}"
    return f"{value:.3g}{(' ' + unit) if unit else ''}"


def interleaved(variants: dict[str, Callable[[], Any]], reps: int, *, warmup: bool = True,
                label: str = "") -> dict[str, list[float]]:
    """Time each variant ``reps`` times, alternating variants within every repetition (the start
    rotates each repetition), so slow drift of a shared machine hits every variant alike.
    Returns seconds per run for each variant."""
    names = list(variants)
    if warmup:
        for name in names:
            variants[name]()
    times: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]
        for name in order:
            t0 = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - t0)
        if label:
            print(f"    {label} rep {rep + 1}/{reps}: " +
                  ", ".join(f"{n} {times[n][-1]:.2f}s" for n in names), flush=True)
    return times


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median of per-repetition ratios num/den (times); robust to drift between repetitions."""
    return statistics.median(a / b for a, b in zip(num, den))


def header(title: str) -> None:
    print(f"\n=== {title} " + "=" * max(0, 86 - len(title)), flush=True)


def table(rows: list[list[str]], head: list[str]) -> None:
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths))
    print("  " + line)
    print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths)), flush=True)
