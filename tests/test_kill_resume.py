"""Fault suite: SIGKILL the worker at random moments across all stages, resume each time, and
check the final run log equals an uninterrupted run with the same seed, row for row in content.

The CI version kills a few times; `python scripts/soak_kill_resume.py --kills 20` is the long one.
"""
import os
import random
import signal
import time

import pytest

from backend.launcher import Studio
from tests.helpers import run_content, tiny_reset_config

pytestmark = pytest.mark.slow


def kill_resume_until_done(run_id, home, kills: int, rng: random.Random, log_fn=print,
                           delay: tuple[float, float] = (4.0, 25.0)) -> list[str]:
    """Kill the worker `kills` times at random moments, resuming after each; returns kill notes."""
    notes, studio = [], Studio(home)
    with studio.open_log() as log:
        for k in range(kills):
            deadline = time.time() + rng.uniform(*delay)
            while time.time() < deadline and log.get_run(run_id)["status"] == "running":
                time.sleep(0.2)
            run = log.get_run(run_id)
            if run["status"] != "running":
                break
            pid = studio.worker_pid(run_id)
            stage = next((s for s in log.get_stages(run_id) if s["idx"] == run["current_stage"]), None)
            where = f"{stage['name']} {stage['done']}/{stage['total']}" if stage else "start-up"
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            final = studio.wait(run_id, timeout=120)
            notes.append(f"kill {k + 1} during {where}: {final['status']}")
            log_fn(notes[-1])
            if final["status"] == "succeeded":
                break
            assert final["status"] == "died", final
            assert final["signal"] == signal.SIGKILL
            studio.resume(run_id)
    return notes


def test_killed_run_equals_clean_run(tmp_path, monkeypatch):
    clean_home, killed_home = tmp_path / "clean", tmp_path / "killed"
    monkeypatch.setenv("RESET_STUDIO_HOME", str(clean_home))
    clean_studio, killed_studio = Studio(clean_home), Studio(killed_home)
    clean = clean_studio.launch(tiny_reset_config("clean"))
    assert clean_studio.wait(clean, timeout=1500)["status"] == "succeeded"

    rng = random.Random(int(os.environ.get("KILL_SEED", "1234")))
    killed = killed_studio.launch(tiny_reset_config("killed"))
    notes = kill_resume_until_done(killed, killed_home, kills=int(os.environ.get("KILLS", "3")), rng=rng)
    final = killed_studio.wait(killed, timeout=1500)
    assert final["status"] == "succeeded", (final, notes)
    assert any("died" in n for n in notes), notes

    with clean_studio.open_log() as a, killed_studio.open_log() as b:
        want, got = run_content(a, clean), run_content(b, killed)
    for table in want:
        assert got[table] == want[table], f"{table} differs after kills: {notes}"
    assert want["samples"] and want["evals"] and want["selection"]
