"""Many processes for one stage: sampling shards and data-parallel training under torchrun.

The worker stays the one process that owns the stage plan. When ``compute.processes > 1`` a
stage that can use it starts its processes here and waits for them:

- *sample* (hf backend): N plain subprocesses, ``RESET_STUDIO_SHARD=r/N``. The stage forms the
  same batches a single process forms and shard ``r`` generates batch ``b`` when ``b % N == r``;
  a sample's seed depends on its prompt and candidate only, so N shards write exactly the rows
  one process writes.
- *train*: ``torchrun --nproc-per-node N`` (gloo on CPU, nccl on GPUs); the HF Trainer runs its
  own DDP. Only rank 0 writes to the run log (:class:`RankZeroLog`) and saves checkpoints.

A process that dies fails the stage with its rank and stderr tail; a cancel is passed on as
SIGTERM, and each process saves and stops at its next step boundary.

``python -m backend.compute --home H RUN IDX`` is the entry point of one such process.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import paths
from .errors import StudioError
from .launcher import Studio, _pid_alive, kill_tree, log_tail, max_concurrent

ENV_SHARD = "RESET_STUDIO_SHARD"  # "rank/world" of a sampling shard
EXIT_STOPPED = 3  # a child that stopped on request (cancel), not a failure
POLL_S = 1.0


class ShardError(StudioError, RuntimeError):
    """A rank that died or failed; the message names it and carries its stderr tail."""

    def __init__(self, message: str, *, rank: int | None = None, code: int | None = None,
                 tail: str = ""):
        super().__init__(message)
        self.rank, self.code, self.tail = rank, code, tail

    @property
    def signal(self) -> int | None:
        return -self.code if self.code is not None and self.code < 0 else None


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (Linux), so a killed worker leaves no rank or
    shard behind writing to the run log."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class AgreedStop:
    """A stop flag every rank reads the same: ``is_set`` is a collective (MAX over ranks), so all
    ranks stop at the same step boundary even if the signal reached them a step apart. Every rank
    calls it the same number of times (once per step, once after training)."""

    def __init__(self, local: threading.Event, device: str = "cpu"):
        self.local = local
        self.device = device

    def set(self) -> None:
        self.local.set()

    def is_set(self) -> bool:
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self.local.is_set()
        flag = torch.tensor([1.0 if self.local.is_set() else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() > 0:
            self.local.set()
        return self.local.is_set()


def shard() -> tuple[int, int] | None:
    """(rank, world) inside a sampling shard, else None."""
    spec = os.environ.get(ENV_SHARD)
    if not spec:
        return None
    rank, _, world = spec.partition("/")
    return int(rank), int(world)


def dist_rank() -> int:
    """This process's global rank under torchrun (0 when not distributed)."""
    return int(os.environ.get("RANK", "0"))


def in_torchrun() -> bool:
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def torch_threads(per_node: int) -> int:
    """Cores per process when ``per_node`` processes (of each concurrent run) share a machine."""
    return max(1, (os.cpu_count() or 1) // (max_concurrent() * max(1, per_node)))


def stage_processes(cfg, stage) -> int:
    """How many processes a stage runs with: training and hf sampling use compute.processes."""
    n = cfg.compute.processes
    if n <= 1:
        return 1
    if stage.type == "train":
        return n
    if stage.type == "sample" and stage.backend == "hf":
        return n
    return 1


# ---- the run log seen by a rank ---------------------------------------------------------------
class RankZeroLog:
    """The run log for a rank other than 0: every read goes through, every write is dropped, so
    each metric, checkpoint and event is written once (by rank 0)."""

    _WRITES = {"create_run", "update_run", "heartbeat", "stage_start", "stage_progress",
               "stage_end", "log_metrics", "add_checkpoint", "event", "add_prompts",
               "add_samples", "add_scores", "add_selection", "add_evals"}

    def __init__(self, log):
        self._log = log

    def __getattr__(self, name: str):
        if name in self._WRITES:
            if name == "add_prompts":
                return lambda run_id, stage_idx, records: self._log.prompt_ids(run_id, stage_idx)
            return lambda *a, **k: None
        return getattr(self._log, name)


# ---- the parent side: start, watch, stop ------------------------------------------------------
def _how(code: int) -> str:
    if code < 0:
        return f"killed by signal {-code} ({signal.Signals(-code).name})"
    return f"exited with code {code}"


def _child_env(ctx, nprocs: int) -> dict[str, str]:
    env = dict(os.environ)
    env["RESET_STUDIO_TORCH_THREADS"] = str(torch_threads(nprocs))
    env["OMP_NUM_THREADS"] = env["RESET_STUDIO_TORCH_THREADS"]
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(paths.REPO_ROOT), env.get("PYTHONPATH"))
                                        if p)
    return env


