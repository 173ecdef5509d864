"""Runs as real background processes on the embedded model: launch, kill, resume, cancel, fail."""
import os
import signal

import pytest

from backend import launcher
from tests.helpers import metric_steps, tiny_config, wait_for

pytestmark = pytest.mark.slow


def _log(studio):
    return studio.open_log()


def test_refused_before_any_process(studio):
    cfg = tiny_config()
    cfg.model.base = str(studio.home / "does-not-exist")
    with pytest.raises(launcher.LaunchError, match="does not exist"):
        studio.launch(cfg)
    with studio.open_log() as log:
        assert log.list_runs() == []
    assert not any(studio.runs_dir.iterdir())


def test_mtl_run_trains_and_adapter_generates(studio):
    run_id = studio.launch(tiny_config("e2e", max_steps=4))
    run = studio.wait(run_id, timeout=600)
    assert run["status"] == "succeeded", run
    with studio.open_log() as log:
        assert metric_steps(log, run_id) == [1, 2, 3, 4]
        assert metric_steps(log, run_id, "gen_length")[:1] == [0]
        names = {r["name"] for r in log.query("SELECT DISTINCT name FROM metrics WHERE run_id=?", (run_id,))}
        assert {"loss", "learning_rate", "grad_norm", "tokens_per_s", "padding_fraction", "epoch"} <= names
        final = log.find_checkpoint(run_id, "mtl")
        assert final["kind"] == "adapter" and final["base"] == "embedded"
        assert [c["tag"] for c in log.checkpoints(run_id)] == ["mtl@2", "mtl@4", "mtl"]
    from peft import PeftModel
    from backend.generation import generate_batch
    from backend.models import load_model

    base, tok = load_model("embedded")
    model = PeftModel.from_pretrained(base, final["path"])
    out = generate_batch(model, tok, [[{"role": "user", "content": "Name a colour."}]], max_new_tokens=8)
    assert out[0].n_tokens > 0 and out[0].text


def test_probe_budget_thins_the_curve_instead_of_slowing_training(studio):
    """probe_budget = 0: only step 0 and the last step probe; the due ones between are skipped and
    the run says so. (The default, 4 %, lets a probe run once training time has caught up.)"""
    cfg = tiny_config("probe-budget", max_steps=6, save_steps=100)
    cfg.stages[0].probe_budget = 0.0
    run_id = studio.launch(cfg)
    assert studio.wait(run_id, timeout=600)["status"] == "succeeded"
    with studio.open_log() as log:
        assert metric_steps(log, run_id, "gen_length") == [0, 6]
        events = [e["message"] for e in log.read_since("events", 0, run_id=run_id)]
    assert any("probes kept to 0% of the stage's time (probe_budget): 0 ran a few steps late, "
               "2 skipped" in m for m in events), events


def test_sigkill_marks_died_and_resume_completes(studio):
    run_id = studio.launch(tiny_config("killed", max_steps=6, save_steps=2))
    with studio.open_log() as log:
        wait_for(lambda: log.find_checkpoint(run_id, "mtl@2") and 3 in metric_steps(log, run_id),
                 timeout=600, what="step 3")
        os.kill(studio.worker_pid(run_id), signal.SIGKILL)
        run = studio.wait(run_id, timeout=60)
        assert run["status"] == "died"
        assert run["signal"] == signal.SIGKILL and "SIGKILL" in run["error"]
        assert run["stderr_tail"] is not None
        before = log.count("metrics", run_id=run_id)
        assert before > 0
    studio.resume(run_id)
    run = studio.wait(run_id, timeout=600)
    assert run["status"] == "succeeded", run
    with studio.open_log() as log:
        assert metric_steps(log, run_id) == [1, 2, 3, 4, 5, 6]  # continuous, none duplicated
        # the snapshots pending at the checkpoint were written beside it: none lost, none twice
        assert metric_steps(log, run_id, "gen_length") == [0, 2, 4, 6]
        assert not list(studio.home.rglob("probe-snapshots-*"))  # cleaned up
        assert log.count("metrics", run_id=run_id) >= before
        events = [e["message"] for e in log.read_since("events", 0, run_id=run_id)]
        assert any("resuming training from checkpoint-" in m for m in events)


def test_worker_error_is_failed_with_message(studio, monkeypatch):
    monkeypatch.setenv("RESET_STUDIO_FAULT", "train_step=2:oom")
    run_id = studio.launch(tiny_config("oom", max_steps=4))
    run = studio.wait(run_id, timeout=600)
    assert run["status"] == "failed"
    assert "OutOfMemoryError" in run["error"] and "injected" in run["error"]
    assert "Traceback" in run["error_tail"] or "inject_fault" in run["error_tail"]
    with studio.open_log() as log:
        assert metric_steps(log, run_id) == [1]  # step 1 was logged before the failure: kept
        assert log.get_stages(run_id)[0]["status"] == "failed"


