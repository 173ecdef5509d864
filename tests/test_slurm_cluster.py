"""A real single-node Slurm cluster (Debian's slurm-wlm + munge, slurmctld + slurmd on this
machine, proctrack/linuxproc, task/none, no cgroups) running tiny ReSet plans through
``executor = "slurm"``: a run to the end, scancel, a killed job requeued, a TIMEOUT resubmitted.

The fixture starts the daemons (as root, which CI is). If Slurm cannot start, the tests FAIL
with the reason; they are never skipped."""
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from backend import slurm
from tests.helpers import metric_steps, tiny_config, tiny_reset_config, wait_for

pytestmark = pytest.mark.slow  # tiny runs as Slurm jobs (~4 min on 2 cores)

ROOT = Path("/tmp/reset-studio-slurm")


def _conf(node_line: str) -> str:
    host = node_line.split()[0].split("=")[1]
    return "\n".join([
        "ClusterName=reset-ci", f"SlurmctldHost={host}", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge", "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none", "SwitchType=switch/none", "MpiDefault=none",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none", "SchedulerType=sched/builtin",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        f"StateSaveLocation={ROOT}/state", f"SlurmdSpoolDir={ROOT}/spool",
        f"SlurmctldPidFile={ROOT}/slurmctld.pid", f"SlurmdPidFile={ROOT}/slurmd.pid",
        f"SlurmctldLogFile={ROOT}/slurmctld.log", f"SlurmdLogFile={ROOT}/slurmd.log",
        "ReturnToService=2", "KillWait=5", "MinJobAge=600", "OverTimeLimit=0",
        "InactiveLimit=0",
        # the jobs of this test share the machine with the test itself
        f"{node_line.split(' Boards')[0]} RealMemory=2000 State=UNKNOWN",
        f"PartitionName=ci Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4",
        ""])


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def start_cluster() -> dict[str, str]:
    """Start munged, slurmctld and slurmd unless they already answer; returns the env to use."""
    for tool in ("munged", "slurmctld", "slurmd", "sbatch", "scontrol"):
        if not shutil.which(tool) and not Path(f"/usr/sbin/{tool}").exists():
            pytest.fail(f"{tool} is not installed: apt-get install -y slurm-wlm munge "
                        "(.ci/run does this)")
    if os.geteuid() != 0:
        pytest.fail("the Slurm test cluster needs root (to start munged, slurmctld, slurmd)")
    env = dict(os.environ, SLURM_CONF=str(ROOT / "slurm.conf"))
    if (ROOT / "slurm.conf").exists() and _run(["scontrol", "ping"], env=env).returncode == 0 \
            and "UP" in _run(["scontrol", "ping"], env=env).stdout:
        return env
    for sub in ("state", "spool"):
        (ROOT / sub).mkdir(parents=True, exist_ok=True)
    Path("/run/munge").mkdir(parents=True, exist_ok=True)
    if not Path("/etc/munge/munge.key").exists():
        _run(["/usr/sbin/mungekey", "--create"])
    if _run(["munge", "-n"]).returncode != 0:
        r = _run(["/usr/sbin/munged", "--force"])
        if r.returncode != 0:
            pytest.fail(f"munged did not start: {r.stderr.strip()}")
    node = _run(["/usr/sbin/slurmd", "-C"]).stdout.splitlines()[0]
    (ROOT / "slurm.conf").write_text(_conf(node))
    for daemon in ("slurmctld", "slurmd"):
        r = _run([f"/usr/sbin/{daemon}", "-f", str(ROOT / "slurm.conf")], env=env)
        if r.returncode != 0:
            pytest.fail(f"{daemon} did not start: {r.stderr.strip()} "
                        f"{(ROOT / (daemon + '.log')).read_text()[-2000:] if (ROOT / (daemon + '.log')).exists() else ''}")
    deadline = time.time() + 60
    while time.time() < deadline:
        out = _run(["sinfo", "-h", "-o", "%T"], env=env).stdout.strip()
        if out in ("idle", "mixed", "allocated"):
            return env
        if out.startswith(("down", "drain")):
            _run(["scontrol", "update", f"nodename={node.split()[0].split('=')[1]}",
                  "state=resume"], env=env)
        time.sleep(1)
    log = (ROOT / "slurmctld.log").read_text()[-2000:] if (ROOT / "slurmctld.log").exists() else ""
    pytest.fail(f"the Slurm node did not become idle in 60 s (sinfo: {out!r})\n{log}")