def _gpu_slice(ctx, rank: int) -> str | None:
    """CUDA_VISIBLE_DEVICES for a sampling shard: its own gpus_per_process devices."""
    g = ctx.cfg.compute.gpus_per_process
    if not g:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(64)]
    return ",".join(ids[rank * g:(rank + 1) * g])


def _watch(ctx, idx: int, procs: list[tuple[int, subprocess.Popen, Path]],
           on_poll: Callable[[], None] | None, what: str) -> None:
    """Wait for every process; fail naming the first rank that died, pass a cancel on."""
    stop_sent = False
    while True:
        codes = [(rank, p.poll(), log) for rank, p, log in procs]
        bad = [(r, c, log) for r, c, log in codes if c not in (None, 0, EXIT_STOPPED)]
        if bad:
            rank, code, log = bad[0]
            _stop_all(procs)
            time.sleep(0.5)  # let torchrun write the failed rank's summary
            tail = log_tail(log)
            raise ShardError(f"{what}: rank {rank} {_how(code)}"
                             + (f"\n--- rank {rank} stderr ---\n{tail}" if tail else ""),
                             rank=rank, code=code, tail=tail)
        if all(c is not None for _, c, _ in codes):
            break
        if ctx.stopping and not stop_sent:
            for _, p, _ in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            stop_sent = True
        if on_poll:
            on_poll()
        time.sleep(POLL_S)
    if on_poll:
        on_poll()
    if ctx.stopping or any(p.returncode == EXIT_STOPPED for _, p, _ in procs):
        from .stages.context import StopRequested

        raise StopRequested("cancelled by the user")


def _stop_all(procs) -> None:
    for _, p, _ in procs:
        if p.poll() is None:
            kill_tree(p)


def _entry(ctx, idx: int) -> list[str]:
    return ["-m", "backend.compute", "--home", str(ctx.home), ctx.run_id, str(idx)]


def run_sample_shards(ctx, idx: int, world: int, on_poll: Callable[[], None] | None = None) -> None:
    """Sample stage ``idx`` in ``world`` shard processes; returns when all finished."""
    procs = []
    sdir = ctx.stage_dir(idx)
    try:
        for rank in range(world):
            env = _child_env(ctx, world)
            env[ENV_SHARD] = f"{rank}/{world}"
            gpus = _gpu_slice(ctx, rank)
            if gpus is not None:
                env["CUDA_VISIBLE_DEVICES"] = gpus
            log = sdir / f"shard-{rank}.stderr.log"
            with open(log, "ab") as err:
                p = subprocess.Popen([sys.executable, *_entry(ctx, idx)], env=env,
                                     stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                     cwd=str(paths.REPO_ROOT), close_fds=True,
                                     preexec_fn=die_with_parent)
            procs.append((rank, p, log))
        (sdir / "shards.pid").write_text(" ".join(str(p.pid) for _, p, _ in procs))
        _watch(ctx, idx, procs, on_poll, f"sampling shard of stage {idx + 1}")
    except BaseException:
        _stop_all(procs)
        raise


