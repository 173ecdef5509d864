"""Start, watch, cancel and resume runs as background processes.

Each run is a *supervisor* process in its own session (it outlives the GUI and the shell) that
starts the *worker* as its child. The worker reports its own outcome in the run log; the
supervisor only steps in when the worker vanished without reporting (SIGKILL, OOM killer,
segfault): it records ``died`` with the exit code or signal and the stderr tail, then starts the
next queued run. ``reconcile_log`` repairs the log when even the supervisor is gone.
"""
from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import platformdirs

from . import paths
from .config import RunConfig
from .errors import StudioError
from .runlog import RunLog
from .vocab import FINAL_STATUSES, Status

ENV_MAX_CONCURRENT = "RESET_STUDIO_MAX_CONCURRENT"
CANCEL_GRACE_S = 90.0  # graceful stop (final checkpoint) before the process tree is killed


class LaunchError(StudioError, RuntimeError):
    """A run that was refused before any process started."""


def max_concurrent() -> int:
    try:
        return max(1, int(os.environ.get(ENV_MAX_CONCURRENT, "1")))
    except ValueError:
        return 1


def new_run_id(name: str) -> str:
    slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in name.lower())[:24].strip("-")
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug or 'run'}-{secrets.token_hex(2)}"


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie is not alive
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().split(b")")[-1].split()[0] != b"Z"
    except OSError:
        return True