@pytest.fixture(scope="module")
def cluster():
    env = start_cluster()
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = env["SLURM_CONF"]
    yield env
    if old is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = old


def _slurm_config(name, max_steps=4, time_limit="10"):
    cfg = tiny_config(name, max_steps=max_steps, save_steps=2)
    st = cfg.stages[0]
    st.data, st.max_length, st.batch_size, st.probe_size = ["alpaca_instructions"], 96, 1, 0
    cfg.compute.executor = "slurm"
    cfg.compute.slurm.time_limit = time_limit
    cfg.compute.slurm.setup = "export RESET_STUDIO_TORCH_THREADS=1"
    return cfg


def test_launch_a_reset_plan_from_the_window_close_reopen_and_the_plots_fill(qtbot, home, studio, cluster):
    """The promise to a cluster user: press Launch on a ReSet plan with executor = "slurm", close
    the app, reopen it, and the runs list shows the job and its node while the plots fill."""
    from reset_gui.main_window import MainWindow

    cfg = tiny_reset_config("slurm-gui")
    cfg.compute.executor = "slurm"
    cfg.compute.slurm.time_limit = "20"
    cfg.compute.slurm.setup = "export RESET_STUDIO_TORCH_THREADS=1"
    first = MainWindow(home, poll_interval_ms=300)
    qtbot.addWidget(first)
    first.setup.set_config(cfg)
    assert first.setup.validate() and first.setup.build_config().compute.executor == "slurm"
    first.launch()
    qtbot.waitUntil(lambda: len(first.runs) == 1, timeout=60_000)
    run_id = first.runs[0]["id"]
    rdir = studio.run_dir(run_id)
    wait_for(lambda: slurm.job_info(rdir).get("job_id"), timeout=60, what="a job id")
    first.shutdown()
    first.close()  # the app is gone; the supervisor and the job are not

    with studio.open_log() as log:
        wait_for(lambda: metric_steps(log, run_id), timeout=600, what="a loss row via the journal")
    again = MainWindow(home, poll_interval_ms=300)
    qtbot.addWidget(again)
    try:
        again.show_tab("Live")
        again.runs_panel.select_run(run_id)
        qtbot.waitUntil(lambda: bool((again.runs_panel.model.jobs.get(run_id) or {}).get("node")),
                        timeout=60_000)
        job = again.runs_panel.model.jobs[run_id]
        assert job["job_id"] == slurm.job_info(rdir)["job_id"]

        def loss_points() -> int:
            curve = again.live.loss_curves.curves.get((run_id, "loss"))
            return 0 if curve is None or curve.xData is None else len(curve.xData)

        qtbot.waitUntil(lambda: loss_points() >= 1, timeout=60_000)
        seen = loss_points()
        # rows the job writes after the window opened reach the plots: the loss curve grows and
        # the trade-off scatter gets the run's checkpoints once the evaluate stage has scored them
        qtbot.waitUntil(lambda: loss_points() > seen, timeout=600_000)
        qtbot.waitUntil(lambda: any(p.run_id == run_id for p in again.live.tradeoff.data.all_points()),
                        timeout=900_000)
        again.grab().save(str(home / "slurm-reopened.png"))
        run = studio.wait(run_id, timeout=600)
        assert run["status"] == "succeeded", run
    finally:
        again.shutdown()


def test_cluster_answers(cluster):
    r = _run(["sinfo", "-h", "-o", "%P %T"], env=cluster)
    assert r.returncode == 0 and "ci" in r.stdout, r.stderr


