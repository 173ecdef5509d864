"""Worker: executes a run's stage plan, stage by stage, and writes everything to the run log.

Started by the supervisor (``python -m backend.worker --home H RUN``). Finished stages are
skipped, so starting it again on a stopped run resumes it. SIGTERM requests a graceful stop at
the next step boundary.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
import traceback
from typing import Callable

from . import config as config_mod
from .launcher import Studio, max_concurrent
from .stages import stage_runner
from .compute import ShardError
from .stages.context import StageContext, StopRequested, inject_fault
from .vocab import Status

HEARTBEAT_S = 5.0


def _heartbeat(studio: Studio, run_id: str, stop: threading.Event) -> None:
    log = studio.open_log()
    try:
        while not stop.wait(HEARTBEAT_S):
            log.heartbeat(run_id)
            run = log.get_run(run_id)
            if run and run["cancel_requested"]:
                _cancel_event.set()
    finally:
        log.close()


_cancel_event = threading.Event()


def _release_memory() -> None:
    """Give the previous stage's model and activations back before the next stage loads its own."""
    import ctypes
    import gc

    judges = sys.modules.get("backend.judges.faithfulness")
    if judges is not None:
        judges.release_models()
    gc.collect()
    process = ctypes.CDLL(None)
    if hasattr(process, "mallctl"):  # jemalloc purges on allocation ticks: an idle gap keeps
        process.mallctl(b"arena.4096.purge", None, None, None, 0)  # ~50 MB dirty (all arenas)
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # not glibc
        pass


JEMALLOC_CONF = "dirty_decay_ms:200,muzzy_decay_ms:0,narenas:2"


def use_jemalloc(argv: list[str], module: str = "backend.worker") -> None:
    """Re-execute this worker under jemalloc where the system has it (Debian: libjemalloc2).
    Training allocates and frees GBs of activations per step: glibc's malloc keeps the freed
    memory as heap fragments (the demo's MTL stage peaked at ~2.0 GB RSS); jemalloc returns it
    (~1.5 GiB with the lean ops) at the same speed. Torchrun ranks inherit the environment.
    ALLOCATOR_ENV=system keeps glibc."""
    import ctypes.util

    preload = os.environ.get("LD_PRELOAD", "")
    if (sys.platform != "linux" or os.environ.get(ALLOCATOR_ENV, "auto") != "auto"
            or "jemalloc" in preload):
        return
    lib = ctypes.util.find_library("jemalloc")
    if not lib:
        return
    env = dict(os.environ, LD_PRELOAD=f"{lib} {preload}".strip())
    env.setdefault("MALLOC_CONF", JEMALLOC_CONF)
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


# auto: jemalloc if installed, else glibc malloc; system: glibc malloc. (A fixed 128 KiB glibc
# mmap threshold, which hands every large tensor back at once, peaked lower but page-faulted every
# tensor afresh: training at 0.64x the speed. Not offered.)
ALLOCATOR_ENV = "RESET_STUDIO_ALLOCATOR"


def allocator() -> str:
    return "jemalloc" if "jemalloc" in os.environ.get("LD_PRELOAD", "") else "glibc malloc"


