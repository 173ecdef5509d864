"""Start the window: ``reset-gui`` (no arguments), ``reset-gui gui [--home DIR]``."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .style import APP_NAME


def make_app(argv: list[str] | None = None):
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0] if sys.argv else "reset-gui", *(argv or [])])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName(APP_NAME)
    app.setOrganizationName("ReSet Studio")
    icon = Path(__file__).resolve().parent.parent / "assets" / "icons" / "reset-studio.svg"
    if icon.exists():
        from PySide6.QtGui import QIcon

        app.setWindowIcon(QIcon(str(icon)))
    return app


def create_window(home: str | os.PathLike | None = None):
    from .main_window import MainWindow

    return MainWindow(home)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="reset-gui gui", description=f"Open the {APP_NAME} window.")
    ap.add_argument("--home", default=None, help="where runs and the run log live "
                    "(default: $RESET_STUDIO_HOME or the per-user data folder)")
    ap.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                    help="close the window after SECONDS (a smoke test for scripts and CI)")
    args, qt_args = ap.parse_known_args(sys.argv[1:] if argv is None else argv)
    if args.home:
        os.environ["RESET_STUDIO_HOME"] = str(Path(args.home).expanduser().resolve())
    app = make_app(qt_args)
    win = create_window(args.home)
    win.show()
    if args.quit_after is not None:
        from PySide6.QtCore import QTimer

        def report_and_quit() -> None:
            print(f"{APP_NAME}: window shown ({win.windowTitle()}, tab {win.current_tab()}, "
                  f"{len(win.runs)} runs, run log {win.runlog_path})", flush=True)
            app.quit()

        QTimer.singleShot(int(args.quit_after * 1000), report_and_quit)
    try:
        return int(app.exec())
    finally:
        win.shutdown()


if __name__ == "__main__":
    sys.exit(main())