def test_a_run_as_a_slurm_job_to_the_end_then_a_killed_job_requeued(studio, cluster):
    run_id = studio.launch(_slurm_config("slurm-e2e", max_steps=6))
    rdir = studio.run_dir(run_id)
    info = wait_for(lambda: slurm.job_info(rdir).get("job_id") and slurm.job_info(rdir),
                    timeout=60, what="a job id")
    assert (rdir / "job.sbatch").read_text().count("#SBATCH --time=10") == 1
    with studio.open_log() as log:
        # the plots fill while the job runs: rows arrive through the journal
        wait_for(lambda: 2 in metric_steps(log, run_id), timeout=400, what="step 2 via the journal")
        assert log.get_run(run_id)["status"] == "running"
        # kill the job's processes, then requeue it as an admin would
        r = _run(["scontrol", "requeue", info["job_id"]], env=cluster)
        assert r.returncode == 0, r.stderr
        # Slurm holds a requeued job back a while (BeginTime); let it start at once
        wait_for(lambda: slurm.job_state(info["job_id"])["state"] == "PENDING", timeout=60,
                 what="the requeued job pending")
        _run(["scontrol", "update", f"jobid={info['job_id']}", "StartTime=now"], env=cluster)
        # the graceful stop Slurm's SIGTERM caused is not a cancel: the run waits to resume
        wait_for(lambda: log.get_run(run_id)["status"] in ("queued", "running"), timeout=60,
                 what="the run queued again")
        assert log.get_run(run_id)["status"] != "cancelled"
        run = studio.wait(run_id, timeout=600)
        assert run["status"] == "succeeded", (run, (rdir / f"slurm-{info['job_id']}.out").read_text()[-3000:])
        assert metric_steps(log, run_id) == [1, 2, 3, 4, 5, 6]
        events = [e["message"] for e in log.read_since("events", 0, run_id=run_id)]
        assert any(f"submitted as Slurm job {info['job_id']}" in m for m in events)
        assert any("restart 1" in m and "journal rows replayed" in m for m in events), events
        ck = log.find_checkpoint(run_id, "mtl")
        assert ck and Path(ck["path"]).is_dir() and str(rdir.resolve()) in ck["path"]
    assert slurm.job_info(rdir)["node"]
    # no compute-node process ever opened the app's log: only the journal crossed over
    assert (rdir / "journal.jsonl").stat().st_size > 0


def test_timeout_resubmits_and_cancel_scancels(studio, cluster):
    cfg = _slurm_config("slurm-timeout", max_steps=200, time_limit="1")
    run_id = studio.launch(cfg)
    rdir = studio.run_dir(run_id)
    with studio.open_log() as log:
        first = wait_for(lambda: slurm.job_info(rdir).get("job_id"), timeout=60, what="a job")

        def events():
            return [e["message"] for e in log.read_since("events", 0, run_id=run_id)]

        # Slurm kills the job at its 1-minute limit: TIMEOUT -> a new job resumes the run
        wait_for(lambda: any("ended TIMEOUT: resubmitting" in m for m in events()), timeout=240,
                 what="the TIMEOUT")
        second = wait_for(lambda: slurm.job_info(rdir).get("job_id") != first
                          and slurm.job_info(rdir)["job_id"], timeout=30, what="a new job")
        steps_before = metric_steps(log, run_id)
        assert steps_before and steps_before == list(range(1, len(steps_before) + 1))
        wait_for(lambda: slurm.job_state(second)["state"] == "RUNNING"
                 and log.get_run(run_id)["status"] == "running", timeout=120,
                 what="the second job running")
        studio.cancel(run_id)
        run = studio.wait(run_id, timeout=120)
        assert run["status"] == "cancelled", run
        assert any(f"scancel {second}" in m for m in events())
        wait_for(lambda: slurm.job_state(second)["state"] in ("CANCELLED", "COMPLETED"),
                 timeout=60, what="the second job ended")
        steps = metric_steps(log, run_id)
        assert steps == list(range(1, len(steps) + 1))  # nothing lost or doubled across jobs
