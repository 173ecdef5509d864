"""Peak memory (RSS) of a real worker process during each stage of a tiny ReSet run on the
embedded model: train -> sample -> judge -> select -> train (continue) -> evaluate."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .common import Options, Target, header, table


def tiny_reset_config(opts: Options):
    from backend.config import load_preset

    cfg = load_preset("reset_demo")
    cfg.name = "bench-memory"
    for d in cfg.data:
        d.budget = 2 if opts.quick else 6
    for st in cfg.stages:
        if st.type == "train":
            st.max_steps = 2 if opts.quick else 6
            # the demo's batch shape: activations, not steps, set the peak
            st.batch_size = 4
            st.max_length = 384
            st.probe_size = 2
            st.probe_max_new_tokens = 8
            st.save_steps = 1000
        elif st.type == "sample":
            st.budget_per_kind = {k: 2 if opts.quick else 4 for k in st.budget_per_kind}
            st.max_new_tokens = 8 if opts.quick else 64
        elif st.type == "select":
            st.threshold = 0.0  # keep something, whatever the tiny model writes
        elif st.type == "evaluate":
            st.eval_size = 2 if opts.quick else 6
            st.max_new_tokens = 8 if opts.quick else 64
    return cfg


def _rss_tree(proc) -> int:
    import psutil

    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(opts: Options) -> list[Target]:
    import psutil

    from backend import paths
    from backend.launcher import Studio

    header("peak memory (RSS) of the worker per stage, tiny ReSet run on the embedded model")
    home = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    cfg = tiny_reset_config(opts)
    studio = Studio(home)
    run_id = studio.create_run(cfg)
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1")
    stderr = open(home / "worker.stderr.log", "wb")
    t0 = time.perf_counter()
    worker = subprocess.Popen([sys.executable, "-m", "backend.worker", "--home", str(home), run_id],
                              cwd=str(paths.REPO_ROOT), env=env, stdin=subprocess.DEVNULL,
                              stdout=stderr, stderr=stderr)
    proc = psutil.Process(worker.pid)
    peaks: dict[int, int] = {}
    starts: dict[int, int] = {}
    stage_of: dict[int, str] = {}
    stop = threading.Event()

    def sample():
        log = None
        current = -1
        while not stop.is_set():
            try:
                if log is None and studio.runlog_path.exists():
                    log = studio.open_log(readonly=True)
                if log is not None:
                    run = log.get_run(run_id)
                    current = run["current_stage"] if run and run["current_stage"] is not None else -1
                rss = _rss_tree(proc)
            except (psutil.Error, Exception):  # noqa: BLE001 - process ending, log busy
                time.sleep(0.05)
                continue
            peaks[current] = max(peaks.get(current, 0), rss)
            starts.setdefault(current, rss)  # what the stage began with: earlier stages' leftovers
            time.sleep(0.1)
        if log is not None:
            log.close()

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    timeout = 1800
    try:
        worker.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    stop.set()
    th.join()
    stderr.close()
    wall = time.perf_counter() - t0
    with studio.open_log(readonly=True) as log:
        run = log.get_run(run_id)
        stages = log.get_stages(run_id)
    for s in stages:
        stage_of[s["idx"]] = f"{s['name']} ({s['type']})"
    rows = []
    for idx in sorted(set(peaks) | set(stage_of)):
        name = "start-up (imports, config)" if idx < 0 else stage_of.get(idx, str(idx))
        st = next((s for s in stages if s["idx"] == idx), None)
        dur = f"{(st['ended_at'] or 0) - (st['started_at'] or 0):.1f} s" if st and st["ended_at"] else "-"
        peak = f"{peaks[idx] / 2**20:.0f} MiB" if idx in peaks else "(< 0.1 s: not sampled)"
        start = f"{starts[idx] / 2**20:.0f} MiB" if idx in starts else "-"
        rows.append([str(idx + 1) if idx >= 0 else "-", name, start, peak, dur])
    table(rows, ["#", "stage", "RSS at start", "peak RSS", "duration"])
    print("  note: RSS a stage frees stays with the allocator, so a stage's figure includes what "
          "earlier stages left behind; before a train, sample or evaluate stage the worker "
          "re-executes itself (same pid, fresh memory)")
    print(f"  run {run['status']} in {wall:.0f} s (worker exit {worker.returncode})", flush=True)
    if run["status"] != "succeeded":
        print(f"  error: {run['error']}\n  stderr tail:\n" +
              "\n".join("    " + ln for ln in (home / 'worker.stderr.log').read_text(
                  errors="replace").splitlines()[-15:]))
    if not opts.keep:
        shutil.rmtree(home, ignore_errors=True)
    else:
        print(f"  kept {home}")
    targets = []
    for idx in sorted(peaks):
        if idx >= 0:
            targets.append(Target("memory", f"peak RSS, {stage_of.get(idx, idx)}", peaks[idx] / 2**20,
                                  "info", None, "MiB"))
    train_peak = max((peaks[i] for i, st in enumerate(cfg.stages) if st.type == "train" and i in peaks),
                     default=None)
    targets.append(Target("memory", "peak RSS of the train stages (demo batch shape)",
                          train_peak / 2**20 if train_peak else None, "<=", 1536, "MiB"))
    targets.append(Target("memory", "tiny ReSet run finished", 1.0 if run["status"] == "succeeded"
                          else 0.0, ">=", 1.0, "", run["status"]))
    return targets