def run_torchrun(ctx, idx: int, nprocs: int, on_poll: Callable[[], None] | None = None) -> None:
    """Stage ``idx`` under torchrun with ``nprocs`` processes on this node (the Trainer's DDP).

    Every rank's stderr goes to its own file (``--log-dir``, ``--redirects 3``) so a dead rank
    is named with its own tail."""
    import torch

    sdir = ctx.stage_dir(idx)
    logs = sdir / "ranks"
    import shutil

    shutil.rmtree(logs, ignore_errors=True)  # torchrun refuses a non-empty log dir
    for stale in sdir.glob("rank-*.pid"):  # an earlier attempt's ranks are not this one's
        stale.unlink(missing_ok=True)
    (sdir / "stopped").unlink(missing_ok=True)
    env = _child_env(ctx, nprocs)
    gpus = ctx.cfg.compute.gpus_per_process and torch.cuda.is_available()
    nodes = ctx.cfg.compute.nodes
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nprocs}",
           "--log-dir", str(logs), "--redirects", "3", "--tee", "0", "--max-restarts", "0"]
    if nodes > 1 and os.environ.get("SLURM_JOB_ID"):
        # one torchrun per node (srun starts them); the first node of the job is the rendezvous
        cmd += [f"--nnodes={nodes}", "--rdzv-backend=c10d",
                f"--rdzv-endpoint={os.environ.get('RESET_STUDIO_MASTER', 'localhost')}:29500",
                f"--rdzv-id={ctx.run_id}-{idx}"]
    else:
        cmd += ["--standalone"]
    cmd += ["-m", "backend.compute", "--home", str(ctx.home), ctx.run_id, str(idx)]
    if nodes > 1 and os.environ.get("SLURM_JOB_ID"):
        cmd = ["srun", f"--nodes={nodes}", "--ntasks-per-node=1", *cmd]
    env["RESET_STUDIO_DDP_BACKEND"] = "nccl" if gpus else "gloo"
    err_path = sdir / "torchrun.stderr.log"
    with open(err_path, "ab") as err:
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                                cwd=str(paths.REPO_ROOT), close_fds=True,
                                preexec_fn=die_with_parent)
    (sdir / "torchrun.pid").write_text(str(proc.pid))
    try:
        _watch_torchrun(ctx, idx, proc, logs, err_path, on_poll)
    except BaseException:
        _stop_all([(0, proc, err_path)])
        raise


def rank_pids(ctx, idx: int) -> dict[int, int]:
    """rank -> pid of the torchrun workers of stage ``idx`` (written by each rank at start)."""
    out = {}
    for f in ctx.stage_dir(idx).glob("rank-*.pid"):
        try:
            out[int(f.stem.split("-")[1])] = int(f.read_text())
        except (OSError, ValueError):
            pass
    return out


def _watch_torchrun(ctx, idx, proc, logs: Path, err_path: Path, on_poll) -> None:
    stop_sent = False
    dead_since: float | None = None
    while proc.poll() is None:
        if ctx.stopping and not stop_sent:
            proc.send_signal(signal.SIGTERM)  # torchrun passes it on to every rank
            stop_sent = True
        if dead_since is None and _dead_rank(ctx, idx) is not None:
            dead_since = time.time()  # torchrun tears the others down itself, then reports
        if dead_since and time.time() - dead_since > 60:
            _stop_all([(0, proc, err_path)])
            break
        if on_poll:
            on_poll()
        time.sleep(POLL_S / 4 if dead_since else POLL_S)
    if on_poll:
        on_poll()
    code = proc.returncode
    marker = ctx.stage_dir(idx) / "stopped"
    stopped = marker.exists()
    if code == 0 and not stopped and not ctx.stopping:
        return
    if (stopped or ctx.stopping) and dead_since is None:
        from .stages.context import StopRequested

        marker.unlink(missing_ok=True)
        raise StopRequested("cancelled by the user")
    rank, rank_code = _root_cause(err_path)
    if rank is None:
        dead = _dead_rank(ctx, idx)
        rank = dead[0] if dead else None
    rank_log = _rank_stderr(logs, rank) if rank is not None else None
    tail = log_tail(rank_log) if rank_log else log_tail(err_path)
    how = _how(rank_code) if rank_code is not None else f"torchrun {_how(code)}"
    raise ShardError(f"data-parallel training of stage {idx + 1}: rank {rank} died ({how})"
                     f"\n--- rank {rank} stderr ---\n{tail}",
                     rank=rank, code=rank_code if rank_code is not None else code, tail=tail)


