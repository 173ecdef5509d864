import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh ReSet Studio home (run log + runs) for one test."""
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("RESET_STUDIO_HOME", str(h))
    return h


@pytest.fixture
def studio(home):
    """The launcher's Studio for ``home``: its run log, run folders and runs."""
    from backend.launcher import Studio

    return Studio(home)


@pytest.fixture(autouse=True)
def _collect_garbage_on_the_main_thread():
    """Collect each test's dead Qt widgets here, on the main thread. Left to chance, the garbage
    collector may run on a worker thread (a query thread of a later test); shiboken then defers
    the C++ deletion to the main thread, which can deadlock against that worker's signal emit."""
    yield
    import gc

    gc.collect()
