"""Slurm executor: a run as a batch job, its states mapped onto the run's status.

The run's supervisor (on the machine that runs the app, which sees the cluster's shared
filesystem) submits a generated sbatch script, records the job id, and then, until the run ends:
ingests the job's journal into the app's run log (:mod:`backend.journal`), maps Slurm's state
(``scontrol show job``; ``sacct`` once the controller forgot the job) onto the run, and passes a
cancel on as ``scancel``:

=================  ==========================================================================
PENDING            run ``queued``, with Slurm's reason
RUNNING            run ``running`` (the job's own rows say so), node recorded
TIMEOUT/PREEMPTED  resubmitted (``max_requeues`` times); the job resumes from the checkpoint
OUT_OF_MEMORY,     run ``died`` with the state and the job's output tail
NODE_FAIL, FAILED
CANCELLED          ``cancelled`` when the app asked, else ``died`` (cancelled outside the app)
=================  ==========================================================================

On the compute node, ``python -m backend.slurm job`` copies the app's run log as it was at
submit time (``seed.db``) to node-local disk, replays the journal over it (a requeued job
continues where the last attempt stopped), runs the ordinary worker against that local log,
and exports what it writes to the journal. No process on a compute node opens the app's SQLite.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from . import paths
from .errors import StudioError
from .journal import Exporter, ingest, journal_path, repair_tail
from .launcher import Studio, log_tail
from .vocab import Status

POLL_S = 2.0
CANCEL_MARK = "cancel-requested"
FLUSH_S = 0.5  # rows a kill after Slurm's KillWait could lose: at most this much
REQUEUE_STATES = {"TIMEOUT", "PREEMPTED"}
ACTIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD",
                 "REQUEUE_FED", "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT",
                 "RESV_DEL_HOLD", "SPECIAL_EXIT"}


class SlurmError(StudioError, RuntimeError):
    """sbatch/scontrol missing or refusing; one line with Slurm's own words."""


def _tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        raise SlurmError(f"{name} not found: the Slurm executor needs the Slurm client tools on "
                         "the machine that runs the app")
    return path


# ---- the batch script -------------------------------------------------------------------------
def sbatch_script(cfg, run_id: str, home: str | os.PathLike, run_dir: str | os.PathLike) -> str:
    c, s = cfg.compute, cfg.compute.slurm
    q = shlex.quote
    lines = ["#!/bin/bash",
             f"#SBATCH --job-name=reset-{run_id[:48]}",
             f"#SBATCH --output={Path(run_dir) / 'slurm-%j.out'}",
             "#SBATCH --open-mode=append",
             f"#SBATCH --nodes={c.nodes}",
             "#SBATCH --ntasks-per-node=1",
             f"#SBATCH --time={s.time_limit}",
             "#SBATCH --requeue"]  # `scontrol requeue` restarts it; the job resumes itself
    if s.partition:
        lines.append(f"#SBATCH --partition={s.partition}")
    if s.account:
        lines.append(f"#SBATCH --account={s.account}")
    if s.mem:
        lines.append(f"#SBATCH --mem={s.mem}")
    if c.gpus_per_process:
        lines.append(f"#SBATCH --gres=gpu:{c.gpus_per_process * c.processes}")
    lines += [f"#SBATCH {x}" for x in s.extra_sbatch]
    lines += ["", "set -eo pipefail"]
    if s.setup.strip():
        lines += ["# setup (compute.slurm.setup)", s.setup.rstrip(), ""]
    lines += [f"cd {q(str(paths.REPO_ROOT))}",
              f"exec {q(sys.executable)} -m backend.slurm job --home {q(str(home))} {q(run_id)}",
              ""]
    return "\n".join(lines)


def make_seed(log, run_dir: Path) -> Path:
    """A consistent copy of the app's run log for the job to start from (SQLite's backup API)."""
    seed = run_dir / "seed.db"
    tmp = run_dir / "seed.db.tmp"
    tmp.unlink(missing_ok=True)
    dst = sqlite3.connect(str(tmp))
    try:
        log.conn.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file to copy
    finally:
        dst.close()
    tmp.replace(seed)
    return seed