def _dead_rank(ctx, idx) -> tuple[int, int] | None:
    """A rank whose process vanished while torchrun still runs: (rank, pid)."""
    for rank, pid in sorted(rank_pids(ctx, idx).items()):
        if not _pid_alive(pid):
            return rank, pid
    return None


def _root_cause(err_path: Path) -> tuple[int | None, int | None]:
    """The rank and exit code torchrun names as the first observed failure."""
    import re

    text = log_tail(err_path, 200)
    text = text[text.rfind("Root Cause"):] if "Root Cause" in text else ""
    rank = re.search(r"rank\s*:\s*(\d+)", text)
    code = re.search(r"exitcode\s*:\s*(-?\d+)", text)
    return (int(rank.group(1)) if rank else None, int(code.group(1)) if code else None)


def _rank_stderr(logs: Path, rank: int) -> Path | None:
    found = sorted(logs.glob(f"**/attempt_*/{rank}/stderr.log"))
    return found[-1] if found else None


# ---- the child side ---------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend.compute")
    ap.add_argument("--home", required=True)
    ap.add_argument("run_id")
    ap.add_argument("idx", type=int)
    args = ap.parse_args(argv)
    die_with_parent()

    from . import config as config_mod
    from .stages import stage_runner
    from .stages.context import StageContext, StopRequested, inject_fault
    from .worker import _quiet_libraries

    local_stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: local_stop.set())
    signal.signal(signal.SIGINT, lambda *_: local_stop.set())
    studio = Studio(args.home)
    log = studio.open_log()
    run = log.get_run(args.run_id)
    cfg = config_mod.loads(run["config_toml"], f"run {args.run_id}")
    _quiet_libraries(cfg)
    stop: Any = local_stop
    if in_torchrun():
        rank = dist_rank()
        stop = AgreedStop(local_stop, _init_process_group())
    else:
        rank = (shard() or (0, 1))[0]
    # sampling shards each write their own batches; training ranks other than 0 write nothing
    view: Any = RankZeroLog(log) if in_torchrun() and rank != 0 else log
    ctx = StageContext(run_id=args.run_id, home=studio.home,
                       run_dir=studio.run_dir(args.run_id).resolve(),
                       cfg=cfg, log=view, stop_event=stop)
    (ctx.stage_dir(args.idx) / f"rank-{rank}.pid").write_text(str(os.getpid()))
    try:
        inject_fault("rank_start", rank)
        stage_runner(cfg.stages[args.idx].type)(ctx, args.idx, cfg.stages[args.idx])
    except StopRequested:
        if rank == 0:
            (ctx.stage_dir(args.idx) / "stopped").write_text("cancel")
        return EXIT_STOPPED
    finally:
        log.close()
    if in_torchrun():
        import torch.distributed as dist

        dist.barrier()  # rank 0 wrote the final checkpoint; nobody leaves before it is there
        dist.destroy_process_group()
    return 0


def _init_process_group() -> str:
    """Join the torchrun group before the Trainer does (accelerate reuses it): gloo on CPU, nccl
    on GPUs. Returns the device the stop flag's tensor lives on."""
    import datetime

    import torch
    import torch.distributed as dist

    backend = os.environ.get("RESET_STUDIO_DDP_BACKEND", "gloo")
    device = "cpu"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    # model loads and probes are not collective; a long timeout keeps a slow rank from failing
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return device


if __name__ == "__main__":
    sys.exit(main())