def tune_malloc() -> None:
    """Under glibc: fewer arenas (one per thread by default), each holding its own fragments."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc
        return
    libc.mallopt(-8, 2)  # M_ARENA_MAX


def _run_stage(ctx: StageContext, idx: int, stage) -> None:
    """In this process, or, for a train stage with compute.processes > 1, under torchrun."""
    from .compute import run_torchrun, stage_processes

    n = stage_processes(ctx.cfg, stage)
    if stage.type != "train" or n <= 1:
        stage_runner(stage.type)(ctx, idx, stage)
        return
    world = n * ctx.cfg.compute.nodes
    backend = "nccl" if ctx.cfg.compute.gpus_per_process and ctx.device() == "cuda" else "gloo"
    ctx.event(idx, f"data-parallel training: {world} processes (torchrun, {backend}); rank 0 "
                   "writes the run log and checkpoints",
              details={"world_size": world, "processes": n, "nodes": ctx.cfg.compute.nodes,
                       "ddp_backend": backend})
    ctx.log.log_metrics(ctx.run_id, idx, 0, {"world_size": world})
    run_torchrun(ctx, idx, n)


# Stages that load a model to train or generate with: each starts in a fresh process image.
FRESH_STAGE_TYPES = frozenset({"train", "sample", "evaluate"})


def run_stages(ctx: StageContext, fresh_process: Callable[[int], None] | None = None,
               continuing: bool = False) -> str:
    """Every stage not done yet, in order. With ``fresh_process``, a stage of FRESH_STAGE_TYPES
    that would follow another stage in this process calls it first (it re-executes the worker,
    which then skips the finished stages; ``continuing`` keeps those skips out of the events)."""
    done = {st["idx"]: st["status"] for st in ctx.log.get_stages(ctx.run_id)}
    ran = 0
    for idx, stage in enumerate(ctx.cfg.stages):
        if done.get(idx) == Status.SUCCEEDED:
            if not continuing:
                ctx.event(idx, f"stage {stage.name} already done; skipped")
            continue
        ctx.check_stop()
        if fresh_process is not None and ran and stage.type in FRESH_STAGE_TYPES:
            fresh_process(idx)
        ran += 1
        ctx.log.stage_start(ctx.run_id, idx, stage.name, stage.type)
        ctx.event(idx, f"stage {stage.name} ({stage.type}) started")
        t0 = time.time()
        try:
            _run_stage(ctx, idx, stage)
        except StopRequested:
            ctx.log.stage_end(ctx.run_id, idx, Status.CANCELLED, "cancelled by the user")
            raise
        except BaseException as exc:
            ctx.log.stage_end(ctx.run_id, idx, Status.FAILED, f"{type(exc).__name__}: {exc}"[:500])
            raise
        _release_memory()
        ctx.log.stage_end(ctx.run_id, idx, Status.SUCCEEDED, f"{time.time() - t0:.1f} s")
        ctx.event(idx, f"stage {stage.name} finished in {time.time() - t0:.1f} s")
    return Status.SUCCEEDED


def _quiet_libraries(cfg) -> None:
    """No hub traffic unless the run asks for a hub model (peft's save_pretrained probes the hub
    for the base config otherwise), and no per-load progress bars in the worker log."""
    from pathlib import Path

    base = cfg.model.base
    if base == "embedded" or base.startswith("run:") or Path(base).exists():
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    # Concurrent runs share the cores: torch's default (all cores each) oversubscribes them,
    # which made generation several times slower when two processes ran at once.
    import torch

    threads = os.environ.get("RESET_STUDIO_TORCH_THREADS")
    torch.set_num_threads(int(threads) if threads else
                          max(1, (os.cpu_count() or 1) // max_concurrent()))


STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
EXEC_SETTLE_S = 0.25  # before re-executing: time for a stop signal taken by another thread
CONTINUE_FLAG = "--continue-fresh"  # argv of a worker that re-executed itself before a stage


def main(argv: list[str] | None = None, fresh_process: bool = False) -> int:
    """Run a run's stages. ``fresh_process``: before a stage that loads a model (train, sample,
    evaluate) and follows another stage, re-execute this worker (same pid, same arguments), so
    it starts without what the earlier stages left in memory (imports, allocator caches, heap
    fragments): in one process the demo's reset stage peaked at 1545 MiB, in a fresh one at
    1451. Costs ~2 s of imports. Off inside a Slurm job, whose process also pumps the
    journal."""
    ap = argparse.ArgumentParser(prog="python -m backend.worker")
    ap.add_argument("--home", required=True)
    ap.add_argument("run_id")
    ap.add_argument(CONTINUE_FLAG, dest="continuing", action="store_true",
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    tune_malloc()
    studio = Studio(args.home)
    log = studio.open_log()
    run = log.get_run(args.run_id)
    if run is None:
        print(f"no run {args.run_id!r} in {studio.runlog_path}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: _cancel_event.set())
    signal.signal(signal.SIGINT, lambda *_: _cancel_event.set())
    # a stop signal that arrived while the previous image re-executed was held: delivered now
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    if run["cancel_requested"]:  # the launcher's cancel writes this before it signals (a launch
        _cancel_event.set()      # clears it): seen at once, not at the first heartbeat
    log.update_run(args.run_id, status=Status.RUNNING, error=None, error_tail=None)
    if args.continuing:
        log.event(args.run_id, f"worker continues in a fresh process (pid {os.getpid()}, "
                               f"{allocator()}): the next stage starts without the memory "
                               "earlier stages left behind")
    else:
        log.event(args.run_id, f"worker started (pid {os.getpid()}, {allocator()})")
    hb_stop = threading.Event()
    hb = threading.Thread(target=_heartbeat, args=(studio, args.run_id, hb_stop), daemon=True)
    hb.start()

    def restart_fresh(idx: int) -> None:
        # SIGTERM/SIGINT stay blocked across execv (the mask and pending signals survive it):
        # a cancel arriving now is held for the new image's handler instead of killing it
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        inject_fault("fresh_process", idx)
        hb_stop.set()
        hb.join(timeout=30)
        # A signal sent while this thread blocks them goes to another thread; its handler then
        # runs here, at the next bytecode. On a busy machine that thread may not be scheduled
        # before the check below (a cancel lost in the exec), so give it a moment.
        time.sleep(EXEC_SETTLE_S)
        # a signal another thread took, or the launcher's flag
        if _cancel_event.is_set() or (log.get_run(args.run_id) or {}).get("cancel_requested"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
            raise StopRequested("cancelled by the user")
        log.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "backend.worker", "--home",
                                  str(args.home), args.run_id, CONTINUE_FLAG])

    ctx = None
    try:
        cfg = config_mod.loads(run["config_toml"], f"run {args.run_id}")
        _quiet_libraries(cfg)
        # resolved: in a Slurm job the run folder is a link to the shared one, and the paths
        # written into the log (checkpoints) must be the shared ones
        ctx = StageContext(run_id=args.run_id, home=studio.home,
                           run_dir=studio.run_dir(args.run_id).resolve(),
                           cfg=cfg, log=log, stop_event=_cancel_event)
        run_stages(ctx, restart_fresh if fresh_process else None, args.continuing)
        log.update_run(args.run_id, status=Status.SUCCEEDED, ended_at=time.time(), exit_code=0)
        log.event(args.run_id, "run succeeded")
        code = 0
    except StopRequested:
        log.update_run(args.run_id, status=Status.CANCELLED, ended_at=time.time(), exit_code=0)
        log.event(args.run_id, "run cancelled; a final checkpoint was kept where training ran",
                  level="warning")
        code = 0
    except ShardError as exc:  # a rank or shard process died: the run died, naming it
        first = str(exc).splitlines()[0]
        log.update_run(args.run_id, status=Status.DIED, ended_at=time.time(), exit_code=1,
                       signal=exc.signal, error=first[:2000], stderr_tail=exc.tail[-8000:] or None)
        log.event(args.run_id, f"run died: {first[:500]}", level="error")
        print(str(exc), file=sys.stderr)
        code = 1
    except BaseException as exc:  # noqa: BLE001 - every failure is recorded, then re-raised below
        tb = traceback.format_exc()
        message = f"{type(exc).__name__}: {exc}"
        log.update_run(args.run_id, status=Status.FAILED, ended_at=time.time(), exit_code=1,
                       error=message[:2000], error_tail="\n".join(tb.splitlines()[-25:]))
        log.event(args.run_id, f"run failed: {message[:500]}", level="error")
        print(tb, file=sys.stderr)
        code = 1
    finally:
        hb_stop.set()
    log.close()
    return code


if __name__ == "__main__":
    use_jemalloc(sys.argv[1:])  # only as a process of its own: a Slurm job calls main() after setup
    sys.exit(main(fresh_process=True))
