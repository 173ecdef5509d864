"""The Setup tab, in parts:

- ``draft``: the config being edited, without Qt; its problems are (location, message)
- ``forms``: a form generated from a pydantic model's fields
- ``checkpoint``, ``mixture``, ``judges``, ``stages``: one editor per config section
- ``tab``: ``SetupTab``, which lays the editors out, validates on every edit and launches

Nothing is imported here, so ``reset_gui.setup.draft`` loads without Qt.
"""
