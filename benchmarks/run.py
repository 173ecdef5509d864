"""Run the benchmarks: ``python -m benchmarks.run [--quick] [--only NAME[,NAME]]``.

Each benchmark prints its figures next to its baseline, measured in the same process with
interleaved repetitions; a summary table with targets and PASS/MISS closes the run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

# before any hub-aware library is imported: nothing here may touch the network
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")

from .common import Options, Target, fmt, table  # noqa: E402

BENCHMARKS = {
    "sampling": "benchmarks.bench_sampling",
    "judging": "benchmarks.bench_judging",
    "training": "benchmarks.bench_training",
    "runlog": "benchmarks.bench_runlog",
    "selection": "benchmarks.bench_selection",
    "memory": "benchmarks.bench_memory",
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes, few repetitions (minutes)")
    ap.add_argument("--only", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    ap.add_argument("--reps", type=int, help="repetitions per measurement (default per benchmark)")
    ap.add_argument("--keep", action="store_true", help="keep temporary run logs and homes")
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice); "
                                                "use 1 on a machine shared with other jobs")
    args = ap.parse_args(argv)
    names = list(BENCHMARKS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in BENCHMARKS]
        if unknown:
            ap.error(f"unknown benchmark {unknown}; choose from {', '.join(BENCHMARKS)}")
    opts = Options(quick=args.quick, reps=args.reps, keep=args.keep)
    import importlib
    import platform

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
        os.environ["RESET_STUDIO_TORCH_THREADS"] = str(args.threads)  # the memory benchmark's worker
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1) and torch.get_num_threads() > 1:
        print(f"WARNING: load average {load:.1f} on {os.cpu_count()} CPUs with {torch.get_num_threads()} "
              "torch threads: OpenMP threads stall each other when the cores are shared (measured "
              "here: 7-16x slower generation); rerun with --threads 1 or on a quiet machine")
    print(f"ReSet Studio benchmarks ({'quick' if opts.quick else 'full'}): python "
          f"{platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    results: list[Target] = []
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        try:
            results.extend(importlib.import_module(BENCHMARKS[name]).run(opts))
        except Exception as exc:  # noqa: BLE001 - report and go on with the next benchmark
            traceback.print_exc()
            results.append(Target(name, f"benchmark crashed: {type(exc).__name__}: {exc}"[:90],
                                  None, ">=", 0.0))
        print(f"  ({name}: {time.perf_counter() - t0:.0f} s)", flush=True)
    print("\n=== summary " + "=" * 80)
    rows = [[t.bench, t.name, fmt(t.value, t.unit),
             "" if t.status == "info" else f"{t.op} {fmt(t.threshold, t.unit)}", t.status, t.note]
            for t in results]
    table(rows, ["bench", "figure", "value", "target", "result", "note"])
    missed = [t for t in results if t.status in ("MISS", "ERROR")]
    print(f"\n{len(results) - len(missed)} of {len(results)} figures pass or are informational; "
          f"{len(missed)} missed; {time.perf_counter() - t_all:.0f} s in all", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
