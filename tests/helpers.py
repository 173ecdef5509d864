"""Shared helpers for tests that start real runs on the embedded model."""
from __future__ import annotations

import time

from backend.config import load_preset
from backend.runlog import RunLog


def tiny_config(name: str = "tiny", *, max_steps: int = 4, save_steps: int = 2, preset: str = "mtl_demo",
                budget: int = 4):
    """The MTL demo shrunk to a few steps on short examples (seconds per step on 2 cores)."""
    cfg = load_preset(preset)
    cfg.name = name
    for d in cfg.data:
        d.budget = budget
    train = cfg.stages[0]
    train.max_steps = max_steps
    train.save_steps = save_steps
    train.eval_steps = 2
    train.batch_size = 2
    train.max_length = 192
    train.probe_size = 2
    train.probe_max_new_tokens = 8
    cfg.stages = [train]
    return cfg


def wait_for(predicate, timeout: float = 300.0, poll: float = 0.5, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def metric_steps(log: RunLog, run_id: str, name: str = "loss") -> list[int]:
    return [r["step"] for r in log.query(
        "SELECT step FROM metrics WHERE run_id=? AND name=? ORDER BY step", (run_id, name))]
