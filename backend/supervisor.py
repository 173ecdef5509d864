"""Supervisor: runs one worker as its child and records what the worker could not.

Started by the launcher in its own session. It waits for the worker; if the worker ended
without writing a final status (killed by a signal, crashed in native code), it records
``died`` with the exit code or signal and the stderr tail. It also enforces the cancel grace
period (kill the whole tree) and starts the next queued run when this one ends.
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time

from . import launcher, paths
from .vocab import FINAL_STATUSES, Status


def _executor(studio: launcher.Studio, run_id: str) -> str:
    from .config import ConfigError, loads

    with studio.open_log() as log:
        run = log.get_run(run_id)
    try:
        return loads(run["config_toml"]).compute.executor if run else "local"
    except ConfigError:
        return "local"  # the worker reports the bad config


def _supervise_slurm(studio: launcher.Studio, run_id: str) -> int:
    """The run is a Slurm job: submit it and follow it (backend.slurm)."""
    from . import slurm
    from .config import loads

    log = studio.open_log()
    signal.signal(signal.SIGTERM, lambda *_: log.update_run(run_id, cancel_requested=1))
    try:
        run = log.get_run(run_id)
        slurm.supervise(studio, run_id, log, loads(run["config_toml"]))
    except slurm.SlurmError as exc:
        log.update_run(run_id, status=Status.FAILED, ended_at=time.time(), error=str(exc))
        log.event(run_id, f"run failed: {exc}", level="error")
    finally:
        log.close()
    studio.start_queued()
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend.supervisor")
    ap.add_argument("--home", required=True)
    ap.add_argument("run_id")
    args = ap.parse_args(argv)
    studio = launcher.Studio(args.home)
    rdir = studio.run_dir(args.run_id)
    if _executor(studio, args.run_id) == "slurm":
        return _supervise_slurm(studio, args.run_id)
    err = open(rdir / "worker.stderr.log", "ab")
    out = open(rdir / "worker.stdout.log", "ab")
    cmd = [sys.executable, "-m", "backend.worker", "--home", args.home, args.run_id]
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             cwd=str(paths.REPO_ROOT), close_fds=True)
    (rdir / "worker.pid").write_text(str(child.pid))
    cancel_seen: float | None = None
    # SIGTERM to the supervisor (e.g. from a process manager) becomes a graceful cancel
    signal.signal(signal.SIGTERM, lambda *_: child.send_signal(signal.SIGTERM))
    log = studio.open_log()
    while True:
        try:
            code = child.wait(timeout=1.0)
            break
        except subprocess.TimeoutExpired:
            pass
        run = log.get_run(args.run_id)
        if run and run["cancel_requested"] and cancel_seen is None:
            cancel_seen = time.time()
        if cancel_seen and time.time() - cancel_seen > launcher.CANCEL_GRACE_S:
            code = launcher.kill_tree(child)
            log.update_run(args.run_id, status=Status.CANCELLED, ended_at=time.time(), exit_code=code,
                           error="did not stop within the grace period; killed")
            break
    run = log.get_run(args.run_id)
    if run and run["status"] not in FINAL_STATUSES:
        sig = -code if code < 0 else None
        cancelled = bool(run["cancel_requested"])
        status = Status.CANCELLED if cancelled and sig == signal.SIGKILL else Status.DIED
        reason = (f"killed by signal {sig} ({signal.Signals(sig).name})" if sig
                  else f"exited with code {code} without reporting")
        log.update_run(args.run_id, status=status, ended_at=time.time(), exit_code=code,
                       signal=sig, error=reason,
                       stderr_tail=launcher.stderr_tail(rdir))
        for st in log.get_stages(args.run_id):
            if st["status"] == Status.RUNNING:
                log.stage_end(args.run_id, st["idx"], "interrupted", reason)
        log.event(args.run_id, f"worker {reason}", level="error")
    elif run:
        log.update_run(args.run_id, exit_code=code)
    log.close()
    studio.start_queued()
    return 0


if __name__ == "__main__":
    sys.exit(main())