def test_cancel_keeps_usable_checkpoint(studio):
    run_id = studio.launch(tiny_config("cancel", max_steps=40, save_steps=100))
    with studio.open_log() as log:
        wait_for(lambda: 2 in metric_steps(log, run_id), timeout=600, what="step 2")
    studio.cancel(run_id)
    run = studio.wait(run_id, timeout=300)
    assert run["status"] == "cancelled"
    with studio.open_log() as log:
        ck = log.find_checkpoint(run_id, "mtl")
        assert ck is not None and ck["step"] < 40
        assert os.path.exists(os.path.join(ck["path"], "adapter_model.safetensors"))


def test_queue_and_two_concurrent_writers(studio, monkeypatch):
    monkeypatch.setenv("RESET_STUDIO_MAX_CONCURRENT", "2")
    ids = [studio.launch(tiny_config(f"c{i}", max_steps=3)) for i in range(3)]
    with studio.open_log() as log:
        statuses = [log.get_run(i)["status"] for i in ids]
    assert statuses == ["running", "running", "queued"]
    for run_id in ids:
        assert studio.wait(run_id, timeout=900)["status"] == "succeeded"
    with studio.open_log() as log:
        for run_id in ids:
            assert metric_steps(log, run_id) == [1, 2, 3]
    for run_id in ids:
        err = (studio.run_dir(run_id) / "worker.stderr.log").read_text()
        assert "database is locked" not in err


def test_a_continued_stage_takes_step_0_from_its_init_stages_last_probe(studio):
    """A stage that starts from an earlier stage's final checkpoint, probing the same prompts the
    same way, logs that stage's last probe as its step 0 (same weights, greedy) instead of
    generating again; with other probe settings it probes itself."""
    cfg = tiny_config("inherit-probe", max_steps=2, save_steps=100)
    mtl = cfg.stages[0]
    same = mtl.model_copy(update={"name": "more", "init": "mtl"})
    other = mtl.model_copy(update={"name": "longer", "init": "mtl", "probe_max_new_tokens": 12})
    cfg.stages = [mtl, same, other]
    run_id = studio.launch(cfg)
    assert studio.wait(run_id, timeout=600)["status"] == "succeeded"
    with studio.open_log() as log:
        lengths = {(r["stage_idx"], r["step"]): r["value"] for r in log.query(
            "SELECT stage_idx, step, value FROM metrics WHERE run_id=? AND name='gen_length'",
            (run_id,))}
        events = [e["message"] for e in log.read_since("events", 0, run_id=run_id)]
    assert lengths[(1, 0)] == lengths[(0, 2)]
    assert {(0, 0), (0, 2), (1, 0), (1, 2), (2, 0), (2, 2)} <= set(lengths)
    inherited = [m for m in events if "from stage mtl's last probe" in m]
    assert len(inherited) == 1 and f"{lengths[(0, 2)]:.1f}" in inherited[0], events
    # each later train stage began in a fresh image of the same worker process
    pid = studio.worker_pid(run_id)
    fresh = [m for m in events if m.startswith("worker continues in a fresh process")]
    assert len(fresh) == 2 and all(f"pid {pid}," in m for m in fresh), events
    assert not any("already done; skipped" in m for m in events), events


def test_a_stop_signal_during_the_fresh_process_exec_cancels_the_run(studio, monkeypatch):
    """SIGTERM (the launcher's cancel) arriving while the worker re-executes itself before its
    second train stage neither kills it nor is lost: the run ends cancelled, stage 1 untouched."""
    monkeypatch.setenv("RESET_STUDIO_FAULT", "fresh_process=1:term")
    cfg = tiny_config("exec-cancel", max_steps=1, save_steps=100)
    cfg.stages = [cfg.stages[0], cfg.stages[0].model_copy(update={"name": "more", "init": "mtl"})]
    run_id = studio.launch(cfg)
    run = studio.wait(run_id, timeout=600)
    assert run["status"] == "cancelled", run
    assert run["exit_code"] == 0 and run["signal"] is None, run
    with studio.open_log() as log:
        stages = {s["idx"]: s["status"] for s in log.get_stages(run_id)}
        assert log.find_checkpoint(run_id, "mtl") is not None  # stage 0's work kept
    assert stages == {0: "succeeded"}, stages
