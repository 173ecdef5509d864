"""The window against real runs: launch from Setup, points arrive live; a killed worker shows as
died with its stderr tail; the app killed and reopened finds the run still running and updating."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO
from tests.helpers import tiny_config, tiny_eval_config, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
def window(qtbot, home):
    from reset_gui.main_window import MainWindow

    w = MainWindow(home, poll_interval_ms=300)
    qtbot.addWidget(w)
    w.resize(1400, 900)
    w.show()
    yield w
    w.shutdown()


class StallMeter:
    """Largest gap between ticks of a 10 ms timer on the UI thread: how long the window froze."""

    def __init__(self):
        import time

        from PySide6.QtCore import QTimer

        self.clock = time.perf_counter
        self.last = self.clock()
        self.gaps = []
        self.timer = QTimer()
        self.timer.setInterval(10)
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    def _tick(self):
        now = self.clock()
        self.gaps.append((now - self.last - 0.010, now))
        self.last = now

    def worst_ms(self, since: float = 0.0) -> float:
        return 1000 * max([g for g, t in self.gaps if t > since] or [0.0])


def test_launch_from_setup_points_appear_in_live(window, qtbot, home):
    window.setup.set_config(tiny_eval_config("gui-e2e"))
    assert window.setup.validate()
    window.show_tab("Live")
    meter = StallMeter()
    launched = {}
    window.setup.launched.connect(lambda _rid: launched.setdefault("t", meter.clock()))
    window.launch()
    qtbot.waitUntil(lambda: len(window.runs) == 1, timeout=60_000)
    run_id = window.runs[0]["id"]
    qtbot.waitUntil(lambda: len(window.live.tradeoff.data) >= 1, timeout=900_000)
    points = window.live.tradeoff.data.all_points()
    assert points[0].run_id == run_id and points[0].tag == "mtl"
    assert 0.0 <= points[0].x <= 1.0 and 0.0 <= points[0].y <= 1.0
    qtbot.waitUntil(lambda: window.runs_panel.selected_run() is not None
                    and window.runs_panel.selected_run()["status"] == "succeeded", timeout=120_000)
    window.grab().save(str(home / "e2e-live.png"))
    # from one second after the launch call returned (its checks parse the data files on a
    # worker thread, which can hold the GIL for a moment) to the end of the run
    worst = meter.worst_ms(since=launched["t"] + 1.0)
    print(f"worst UI-thread stall while the run wrote: {worst:.0f} ms "
          f"(whole test incl. launch: {meter.worst_ms():.0f} ms) over {len(meter.gaps)} ticks")
    assert worst < 1000  # the goal is < 50 ms; a loaded CI machine gets slack, the print has the number


def test_killed_worker_shows_died_with_stderr(window, qtbot, studio):
    run_id = studio.launch(tiny_config("gui-kill", max_steps=30))
    with studio.open_log() as log:
        wait_for(lambda: log.count("metrics", run_id=run_id) > 0, timeout=600, what="first metric")
    print("worker noise to stderr is captured", file=sys.stderr)
    os.kill(studio.worker_pid(run_id), signal.SIGKILL)
    window.runs_panel.select_run(run_id)
    qtbot.waitUntil(lambda: any(r["id"] == run_id and r["status"] == "died" for r in window.runs),
                    timeout=120_000)
    window.runs_panel.select_run(run_id)
    qtbot.waitUntil(lambda: "SIGKILL" in window.events.problem_text(), timeout=30_000)
    assert "stderr" in window.events.problem_text().lower()


def test_app_killed_and_reopened_keeps_updating(qtbot, home, studio):
    """The GUI process dies while a run trains; a new window finds the run and follows it."""
    script = textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO)!r})
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        from PySide6.QtWidgets import QApplication
        from reset_gui.main_window import MainWindow
        from tests.helpers import tiny_config
        app = QApplication([])
        w = MainWindow({str(home)!r})
        w.setup.set_config(tiny_config("outlives-gui", max_steps=12, save_steps=50))
        w.launch()
        deadline = time.time() + 120
        while not w.runs and time.time() < deadline:
            app.processEvents(); time.sleep(0.05)
        print("LAUNCHED", w.runs[0]["id"], flush=True)
        while True:
            app.processEvents(); time.sleep(0.05)
    """)
    gui = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO)
    line = gui.stdout.readline()
    assert line.startswith("LAUNCHED"), line
    run_id = line.split()[1]
    gui.send_signal(signal.SIGKILL)
    gui.wait(30)
    with studio.open_log() as log:
        assert log.get_run(run_id)["status"] == "running"  # the run outlived the window

    from reset_gui.main_window import MainWindow

    w = MainWindow(home, poll_interval_ms=300)
    qtbot.addWidget(w)
    try:
        qtbot.waitUntil(lambda: any(r["id"] == run_id and r["status"] == "running" for r in w.runs),
                        timeout=30_000)
        with studio.open_log() as log:
            wait_for(lambda: log.count("metrics", run_id=run_id, name="loss") >= 1, timeout=600)
            seen = log.count("metrics", run_id=run_id)
        # the reopened window keeps receiving rows written after it opened
        qtbot.waitUntil(lambda: w.poller.poller.last_ids.get("metrics", 0) > 0, timeout=60_000)
        first = w.poller.poller.last_ids["metrics"]
        qtbot.waitUntil(lambda: w.poller.poller.last_ids["metrics"] > first, timeout=600_000)
        assert seen >= 1
    finally:
        studio.cancel(run_id)
        w.shutdown()
    assert studio.wait(run_id, timeout=300)["status"] in ("cancelled", "succeeded")
