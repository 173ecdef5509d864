"""Judge base class and result type."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.records import Record
from backend.vocab import CATEGORIES  # noqa: F401  (re-exported: judges import it from here)


@dataclass
class JudgeResult:
    value: float | None          # in [0, 1]; None = not applicable to this item (or judge failed)
    details: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable "why"


class Judge:
    """One judge. Subclasses set ``name`` and ``category`` and implement ``score_batch``.

    ``settings`` is the whole judges settings dict; a judge reads its own section
    ``settings[self.name]`` (a dict) plus any documented top-level keys.
    """

    name: str = ""
    category: str = ""

    def __init__(self, settings: dict[str, Any] | None = None):
        self.settings: dict[str, Any] = dict(settings or {})

    # own section of the settings
    @property
    def options(self) -> dict[str, Any]:
        opts = self.settings.get(self.name) or {}
        if not isinstance(opts, dict):
            raise TypeError(f"settings[{self.name!r}] must be a dict, got {type(opts).__name__}")
        return opts

    def available(self) -> tuple[bool, str]:
        return True, "ok"

    def applies(self, record: Record) -> bool:
        return True

    def score_batch(self, records: list[Record], responses: list[str]) -> list[JudgeResult]:
        raise NotImplementedError

    def score(self, record: Record, response: str) -> JudgeResult:
        return self.score_batch([record], [response])[0]

    def _check_lengths(self, records: list[Record], responses: list[str]) -> None:
        if len(records) != len(responses):
            raise ValueError(
                f"{self.name}: {len(records)} records but {len(responses)} responses"
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} ({self.category})>"


def clamp01(x: float) -> float:
    x = float(x)
    if x != x:  # NaN
        return 0.0
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x
