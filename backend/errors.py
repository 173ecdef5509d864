"""One base for the problems ReSet Studio explains to a person.

Every module's own error (ConfigError, DataError, RunLogError, …) derives from ``StudioError``
and keeps the builtin it had (ValueError or RuntimeError), so older ``except`` clauses still
hold. Its message says what is wrong and where; the CLI prints it and exits 2, the GUI shows it.
"""
from __future__ import annotations


class StudioError(Exception):
    """A problem with the user's input, files, run log or environment, stated for a person."""