def submit(cfg, run_id: str, home, run_dir: Path, log) -> str:
    make_seed(log, run_dir)
    script = run_dir / "job.sbatch"
    script.write_text(sbatch_script(cfg, run_id, home, run_dir))
    proc = subprocess.run([_tool("sbatch"), "--parsable", str(script)], capture_output=True,
                          text=True, cwd=str(run_dir))
    if proc.returncode != 0:
        raise SlurmError(f"sbatch refused the job: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout.strip().split(";")[0]


# ---- job state --------------------------------------------------------------------------------
def job_state(job_id: str) -> dict[str, str]:
    """{'state', 'reason', 'node', 'exit'}; state 'UNKNOWN' once Slurm forgot the job."""
    proc = subprocess.run([_tool("scontrol"), "show", "job", "-o", str(job_id)],
                          capture_output=True, text=True)
    if proc.returncode == 0 and "JobState=" in proc.stdout:
        fields = dict(kv.split("=", 1) for kv in proc.stdout.split() if "=" in kv)
        return {"state": fields.get("JobState", "UNKNOWN").split()[0],
                "reason": fields.get("Reason", "None"), "node": fields.get("NodeList", ""),
                "exit": fields.get("ExitCode", ""), "restarts": fields.get("Restarts", "0")}
    sacct = shutil.which("sacct")
    if sacct:
        proc = subprocess.run([sacct, "-j", str(job_id), "-n", "-X", "-P", "-o",
                               "State,Reason,NodeList,ExitCode"], capture_output=True, text=True)
        line = proc.stdout.strip().splitlines()[:1]
        if proc.returncode == 0 and line:
            state, reason, node, code = (line[0].split("|") + ["", "", "", ""])[:4]
            return {"state": state.split()[0], "reason": reason, "node": node, "exit": code,
                    "restarts": "0"}
    return {"state": "UNKNOWN", "reason": "", "node": "", "exit": "", "restarts": "0"}


def scancel(job_id: str, *, signal_name: str | None = None) -> None:
    cmd = [_tool("scancel")]
    if signal_name:
        cmd += [f"--signal={signal_name}", "--full"]
    subprocess.run([*cmd, str(job_id)], capture_output=True, text=True)


def job_info(run_dir: str | os.PathLike) -> dict[str, Any]:
    """What the supervisor recorded about the run's job (id, state, reason, node, attempts)."""
    try:
        return json.loads((Path(run_dir) / "slurm.json").read_text())
    except (OSError, ValueError):
        return {}


def _record(run_dir: Path, **info: Any) -> dict[str, Any]:
    data = {**job_info(run_dir), **info}
    tmp = run_dir / "slurm.json.tmp"
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(run_dir / "slurm.json")
    return data


# ---- the app's side: the run's supervisor -----------------------------------------------------
def _resubmit(cfg, run_id: str, home, run_dir: Path, log, journal: Path,
              attempt: int) -> tuple[str, int]:
    """Submit the next attempt, after taking in what an earlier one left (before the seed)."""
    ingest(log, journal)
    job_id = submit(cfg, run_id, home, run_dir, log)
    attempt += 1
    _record(run_dir, job_id=job_id, attempt=attempt, active=True, state="SUBMITTED")
    log.event(run_id, f"submitted as Slurm job {job_id} (attempt {attempt})",
              details={"job_id": job_id})
    return job_id, attempt


def supervise(studio: Studio, run_id: str, log, cfg) -> None:
    """Submit the run and follow its job until the run ends (called by backend.supervisor)."""
    run_dir = studio.run_dir(run_id)
    journal = journal_path(run_dir)
    max_requeues = cfg.compute.slurm.max_requeues
    info = job_info(run_dir)
    attempt = int(info.get("attempt", 0))
    job_id = info.get("job_id") if info.get("active") else None
    if job_id is None:
        job_id, attempt = _resubmit(cfg, run_id, studio.home, run_dir, log, journal, attempt)
    last_state = None
    cancel_sent = False
    while True:
        ingest(log, journal)
        run = log.get_run(run_id)
        if run["cancel_requested"] and not cancel_sent:
            (run_dir / CANCEL_MARK).write_text(str(time.time()))  # the job reads: a user cancel
            scancel(job_id)
            cancel_sent = True
            log.event(run_id, f"cancel: scancel {job_id}")
        st = job_state(job_id)
        state = st["state"]
        if state != last_state:
            _record(run_dir, state=state, reason=st["reason"], node=st["node"])
            last_state = state
            if state == "PENDING":
                log.update_run(run_id, status=Status.QUEUED)
                log.event(run_id, f"Slurm job {job_id} pending: {st['reason']}")
            elif state == "RUNNING":
                log.event(run_id, f"Slurm job {job_id} running on {st['node']}")
        if state in ACTIVE_STATES:
            time.sleep(POLL_S)
            continue
        # the job ended: take in its last rows, then decide
        time.sleep(0.5)
        ingest(log, journal)
        run = log.get_run(run_id)
        _record(run_dir, active=False)
        action, status, message = outcome(st, job_id, run["status"],
                                          bool(run["cancel_requested"]), attempt, max_requeues)
        if action == "requeue":
            log.event(run_id, message, level="warning")
            for stage in log.get_stages(run_id):
                if stage["status"] in ("running", "cancelled"):
                    log.stage_end(run_id, stage["idx"], "interrupted", f"job {state}")
            log.update_run(run_id, status="queued", ended_at=None, error=None)
            job_id, attempt = _resubmit(cfg, run_id, studio.home, run_dir, log, journal, attempt)
            last_state = None
            continue
        if action == "end":
            _end(log, run_id, status, message, run_dir, job_id)
        return


def outcome(st: dict[str, str], job_id: str, run_status: str, cancelled: bool, attempt: int,
            max_requeues: int) -> tuple[str, str | None, str]:
    """What an ended job means for its run: ("requeue" | "end" | "reported", status, message).

    TIMEOUT/PREEMPTED resubmit (unless the user cancelled, or the requeues are used up) even if
    the job reported a graceful stop; otherwise a job that reported its own end stands; the
    rest is died (or cancelled) with Slurm's state and reason."""
    state = st["state"]
    if state in REQUEUE_STATES and not cancelled:
        if attempt <= max_requeues:
            return ("requeue", "queued", f"Slurm job {job_id} ended {state}: resubmitting to "
                    "resume from the last checkpoint")
        return ("end", "died", f"Slurm job {job_id} ended {state} after {attempt} attempts "
                f"(max_requeues = {max_requeues})")
    if run_status in ("succeeded", "failed", "cancelled", "died"):
        return ("reported", run_status, "")
    if state == "CANCELLED" or (cancelled and state in REQUEUE_STATES):
        if cancelled:
            return ("end", "cancelled", f"Slurm job {job_id} cancelled")
        return ("end", "died", f"Slurm job {job_id} cancelled outside the app (scancel)")
    reason = st.get("reason") if st.get("reason") not in (None, "", "None") else \
        f"exit {st.get('exit') or '?'}"
    return ("end", "died", f"Slurm job {job_id} ended {state} ({reason})")


def _end(log, run_id: str, status: str, message: str, run_dir: Path, job_id: str) -> None:
    log.update_run(run_id, status=status, ended_at=time.time(), error=message,
                   stderr_tail=log_tail(run_dir / f"slurm-{job_id}.out") or None)
    for stage in log.get_stages(run_id):
        if stage["status"] == Status.RUNNING:
            log.stage_end(run_id, stage["idx"], "interrupted", message)
    log.event(run_id, message, level="error" if status == Status.DIED else "warning")


# ---- the compute node's side: the job ---------------------------------------------------------
def job_main(home: str, run_id: str) -> int:
    """Run the worker against a node-local copy of the run log; export its rows to the journal."""
    from . import worker
    from .runlog import RunLog

    shared_run_dir = Studio(home).run_dir(run_id).resolve()
    journal = journal_path(shared_run_dir)
    job = os.environ.get("SLURM_JOB_ID", "local")
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    local = Path(tempfile.mkdtemp(prefix=f"reset-studio-job{job}-{restarts}-",
                                  dir=os.environ.get("TMPDIR") or None))
    (local / "runs").mkdir()
    (local / "runs" / run_id).symlink_to(shared_run_dir)
    shutil.copyfile(shared_run_dir / "seed.db", local / "runlog.db")
    (shared_run_dir / CANCEL_MARK).unlink(missing_ok=True)
    repair_tail(journal)  # a killed attempt may have left half a line: this job is the writer
    with RunLog(local / "runlog.db") as log:
        replayed = ingest(log, journal)
    def user_cancel() -> bool:
        return (shared_run_dir / CANCEL_MARK).exists()

    # SIGTERM from Slurm (requeue, time limit, preemption) also stops the worker gracefully, but
    # the run is not cancelled: it will resume. Only a cancel the app asked for ends as one.
    exporter = Exporter(local / "runlog.db", run_id, journal,
                        hold=lambda t, r: t == "runs" and r["status"] == "cancelled"
                        and not user_cancel())
    exporter.mark_seen()  # the seed and the replayed rows are in the journal already
    with RunLog(local / "runlog.db") as log:
        log.event(run_id, f"Slurm job {job} (restart {restarts}) on {os.uname().nodename}: "
                          f"{replayed} journal rows replayed")
    stop = threading.Event()

    def pump() -> None:
        while not stop.wait(FLUSH_S):
            exporter.flush()

    pumper = threading.Thread(target=pump, daemon=True)
    pumper.start()
    try:
        code = worker.main(["--home", str(local), run_id])
    finally:
        stop.set()
        pumper.join(timeout=10)
        with RunLog(local / "runlog.db") as log:
            run = log.get_run(run_id)
            if run["status"] == "cancelled" and not user_cancel():
                log.update_run(run_id, status="queued", ended_at=None,
                               error="stopped by Slurm (requeue, time limit or preemption); "
                                     "resumes from the last checkpoint")
                for st in log.get_stages(run_id):
                    if st["status"] == "cancelled":
                        log.stage_end(run_id, st["idx"], "interrupted", "stopped by Slurm")
        exporter.flush()
        exporter.close()
        shutil.rmtree(local, ignore_errors=True)
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m backend.slurm")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("job", help="run inside a Slurm batch job")
    p.add_argument("--home", required=True)
    p.add_argument("run_id")
    args = ap.parse_args(argv)
    return job_main(args.home, args.run_id)


if __name__ == "__main__":
    from .worker import use_jemalloc

    use_jemalloc(sys.argv[1:], module="backend.slurm")  # the job runs the worker in-process
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    sys.exit(main())
