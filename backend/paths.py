"""Where the repository's assets and the model cache live (a home's folders: launcher.Studio)."""
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


def cache_dir() -> Path:
    """Model caches are shared by every home (converting the embedded GGUF once is enough)."""
    root = os.environ.get(ENV_CACHE) or platformdirs.user_cache_dir("reset-studio", appauthor=False)
    path = Path(root).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path
