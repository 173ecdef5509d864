"""Where runs, checkpoints and caches live.

Order of precedence: an explicit ``--home DIR`` (passed down as ``home=``), then the
``RESET_STUDIO_HOME`` environment variable, then the per-user data directory.
"""
from __future__ import annotations

import os
from pathlib import Path

import platformdirs

ENV_HOME = "RESET_STUDIO_HOME"
ENV_CACHE = "RESET_STUDIO_CACHE"
REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS = REPO_ROOT / "assets"
PRESETS = ASSETS / "presets"
DEMO_DATA = ASSETS / "demo"


def home_dir(home: str | os.PathLike | None = None) -> Path:
    if home is None:
        home = os.environ.get(ENV_HOME) or platformdirs.user_data_dir("reset-studio", appauthor=False)
    path = Path(home).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def runlog_path(home: str | os.PathLike | None = None) -> Path:
    return home_dir(home) / "runlog.db"


def runs_dir(home: str | os.PathLike | None = None) -> Path:
    path = home_dir(home) / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir(run_id: str, home: str | os.PathLike | None = None) -> Path:
    return runs_dir(home) / run_id


def cache_dir() -> Path:
    """Model caches are shared by every home (converting the embedded GGUF once is enough)."""
    root = os.environ.get(ENV_CACHE) or platformdirs.user_cache_dir("reset-studio", appauthor=False)
    path = Path(root).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
