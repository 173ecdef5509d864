"""ReSet Studio desktop GUI (PySide6 + pyqtgraph).

The GUI only reads the run log and calls backend.launcher; it never imports torch, transformers
or peft (tests/test_gui_shell.py checks this in a subprocess).
"""

__all__ = ["APP_NAME"]

APP_NAME = "ReSet Studio"  # also in reset_gui.style
