"""One module per stage type; each exposes ``run(ctx, idx, stage)``."""
from __future__ import annotations

import importlib

STAGE_MODULES = {
    "train": "backend.stages.train",
    "sample": "backend.stages.sample",
    "judge": "backend.stages.judge",
    "select": "backend.stages.select",
    "evaluate": "backend.stages.evaluate",
}


def stage_runner(type_: str):
    if type_ not in STAGE_MODULES:
        raise ValueError(f"unknown stage type {type_!r}; use one of {list(STAGE_MODULES)}")
    return importlib.import_module(STAGE_MODULES[type_]).run
