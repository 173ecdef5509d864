"""The app as a real X11 window: Xvfb, the xcb platform plugin, real mouse and key events.

Every other GUI test runs offscreen and calls Qt directly. This one starts Xvfb on a free display,
runs ``python -m reset_gui.app`` as a subprocess on it, and drives it only through the X server:
xdotool clicks "Load TOML…", types a tiny plan's path into the file dialog, clicks the toolbar's
Launch, and, once the run log has the run running, takes a screenshot of the root window
(ImageMagick's ``import``), clicks Cancel and closes the window with WM_DELETE_WINDOW, as a window
manager would. Debian's xvfb, xdotool and imagemagick are installed by ``.ci/run``; without them
the test fails with the reason (it never skips).

Positions are offsets from the window's corner: the toolbar's actions (top left) and "Load TOML…"
(the right end of the Setup tab's top row) at the window's default size, which fits the screen
(no window manager moves or resizes it).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend.runlog import RunLog
from backend.vocab import FINAL_STATUSES, Status

pytestmark = pytest.mark.slow  # starts a worker that loads the embedded model

ROOT = Path(__file__).resolve().parent.parent
SCREEN = (1600, 1000)
LAUNCH = (40, 15)          # toolbar, from the window's top-left corner
CANCEL = (125, 15)
LOAD_FROM_RIGHT = (57, 128)  # "Load TOML…": from the window's right edge, from its top

TINY = """\
extends = "reset_quick"
name = "xvfb-tiny"
# one short train stage: enough to be running when the test looks, cancelled right after
stages = [{ type = "train", name = "mtl", max_steps = 20, max_examples = 8, eval_steps = 100, save_steps = 100 }]
"""


def _need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found: install Debian's xvfb, xdotool and "
                    "imagemagick (.ci/run does this as root)")


def _wait(what: str, cond, timeout: float, app: subprocess.Popen | None = None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        if app is not None and app.poll() is not None:
            pytest.fail(f"the app exited ({app.returncode}) while waiting for {what}:\n"
                        + _output(app))
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}"
                + (f"\napp output:\n{_output(app)}" if app is not None else ""))


def _output(app: subprocess.Popen) -> str:
    log = getattr(app, "log_path", None)  # the app's stdout and stderr
    return log.read_text(errors="replace")[-3000:] if log and log.exists() else ""


@pytest.fixture
def xdisplay():
    """A fresh Xvfb on a display it picks itself (-displayfd); yields ':N'."""
    _need("Xvfb", "xdotool", "import")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0",
                             f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
                            pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    os.close(write)
    try:
        with os.fdopen(read) as f:
            number = f.readline().strip()  # written once the server accepts connections
        if not number:
            proc.kill()
            pytest.fail(f"Xvfb could not start: {proc.communicate(timeout=10)[1][-2000:]}")
        display = f":{number}"
        env = {**os.environ, "DISPLAY": display}
        for _ in range(50):  # it said it is ready; check a client really gets in
            probe = subprocess.run(["xdotool", "getdisplaygeometry"], env=env,
                                   capture_output=True, text=True, timeout=20)
            if probe.returncode == 0 or proc.poll() is not None:
                break
            time.sleep(0.1)
        if probe.returncode != 0:
            proc.kill()
            pytest.fail(f"Xvfb on {display} does not accept clients ({probe.stderr.strip()}): "
                        f"{proc.communicate(timeout=10)[1][-2000:]}")
        yield display
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


class _XDo:
    def __init__(self, display: str):
        self.env = {**os.environ, "DISPLAY": display}

    def __call__(self, *args: str, timeout: float = 20) -> str:
        out = subprocess.run(["xdotool", *args], env=self.env, capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode != 0 and args[0] != "search":  # search: no match is exit status 1
            raise AssertionError(f"xdotool {' '.join(args)}: {out.stderr.strip()}")
        return out.stdout.strip()

    def window(self, title: str) -> int | None:
        found = self("search", "--onlyvisible", "--name", f"^{title}$").split()
        return int(found[-1]) if found else None

    def size(self, window: int) -> tuple[int, int]:
        line = self("getwindowgeometry", str(window)).splitlines()[-1]  # "  Geometry: WxH"
        w, h = line.split(":")[1].strip().split("x")
        return int(w), int(h)

    def click(self, window: int, x: int, y: int) -> None:
        self("mousemove", "--window", str(window), str(x), str(y))
        time.sleep(0.2)  # let Qt see the pointer arrive before the press
        self("click", "1")


def _close_window(display: str, window: int) -> None:
    """Send WM_DELETE_WINDOW, what a window manager sends when its close button is pressed."""
    x11 = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                    ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                    ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long,
                               ctypes.POINTER(XEvent)]
    dpy = x11.XOpenDisplay(display.encode())
    assert dpy, f"cannot open X display {display}"
    try:
        ev = XEvent()
        ev.xclient.type = 33  # ClientMessage
        ev.xclient.window = window
        ev.xclient.message_type = x11.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        ev.xclient.format = 32
        ev.xclient.data[0] = x11.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        assert x11.XSendEvent(dpy, window, 0, 0, ctypes.byref(ev))
        x11.XFlush(ctypes.c_void_p(dpy))
    finally:
        x11.XCloseDisplay(ctypes.c_void_p(dpy))


def _runs(home: Path) -> list[dict]:
    path = home / "runlog.db"
    if not path.exists():
        return []
    with RunLog(path, readonly=True) as log:
        return log.list_runs()


def _screen_colours(png: Path) -> int:
    out = subprocess.run(["identify", "-format", "%k", str(png)], capture_output=True,
                         text=True, check=True, timeout=60)
    return int(out.stdout.strip())


def test_launch_and_cancel_in_a_real_x11_window(xdisplay, tmp_path):
    xdo = _XDo(xdisplay)
    home = tmp_path / "home"
    plan = tmp_path / "tiny.toml"
    plan.write_text(TINY, encoding="utf-8")
    env = {**os.environ, "DISPLAY": xdisplay, "QT_QPA_PLATFORM": "xcb",
           "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    log_path = tmp_path / "app.log"
    with open(log_path, "w") as out:
        app = subprocess.Popen([sys.executable, "-m", "reset_gui.app", "--home", str(home)],
                               cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    app.log_path = log_path  # type: ignore[attr-defined]
    try:
        win = _wait("the main window", lambda: xdo.window("ReSet Studio"), 60, app)
        width, height = xdo.size(win)
        assert width <= SCREEN[0] and height <= SCREEN[1], "the window must fit the screen"

        # Load TOML… -> the file dialog -> type the tiny plan's path, Return
        xdo.click(win, width - LOAD_FROM_RIGHT[0], LOAD_FROM_RIGHT[1])
        dialog = _wait("the Load TOML dialog", lambda: xdo.window("Load run config"), 20, app)
        xdo("windowfocus", "--sync", str(dialog))
        xdo("type", "--delay", "15", str(plan))
        xdo("key", "Return")
        _wait("the dialog to close", lambda: xdo.window("Load run config") is None, 20, app)

        # toolbar Launch -> the run log has the tiny plan's run, running (or beyond)
        xdo.click(win, *LAUNCH)
        run = _wait("the run to be running", lambda: next(
            (r for r in _runs(home) if r["status"] not in (Status.QUEUED,)), None), 90, app)
        assert run["name"] == "xvfb-tiny", "the loaded plan, not the default preset, ran"
        assert run["status"] == Status.RUNNING, run

        time.sleep(1.5)  # the poller's next tick: the runs list and Live tab show the run
        shot = tmp_path / "screen.png"
        subprocess.run(["import", "-window", "root", str(shot)], env=xdo.env, check=True,
                       timeout=60)
        colours = _screen_colours(shot)
        assert colours > 50, f"the screenshot looks blank ({colours} colours): {shot}"
        print(f"screenshot: {shot} ({colours} colours)")

        # toolbar Cancel (the new run is selected) -> cancelled
        xdo.click(win, *CANCEL)
        done = _wait("the run to be cancelled", lambda: next(
            (r for r in _runs(home) if r["status"] in FINAL_STATUSES), None), 60, app)
        assert done["status"] == Status.CANCELLED, done

        _close_window(xdisplay, win)
        assert app.wait(30) == 0, _output(app)
    except BaseException:
        if xdo.window("ReSet Studio"):  # what the screen showed when it went wrong
            subprocess.run(["import", "-window", "root", str(tmp_path / "failure.png")],
                           env=xdo.env, timeout=60)
            print(f"screen at the failure: {tmp_path / 'failure.png'}")
        raise
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
        for r in _runs(home):  # never leave a worker behind, whatever failed above
            if r["status"] not in FINAL_STATUSES:
                from backend.launcher import Studio

                Studio(home).cancel(r["id"])
