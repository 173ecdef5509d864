"""Scale-out on this machine, ratios measured in one run:

- training tokens/s with 2 data-parallel processes (torchrun, gloo on CPU) vs 1 process using
  every core, and the DDP overhead per step: a 2-process step minus a 1-process step of the same
  per-process batch on one thread (what each rank computes), as a share of the 2-process step
  (gradient all-reduce and rank synchronisation);
- sampling with 2 shard processes vs 1 (same prompts, same rows: stage wall time incl. loads).

Runs are real runs through the launcher on the embedded model. ``python -m
benchmarks.bench_scaleout [--steps N] [--prompts N]``. On a 2-core CPU the honest answer may be
<= 1x: two processes share the same two cores the single process already used.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _train_cfg(processes: int, steps: int):
    from backend.config import load_preset

    cfg = load_preset("mtl_demo")
    cfg.name = f"bench-ddp{processes}"
    for d in cfg.data:
        d.budget = 16
    st = cfg.stages[0]
    cfg.stages = [st]
    st.data = ["alpaca_instructions"]
    st.max_steps, st.save_steps, st.eval_steps, st.probe_size = steps, 10_000, 10_000, 0
    st.batch_size, st.max_length, st.logging_steps = 2, 128, 1
    cfg.compute.processes = processes
    return cfg


def _sample_cfg(processes: int, prompts: int):
    from backend.config import DecodingSpec, SampleStage, load_preset

    cfg = load_preset("mtl_demo")
    cfg.name = f"bench-shards{processes}"
    for d in cfg.data:
        d.budget = prompts
    cfg.stages = [SampleStage(name="sample", source="base", data=["alpaca_instructions"],
                              max_new_tokens=24, batch_size=4,
                              decoding=[DecodingSpec(name="t1.0", temperature=1.0, n=2)])]
    cfg.compute.processes = processes
    return cfg


def _run(cfg, home, threads: int | None = None):
    from backend.launcher import Studio

    if threads:
        os.environ["RESET_STUDIO_TORCH_THREADS"] = str(threads)
    else:
        os.environ.pop("RESET_STUDIO_TORCH_THREADS", None)
    studio = Studio(home)
    run_id = studio.launch(cfg)
    run = studio.wait(run_id, timeout=3600, poll=0.5)
    if run["status"] != "succeeded":
        raise RuntimeError(f"{cfg.name}: {run['status']}: {run['error']}")
    return run_id


def _train_figures(home, run_id):
    from backend.launcher import Studio

    with Studio(home).open_log() as log:
        rows = log.query("SELECT step, name, value, time FROM metrics WHERE run_id=? AND name IN "
                         "('loss', 'tokens_per_s') ORDER BY step", (run_id,))
    times = [r["time"] for r in rows if r["name"] == "loss"]
    tps = [r["value"] for r in rows if r["name"] == "tokens_per_s"][1:]  # step 1: warm-up
    steps = [b - a for a, b in zip(times[1:], times[2:])]
    return statistics.median(tps), statistics.median(steps)


def _sample_figures(home, run_id):
    from backend.launcher import Studio

    with Studio(home).open_log() as log:
        st = log.get_stages(run_id)[0]
        n = log.count("samples", run_id=run_id)
        rows = log.query("SELECT p.key, s.cand_idx, s.text FROM samples s JOIN prompts p ON "
                         "p.id=s.prompt_id WHERE s.run_id=? ORDER BY p.key, s.cand_idx", (run_id,))
    return n / max(st["ended_at"] - st["started_at"], 1e-6), [tuple(r.values()) for r in rows]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_scaleout", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--only", choices=["training", "sampling"])
    args = ap.parse_args(argv)
    home = tempfile.mkdtemp(prefix="reset-bench-scaleout-")
    cores = os.cpu_count()
    print(f"scale-out on {cores} cores (home {home})")
    if args.only in (None, "training"):
        t0 = time.time()
        one = _train_figures(home, _run(_train_cfg(1, args.steps), home))  # torch's thread choice
        one_1t = _train_figures(home, _run(_train_cfg(1, args.steps), home, threads=1))
        two = _train_figures(home, _run(_train_cfg(2, args.steps), home))
        ratio = two[0] / one[0]
        overhead = two[1] - one_1t[1]
        print(f"\ntraining ({args.steps} steps, batch 2 per process, {time.time() - t0:.0f} s)")
        print(f"  1 process, all cores    {one[0]:8.1f} tokens/s   {one[1]:.2f} s/step")
        print(f"  1 process, 1 thread     {one_1t[0]:8.1f} tokens/s   {one_1t[1]:.2f} s/step")
        print(f"  2 processes (DDP, gloo) {two[0]:8.1f} tokens/s   {two[1]:.2f} s/step")
        print(f"  ratio 2 vs 1 process: {ratio:.2f}x tokens/s (vs 1 process on 1 thread: "
              f"{two[0] / one_1t[0]:.2f}x; a busy machine makes the all-cores process thrash)")
        print(f"  DDP overhead per step: {overhead:+.2f} s = {100 * overhead / two[1]:.0f} % of a "
              f"2-process step (communication + waiting for the slower rank)")
    if args.only in (None, "sampling"):
        t0 = time.time()
        s1, rows1 = _sample_figures(home, _run(_sample_cfg(1, args.prompts), home))
        s2, rows2 = _sample_figures(home, _run(_sample_cfg(2, args.prompts), home))
        print(f"\nsampling ({len(rows1)} samples, {time.time() - t0:.0f} s)")
        print(f"  1 process {s1:.3f} samples/s, 2 shards {s2:.3f} samples/s (stage wall time, "
              "model loads included)")
        print(f"  ratio 2 vs 1: {s2 / s1:.2f}x; rows identical to the all-cores process: "
              f"{rows1 == rows2}")
        # a matmul's float sums depend on how many threads split it, and at temperature > 0 a
        # last-bit difference can flip a drawn token: shards match a process with their threads
        _s, rows1t = _sample_figures(home, _run(_sample_cfg(1, args.prompts), home, threads=1))
        print(f"  rows identical to 1 process on 1 thread (each shard's count): {rows1t == rows2}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
