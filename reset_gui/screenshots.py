"""Render every main screen of a run log to PNG: ``reset-gui screenshots --out DIR [--home DIR]
[--run RUN]``. Works headless (``QT_QPA_PLATFORM=offscreen`` is set when there is no display)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

from backend.vocab import Status

WINDOW_SIZE = (1400, 900)


def _pump(app, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def _wait_caught_up(app, win, timeout_s: float) -> None:
    state = {"n": 0}
    win.poller.poller.caught_up.connect(lambda: state.__setitem__("n", state["n"] + 1))
    end = time.monotonic() + timeout_s
    while state["n"] < 2 and time.monotonic() < end:  # two ticks: runs, stages and rows all in
        app.processEvents()
        time.sleep(0.02)


def _pick(runs: list[dict[str, Any]], ref: str | None) -> dict[str, Any] | None:
    if ref:
        for r in runs:
            if r["id"] == ref or r.get("name") == ref:
                return r
        hits = [r for r in runs if r["id"].startswith(ref)]
        if len(hits) == 1:
            return hits[0]
        raise SystemExit(f"reset-gui screenshots: no run matching {ref!r}")
    return max(runs, key=lambda r: r.get("created_at") or 0) if runs else None


def render(out_dir: str | os.PathLike, home: str | os.PathLike | None = None,
           run: str | None = None, *, settle_s: float = 0.8, timeout_s: float = 30.0) -> list[Path]:
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from .app import make_app
    from .main_window import MainWindow

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app = make_app()
    win = MainWindow(home)
    win.resize(*WINDOW_SIZE)
    win.show()
    written: list[Path] = []
    try:
        _wait_caught_up(app, win, timeout_s)
        _pump(app, settle_s)
        chosen = _pick(win.runs, run)

        def shot(name: str, widget=None) -> None:
            _pump(app, settle_s)
            end = time.monotonic() + 15  # background work (data preview) finishes first
            while win.bg.pending and time.monotonic() < end:
                _pump(app, 0.05)
            path = out / name
            (widget or win).grab().save(str(path))
            written.append(path)

        if chosen:
            win.select_run(chosen["id"])
        win.tabs.setCurrentWidget(win.setup)
        shot("01-setup.png")
        for i, title in enumerate(("Live", "Samples", "Compare"), start=2):
            win.show_tab(title)
            shot(f"0{i}-{title.lower()}.png")
        # runs list + events pane, with a died (else failed) run selected
        bad = [r for r in win.runs if r.get("status") == Status.DIED] or \
              [r for r in win.runs if r.get("status") == Status.FAILED]
        target = chosen if chosen and chosen.get("status") in (Status.DIED, Status.FAILED) else \
            (max(bad, key=lambda r: r.get("created_at") or 0) if bad else chosen)
        if target:
            win.select_run(target["id"])
        win.show_tab("Live")
        shot("05-runs-events.png")
        shot("06-events-pane.png", win.events)
        shot("07-runs-list.png", win.runs_panel)
    finally:
        win.close()
        win.shutdown()
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="reset-gui screenshots",
                                 description="Render every main screen of a run log to PNG files.")
    ap.add_argument("--out", required=True, help="folder for the PNG files")
    ap.add_argument("--home", default=None, help="ReSet Studio home (default: $RESET_STUDIO_HOME)")
    ap.add_argument("--run", default=None, help="run id, id prefix or name to show (default: newest)")
    args = ap.parse_args(sys.argv[1:] if argv is None else argv)
    if args.home:
        os.environ["RESET_STUDIO_HOME"] = str(Path(args.home).expanduser().resolve())
    for path in render(args.out, args.home, args.run):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
