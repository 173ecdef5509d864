"""The config being edited on the Setup tab, without Qt.

The editors write their sections into a ``ConfigDraft``; ``check()`` validates it with pydantic
and with cheap file checks and returns every problem as a ``Problem(location, message)``, so each
editor marks its own fields by location (``("stages", 0, "learning_rate")``), never by parsing text.
Sections the tab has no editor for (``description``, ``tracking``) ride along unchanged.
"""
from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from backend import config as config_mod, presets
from backend.config import ConfigError, Loc, RunConfig
from backend.models import _HUB_ID as HUB_ID  # the loader's rule for "org/name"
from backend.paths import PRESETS, REPO_ROOT


@dataclass(frozen=True)
class Problem:
    loc: Loc
    msg: str

    def line(self, stages: list[dict[str, Any]] = ()) -> str:
        """``stages.0 (mtl).learning_rate: …``: a stage index is shown with the stage's name."""
        parts = [str(p) for p in self.loc]
        if self.loc[:1] == ("stages",) and len(self.loc) > 1 and isinstance(self.loc[1], int) \
                and self.loc[1] < len(stages) and stages[self.loc[1]].get("name"):
            parts[1] += f" ({stages[self.loc[1]]['name']})"
        return f"{'.'.join(parts)}: {self.msg}" if parts else self.msg


def within(problems: list[Problem], section: str) -> list[Loc]:
    """A section's problem locations, relative to it: ("data", 2, "weight") → (2, "weight")."""
    return [p.loc[1:] for p in problems if p.loc[:1] == (section,)]


def parse_mapping(text: str, value_type: type = str) -> dict[str, Any]:
    """``"a=1, b=2"`` → {"a": 1, "b": 2}; raises ValueError naming the bad item."""
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            raise ValueError(f"expected key=value, got {part!r}")
        k, v = (s.strip() for s in part.split("=", 1))
        if not k:
            raise ValueError(f"missing key in {part!r}")
        try:
            out[k] = value_type(v)
        except ValueError:
            raise ValueError(f"{k}: {v!r} is not a " + ("whole number" if value_type is int
                                                        else "number")) from None
    return out


def dataset_from_cells(cells: dict[str, str], extras: dict[str, Any] | None = None
                       ) -> tuple[dict[str, Any], dict[str, str]]:
    """One mixture row's cell texts → a data set dict, and {field: why its cell did not parse}.
    An empty weight is None (dropped: the schema's default); an empty kind means the format's."""
    d: dict[str, Any] = {**(extras or {}), "name": cells["name"], "source": cells["source"],
                         "format": cells["format"]}
    errors: dict[str, str] = {}
    if cells.get("kind"):
        d["kind"] = cells["kind"]
    try:
        if cols := parse_mapping(cells.get("columns", "")):
            d["columns"] = cols
    except ValueError as exc:
        errors["columns"] = str(exc)
    for key, kind, what in (("weight", float, "a number"), ("budget", int, "a whole number")):
        text = cells.get(key, "")
        try:
            d[key] = kind(text) if text else None
        except ValueError:
            errors[key] = f"{text!r} is not {what}"
    if cells.get("eval_source"):
        d["eval_source"] = cells["eval_source"]
    return d, errors


def data_path(value: str, config_dir: Path) -> Path:
    """A data path as the launcher will read it: relative to the config, else to the repo."""
    p = Path(value).expanduser()
    if not p.is_absolute():
        for root in (config_dir, REPO_ROOT):
            if (root / p).exists():
                return root / p
    return p


def drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: drop_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_none(v) for v in value if v is not None]
    return value


@dataclass
class ConfigDraft:
    data: dict[str, Any] = field(default_factory=dict)
    config_dir: Path = PRESETS  # relative data paths resolve against it, then against the repo
    parse_problems: list[Problem] = field(default_factory=list)  # editor text that did not parse
    base_mode: str = "embedded"  # "local": model.base must be a model folder; "hub": org/name

    @classmethod
    def read(cls, path: str | Path) -> ConfigDraft:
        """A config file, its ``extends`` chain and stage defaults worked out."""
        return cls(presets.resolve_file(path), Path(path).parent)

    @classmethod
    def clone_of(cls, run: dict[str, Any]) -> ConfigDraft:
        """A run's recorded config under a new name, its paths relative to the run's folder."""
        try:
            data = tomllib.loads(run.get("config_toml") or "")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"run {run['id']} has an unreadable config: {exc}") from None
        data["name"] = f"{data.get('name') or run.get('name') or 'run'}-clone"
        return cls(data, Path(run.get("run_dir") or REPO_ROOT))

    def check(self) -> tuple[RunConfig | None, list[Problem]]:
        """The config (data paths made absolute) when the schema accepts it, and every problem:
        editor text that did not parse, then the schema's, then files that are not there."""
        cfg, found = config_mod.check_dict(copy.deepcopy(self.data))
        problems = list(self.parse_problems)
        problems += [p for p in (Problem(loc, msg) for loc, msg in found) if p not in problems]
        problems += self.file_problems()
        return (config_mod.absolutize(cfg, self.config_dir) if cfg else None), problems

    def build(self) -> RunConfig:
        """The validated config; raises ConfigError naming every field that is wrong."""
        if found := [(p.loc, p.msg) for p in self.parse_problems]:
            raise ConfigError(config_mod.format_problems(found))
        cfg = config_mod.config_from_dict(copy.deepcopy(self.data))
        return config_mod.absolutize(cfg, self.config_dir)

    def file_problems(self) -> list[Problem]:
        """Cheap checks the schema cannot do (files on disk); the launcher re-checks in depth."""
        out = []
        base = str((self.data.get("model") or {}).get("base", ""))
        p = Path(base).expanduser()
        why = None
        if self.base_mode == "local":
            why = ("choose a local checkpoint folder" if not base else
                   f"local checkpoint folder not found: {base}" if not p.exists() else
                   f"not a folder: {base}" if not p.is_dir() else
                   None if (p / "config.json").exists() or (p / "adapter_config.json").exists()
                   else f"{base} has no config.json or adapter_config.json")
        elif self.base_mode == "hub" and not HUB_ID.match(base):
            why = f"{base!r} is not a hub id (org/name)"
        if why:
            out.append(Problem(("model", "base"), why))
        for i, d in enumerate(self.data.get("data") or []):
            for attr in ("source", "eval_source"):
                value = d.get(attr)
                if value and (Path(value).suffix or value.startswith((".", "/", "~"))) \
                        and not data_path(value, self.config_dir).exists():
                    out.append(Problem(("data", i, attr), f"file not found: {value}"))
        nli = (self.data.get("judges") or {}).get("nli_model")
        if nli and not Path(nli).expanduser().exists():
            out.append(Problem(("judges", "nli_model"), f"folder not found: {nli}"))
        return out

    def save(self, path: str | Path) -> Path:
        """The validated config as TOML, or the work in progress as it is when it is not valid."""
        try:
            return self.build().save(path)
        except ConfigError:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(tomli_w.dumps(drop_none(self.data)), encoding="utf-8")
            return path
