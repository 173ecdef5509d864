"""Data-parallel training under torchrun (gloo on CPU) on a tiny plan: rank 0 alone writes the
run log, a killed rank fails the run naming it, resume (with another process count) completes."""
import os
import signal

import pytest

from tests.helpers import metric_steps, tiny_config, wait_for

pytestmark = pytest.mark.slow  # 2 training processes + 1 on the embedded model (~3 min on 2 cores)


def _tiny_ddp(processes=2, max_steps=4):
    cfg = tiny_config("ddp", max_steps=max_steps, save_steps=2)
    st = cfg.stages[0]
    st.data, st.max_length, st.batch_size, st.probe_size = ["alpaca_instructions"], 96, 1, 0
    cfg.compute.processes = processes
    return cfg


def test_two_process_training_kill_a_rank_then_resume(studio, monkeypatch):
    # one thread per process: two threads each thrash a busy 2-core machine (minutes per step)
    monkeypatch.setenv("RESET_STUDIO_TORCH_THREADS", "1")
    run_id = studio.launch(_tiny_ddp())
    sdir = studio.run_dir(run_id) / "00-mtl"
    with studio.open_log() as log:
        wait_for(lambda: log.find_checkpoint(run_id, "mtl@2") and 3 in metric_steps(log, run_id),
                 timeout=600, what="step 3 of the 2-process run")
        rank1 = int((sdir / "rank-1.pid").read_text())
        assert rank1 != studio.worker_pid(run_id)
        os.kill(rank1, signal.SIGKILL)
        run = studio.wait(run_id, timeout=120)
        assert run["status"] == "died", run
        assert "rank 1 died" in run["error"] and "SIGKILL" in run["error"], run["error"]
        assert run["signal"] == signal.SIGKILL
        stage = log.get_stages(run_id)[0]
        assert stage["status"] == "failed" and "rank 1" in stage["message"]
        steps = metric_steps(log, run_id)
        assert steps == list(range(1, len(steps) + 1))  # written once (by rank 0), none doubled
        world = log.query("SELECT value FROM metrics WHERE run_id=? AND name='world_size'", (run_id,))
        assert [w["value"] for w in world] == [2.0]
        ev = [e for e in log.read_since("events", 0, run_id=run_id) if "data-parallel" in e["message"]]
        assert '"world_size": 2' in ev[0]["details"] and "gloo" in ev[0]["message"]
        # only rank 0 saves: one optimizer state per checkpoint, per-rank RNG states
        ck = sdir / "checkpoint-2"
        assert (ck / "optimizer.pt").is_file() and (ck / "rng_state_1.pth").is_file()
    # a different process count continues from the same checkpoint
    studio.resume(run_id, processes=1)
    run = studio.wait(run_id, timeout=600)
    assert run["status"] == "succeeded", run
    with studio.open_log() as log:
        assert metric_steps(log, run_id) == [1, 2, 3, 4]
        events = [e["message"] for e in log.read_since("events", 0, run_id=run_id)]
        assert any("resuming training from checkpoint-" in m for m in events)
        assert any("resuming with 1 process" in m for m in events)
        assert log.find_checkpoint(run_id, "mtl")["step"] == 4
        assert 'processes = 1' in log.get_run(run_id)["config_toml"]
