"""What a stage gets from the worker: the run, its config, the run log, and stop requests."""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import RunConfig
from ..runlog import RunLog


class StopRequested(Exception):
    """Raised at a step boundary after a cancel request, once the stage saved what it had."""


@dataclass
class StageContext:
    run_id: str
    home: Path
    run_dir: Path
    cfg: RunConfig
    log: RunLog
    stop_event: threading.Event = field(default_factory=threading.Event)
    _last_progress: float = 0.0

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def check_stop(self) -> None:
        if self.stop_event.is_set():
            raise StopRequested("cancelled by the user")

    def stage_dir(self, idx: int) -> Path:
        st = self.cfg.stages[idx]
        path = self.run_dir / f"{idx:02d}-{st.name}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def progress(self, idx: int, done: int, total: int | None = None, message: str | None = None,
                 *, force: bool = False) -> None:
        """Progress rows are cheap but not free: at most two a second unless forced."""
        now = time.time()
        if force or now - self._last_progress >= 0.5:
            self._last_progress = now
            self.log.stage_progress(self.run_id, idx, done, total, message)

    def event(self, idx: int | None, message: str, level: str = "info", details: Any = None) -> None:
        self.log.event(self.run_id, message, level=level, stage_idx=idx, details=details)

    def seed_for(self, idx: int) -> int:
        return self.cfg.seed * 1000 + idx

    def device(self) -> str:
        from ..models import pick_device

        return pick_device(self.cfg.model.device)

    def model_ref_for(self, idx: int, ref: str) -> str:
        """The model a stage starts from: the base, or the final checkpoint of a train stage."""
        if ref.startswith("run:"):
            return ref
        j = self.cfg.resolve_ref(idx, ref, "train")
        if j is None:
            if ref not in ("base", "previous"):
                raise ValueError(f"stage {idx}: {ref!r} is not an earlier train stage")
            return self.cfg.model.base
        tag = self.cfg.stages[j].name
        if self.log.find_checkpoint(self.run_id, tag) is None:
            raise RuntimeError(f"stage {idx}: train stage {tag!r} has no final checkpoint")
        return f"run:{self.run_id}:{tag}"

    def load_model(self, ref: str, *, for_training: bool = False):
        from ..models import load_model, resolve_model

        resolved = resolve_model(ref, allow_unsafe_weights=self.cfg.model.allow_unsafe_weights,
                                 trust_remote_code=self.cfg.model.trust_remote_code,
                                 revision=self.cfg.model.revision,
                                 checkpoint_lookup=self.log.find_checkpoint, fetch=True)
        return load_model(resolved, device=self.device(), dtype=self.cfg.model.dtype,
                          trust_remote_code=self.cfg.model.trust_remote_code,
                          for_training=for_training)

    def base_ref_of(self, ref: str) -> str:
        """The underlying base model of a ref (adapters are stored against their base)."""
        while ref.startswith("run:"):
            _, run_id, *tag = ref.split(":", 2)
            ck = self.log.find_checkpoint(run_id, tag[0] if tag else None)
            if ck is None or ck["kind"] != "adapter" or not ck["base"]:
                return ref
            ref = ck["base"]
        return ref


FAULT_ENV = "RESET_STUDIO_FAULT"


def inject_fault(point: str, step: int) -> None:
    """Test hook for the fault suite: RESET_STUDIO_FAULT="train_step=3:oom" raises at that point.

    Kinds: ``oom`` (torch.OutOfMemoryError), ``error`` (RuntimeError), ``kill`` (SIGKILL self),
    ``term`` (SIGTERM self: a stop request, as the launcher's cancel sends).
    Unset in normal use; costs one dict lookup.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    for item in spec.split(","):
        where, _, kind = item.partition(":")
        name, _, at = where.partition("=")
        if name != point or int(at or -1) != step:
            continue
        if kind in ("kill", "term"):
            import signal
            os.kill(os.getpid(), signal.SIGKILL if kind == "kill" else signal.SIGTERM)
            return
        if kind == "oom":
            import torch
            raise torch.OutOfMemoryError(f"CUDA out of memory (injected at {point} {step})")
        raise RuntimeError(f"injected fault at {point} {step}")