def _set_processes(log: RunLog, run: dict[str, Any], processes: int) -> None:
    from .config import config_from_dict, loads

    cfg = loads(run["config_toml"], f"run {run['id']}")
    data = cfg.to_dict()
    data["compute"] = {**data.get("compute", {}), "processes": processes}
    cfg = config_from_dict(data, "(resume --processes)")
    if run["run_dir"]:
        cfg.save(Path(run["run_dir"]) / "config.toml")
    log.update_run(run["id"], config_toml=cfg.to_toml())
    log.event(run["id"], f"resuming with {processes} process{'es' if processes > 1 else ''}")


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def log_tail(path: str | os.PathLike, lines: int = 30) -> str:
    """The last ``lines`` lines of a log (read from its last 16 kB); "" when there is none."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16_000))
            text = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def stderr_tail(run_dir: str | os.PathLike, lines: int = 30) -> str:
    return log_tail(Path(run_dir) / "worker.stderr.log", lines)


def kill_tree(proc: subprocess.Popen) -> int:
    """SIGKILL a child process and every descendant; returns its exit code. The descendants are
    waited for through psutil, the child through ``proc`` (psutil reaping it would lose its code)."""
    import psutil

    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    proc.kill()
    psutil.wait_procs(family, timeout=10)
    return proc.wait()


def reconcile_log(log: RunLog) -> list[str]:
    """Mark runs whose processes are gone (without having reported) as died."""
    fixed = []
    now = time.time()
    for run in log.list_runs():
        if run["status"] != Status.RUNNING:
            continue
        worker_pid = _read_pid(Path(run["run_dir"]) / "worker.pid") if run["run_dir"] else None
        if _pid_alive(run["pid"]) or _pid_alive(worker_pid):
            continue  # alive, even if slow (a long model load): keep waiting
        fresh = log.get_run(run["id"])  # the worker may have reported in the meantime
        if fresh and fresh["status"] != Status.RUNNING:
            continue
        log.update_run(run["id"], status=Status.DIED, ended_at=now,
                       error="process gone without reporting (killed, or the machine restarted)",
                       stderr_tail=stderr_tail(run["run_dir"]) if run["run_dir"] else None)
        log.event(run["id"], "worker process gone without reporting: marked died", level="error")
        fixed.append(run["id"])
    return fixed


class Studio:
    """One home folder: its run log, its run folders, and the runs started from it.

    The home is ``home`` if given, else ``$RESET_STUDIO_HOME``, else the per-user data folder."""

    def __init__(self, home: str | os.PathLike | None = None):
        if home is None:
            home = os.environ.get(paths.ENV_HOME) or platformdirs.user_data_dir("reset-studio",
                                                                                appauthor=False)
        self.home = Path(home).expanduser().resolve()
        self.runs_dir = self.home / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.runlog_path = self.home / "runlog.db"

    def run_dir(self, run_id: str) -> Path:
        return self.runs_dir / run_id

    def open_log(self, readonly: bool = False) -> RunLog:
        return RunLog(self.runlog_path, readonly=readonly)

    def worker_pid(self, run_id: str) -> int | None:
        return _read_pid(self.run_dir(run_id) / "worker.pid")

    def preflight(self, cfg: RunConfig) -> list[str]:
        """Problems that would make the run fail at once; checked before any process starts."""
        from .models import ModelError, resolve_model

        problems: list[str] = []
        with self.open_log() as log:
            lookup = log.find_checkpoint
            try:
                resolve_model(cfg.model.base, allow_unsafe_weights=cfg.model.allow_unsafe_weights,
                              trust_remote_code=cfg.model.trust_remote_code,
                              revision=cfg.model.revision, checkpoint_lookup=lookup)
            except ModelError as exc:
                problems.append(f"model.base: {exc}")
        from .data import DataError, load_dataset_records

        for i, d in enumerate(cfg.data):
            for attr in ("source", "eval_source"):
                value = getattr(d, attr)
                if not value:
                    continue
                if (Path(value).suffix or value.startswith((".", "/"))) and not Path(value).exists():
                    problems.append(f"data.{i}.{attr}: file not found: {value}")
                elif Path(value).exists():  # local files are small: parse and map them now
                    try:
                        load_dataset_records(d.model_copy(update={"source": value}))
                    except DataError as exc:
                        problems.append(f"data.{i}.{attr}: {exc}")
        if cfg.compute.executor == "slurm" and not shutil.which("sbatch"):
            problems.append("compute.executor: slurm, but sbatch is not on this machine's PATH")
        if cfg.model.device == "cuda":
            if importlib.util.find_spec("torch") is None:
                problems.append("model.device: cuda requested but torch is not installed")
        for i, st in enumerate(cfg.stages):
            if getattr(st, "backend", None) == "vllm":
                if importlib.util.find_spec("vllm") is None:
                    problems.append(f"stages.{i}.backend: vllm is not installed (pip install "
                                    "'reset-studio[vllm]' on a CUDA machine) — use backend = \"hf\"")
            if getattr(st, "backend", None) == "openai" and not (st.endpoint and st.endpoint.base_url):
                problems.append(f"stages.{i}.endpoint.base_url: the openai backend needs an endpoint")
        return problems

    def refuse_if_problems(self, cfg: RunConfig) -> None:
        if problems := self.preflight(cfg):
            raise LaunchError("run refused:\n  " + "\n  ".join(problems))

    def create_run(self, cfg: RunConfig, *, parent_run_id: str | None = None,
                   check: bool = True) -> str:
        """Validate, write the run's folder and config, and add it to the log as ``queued``."""
        if check:
            self.refuse_if_problems(cfg)
        run_id = new_run_id(cfg.name)
        rdir = self.run_dir(run_id)
        rdir.mkdir(parents=True, exist_ok=False)
        try:
            cfg.save(rdir / "config.toml")
            with self.open_log() as log:
                log.create_run(run_id, name=cfg.name, preset=cfg.preset, config_toml=cfg.to_toml(),
                               run_dir=str(rdir), parent_run_id=parent_run_id)
                log.event(run_id, f"run created from preset {cfg.preset!r}")
        except BaseException:
            shutil.rmtree(rdir, ignore_errors=True)  # no folder without its row in the log
            raise
        return run_id

    def spawn(self, run_id: str) -> int:
        """Start the supervisor for a run in a new session; returns its pid."""
        rdir = self.run_dir(run_id)
        rdir.mkdir(parents=True, exist_ok=True)
        out = open(rdir / "supervisor.log", "ab")
        env = dict(os.environ)
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        cmd = [sys.executable, "-m", "backend.supervisor", "--home", str(self.home), run_id]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                cwd=str(paths.REPO_ROOT), env=env, start_new_session=True,
                                close_fds=True)
        out.close()
        with self.open_log() as log:
            log.update_run(run_id, status=Status.RUNNING, pid=proc.pid, started_at=time.time(),
                           heartbeat_at=time.time(), exit_code=None, signal=None, error=None,
                           cancel_requested=0)
            log.event(run_id, f"started (supervisor pid {proc.pid})")
        return proc.pid

    def start_queued(self) -> list[str]:
        """Start queued runs (oldest first) while slots are free; returns their ids."""
        with self.open_log() as log:
            reconcile_log(log)
            runs = log.list_runs()
        free = max(0, max_concurrent() - sum(r["status"] == Status.RUNNING for r in runs))
        # a queued run whose supervisor lives is a Slurm job waiting on the cluster
        queued = [r["id"] for r in runs if r["status"] == Status.QUEUED and not _pid_alive(r["pid"])]
        for run_id in queued[:free]:
            self.spawn(run_id)
        return queued[:free]

    def launch(self, cfg: RunConfig, *, parent_run_id: str | None = None) -> str:
        """Create a run and start it now, or leave it queued when all slots are busy."""
        run_id = self.create_run(cfg, parent_run_id=parent_run_id)
        self.start_queued()
        return run_id

    def launch_seeds(self, cfg: RunConfig,
                     seeds: Sequence[int] | None = None) -> tuple[str | None, list[str]]:
        """One run per seed (backend.experiments), tagged with one experiment id, then started.

        Returns (experiment id or None for a single seed, run ids in seed order). Every config is
        checked before any run is created, so a bad config leaves no half experiment behind."""
        from .experiments import seed_configs

        cfgs = seed_configs(cfg, seeds)
        if len(cfgs) == 1:
            return None, [self.launch(cfgs[0])]
        for c in cfgs:
            self.refuse_if_problems(c)
        exp = "exp-" + new_run_id(cfg.name)
        run_ids = []
        for c in cfgs:
            run_id = self.create_run(c, check=False)
            with self.open_log() as log:
                log.update_run(run_id, experiment=exp)
                log.event(run_id, f"seed {c.seed} of experiment {exp} ({len(cfgs)} seeds)")
            run_ids.append(run_id)
        self.start_queued()
        return exp, run_ids

    def resume(self, run_id: str, *, processes: int | None = None) -> str:
        """Re-run a stopped run: finished stages are skipped, training continues from its checkpoint
        (with ``processes`` data-parallel processes if given: the checkpoint does not depend on it)."""
        with self.open_log() as log:
            reconcile_log(log)
            run = log.find_run(run_id)
            if run is None:
                raise LaunchError(f"no run {run_id!r}")
            if run["status"] in (Status.RUNNING, Status.QUEUED):
                raise LaunchError(f"run {run['id']} is {run['status']}; nothing to resume")
            if run["status"] == Status.SUCCEEDED:
                raise LaunchError(f"run {run['id']} already succeeded")
            # the worker reports its end before its supervisor exits; a supervisor still finishing
            # would read the re-queued run as "ended without reporting" and mark it died
            deadline = time.time() + 30
            while _pid_alive(run["pid"]) and time.time() < deadline:
                time.sleep(0.2)
            if _pid_alive(run["pid"]):
                raise LaunchError(f"run {run['id']} is still shutting down (supervisor pid "
                                  f"{run['pid']}); try again in a moment")
            if processes is not None:
                _set_processes(log, run, processes)
            log.update_run(run["id"], status=Status.QUEUED, ended_at=None, cancel_requested=0)
            log.event(run["id"], f"resume requested (was {run['status']})")
        self.start_queued()
        return run["id"]

    def cancel(self, run_id: str) -> str:
        """Ask for a graceful stop; the supervisor kills the tree if it has not stopped in time."""
        with self.open_log() as log:
            run = log.find_run(run_id)
            if run is None:
                raise LaunchError(f"no run {run_id!r}")
            if run["status"] == Status.QUEUED and _pid_alive(run["pid"]):  # pending on the cluster
                log.update_run(run["id"], cancel_requested=1)
                log.event(run["id"], "cancel requested (the supervisor calls scancel)")
                return run["id"]
            if run["status"] == Status.QUEUED:
                log.update_run(run["id"], status=Status.CANCELLED, ended_at=time.time())
                log.event(run["id"], "cancelled while queued")
                return run["id"]
            if run["status"] != Status.RUNNING:
                raise LaunchError(f"run {run['id']} is {run['status']}, not running")
            log.update_run(run["id"], cancel_requested=1)
            log.event(run["id"], "cancel requested")
            worker_pid = self.worker_pid(run["id"])
        if worker_pid and _pid_alive(worker_pid):
            try:
                os.kill(worker_pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        return run["id"]

    def wait(self, run_id: str, timeout: float | None = None, poll: float = 1.0) -> dict[str, Any]:
        """Block until the run reaches a final status (or timeout); returns the run row."""
        deadline = None if timeout is None else time.time() + timeout
        with self.open_log() as log:
            while True:
                run = log.get_run(run_id)
                if run is None:
                    raise LaunchError(f"no run {run_id!r}")
                if run["status"] in FINAL_STATUSES:
                    return run
                if run["status"] == Status.RUNNING:
                    reconcile_log(log)
                if deadline is not None and time.time() > deadline:
                    return run
                time.sleep(poll)
