"""Slurm's states onto the run's status, and the generated batch script."""
import pytest

from backend import slurm
from backend.config import config_from_dict, load_preset


def _st(state, reason="None", exit_="0:0"):
    return {"state": state, "reason": reason, "node": "n1", "exit": exit_}


@pytest.mark.parametrize("state, run_status, cancelled, attempt, want", [
    ("TIMEOUT", "queued", False, 1, ("requeue", "queued")),
    ("PREEMPTED", "running", False, 3, ("requeue", "queued")),
    ("TIMEOUT", "cancelled", False, 1, ("requeue", "queued")),  # Slurm's SIGTERM is no cancel
    ("TIMEOUT", "running", False, 4, ("end", "died")),  # requeues used up
    ("TIMEOUT", "running", True, 1, ("end", "cancelled")),
    ("OUT_OF_MEMORY", "running", False, 1, ("end", "died")),
    ("NODE_FAIL", "running", False, 1, ("end", "died")),
    ("FAILED", "running", False, 1, ("end", "died")),
    ("CANCELLED", "running", True, 1, ("end", "cancelled")),
    ("CANCELLED", "running", False, 1, ("end", "died")),
    ("COMPLETED", "succeeded", False, 1, ("reported", "succeeded")),
    ("COMPLETED", "running", False, 1, ("end", "died")),
])
def test_outcome(state, run_status, cancelled, attempt, want):
    action, status, message = slurm.outcome(_st(state, "NodeDown" if state == "NODE_FAIL" else "None"),
                                            "17", run_status, cancelled, attempt, 3)
    assert (action, status) == want
    if action == "end":
        assert "17" in message and (state in message or "cancelled" in message)
    if state == "NODE_FAIL":
        assert "NodeDown" in message


def test_sbatch_script_carries_the_slurm_fields(tmp_path):
    data = load_preset("mtl_demo").to_dict()
    data["compute"] = {"executor": "slurm", "processes": 2, "gpus_per_process": 1, "slurm": {
        "partition": "gpu", "account": "lab", "time_limit": "2:00:00", "mem": "32G",
        "extra_sbatch": ["--qos=high"], "setup": "module load cuda/12.4"}}
    cfg = config_from_dict(data)
    text = slurm.sbatch_script(cfg, "run-1", tmp_path / "home", tmp_path / "run")
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --time=2:00:00",
                 "#SBATCH --mem=32G", "#SBATCH --gres=gpu:2", "#SBATCH --qos=high",
                 "#SBATCH --requeue", "module load cuda/12.4"):
        assert line in text.splitlines(), line
    assert text.splitlines()[-1].endswith("-m backend.slurm job --home " + str(tmp_path / "home") + " run-1")
    assert text.index("module load") < text.index("exec ")
