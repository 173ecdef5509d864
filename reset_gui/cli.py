"""Console entry point ``reset-gui``.

* no arguments (or only ``--home DIR``): open the window;
* ``gui [--home DIR]``: open the window explicitly;
* ``screenshots --out DIR [--home DIR] [--run RUN]``: render every main screen to PNG;
* anything else: the headless commands of ``backend.cli`` (run, status, list, cancel, resume,
  logs, judge, export, presets, validate).
"""
from __future__ import annotations

import sys


def _split_home(argv: list[str]) -> tuple[list[str], list[str]]:
    """Leading global ``--home DIR`` / ``--home=DIR`` options, and the rest."""
    head: list[str] = []
    rest = list(argv)
    while rest:
        if rest[0] == "--home" and len(rest) >= 2:
            head += rest[:2]
            rest = rest[2:]
        elif rest[0].startswith("--home="):
            head.append(rest.pop(0))
        else:
            break
    return head, rest


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    home_opts, rest = _split_home(argv)
    if not rest or rest[0] == "gui":
        from .app import main as app_main

        return app_main(home_opts + rest[1:])
    if rest[0] == "screenshots":
        from .screenshots import main as shots_main

        return shots_main(home_opts + rest[1:])
    if rest[0] in ("-h", "--help"):
        print("reset-gui: with no command opens the window.\n"
              "  reset-gui gui [--home DIR]                              open the window\n"
              "  reset-gui screenshots --out DIR [--home DIR] [--run RUN] render every screen to PNG\n")
    from backend.cli import main as backend_main

    return backend_main(argv)


if __name__ == "__main__":
    sys.exit(main())
