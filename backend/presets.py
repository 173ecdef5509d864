"""Composable configs: ``extends`` and ``stage_defaults`` (no Qt, no torch).

A config file may name a parent, ``extends = "reset_demo"`` (a preset name) or
``extends = "../base.toml"`` (a file, relative to the one that names it), and state only what
differs. Resolution, parent first:

- tables merge key by key, recursively (``[model]``, ``[judges]``, ``[stage_defaults.train]``);
- everything else replaces: scalars, and arrays, so the mixture (``[[data]]``) and the stage plan
  (``[[stages]]``) are always taken whole from the nearest file that states them;
- then ``[stage_defaults.<type>]`` fills every stage of that type with the keys the stage itself
  does not set, and is dropped.

The result is a plain config, the same one a single file stating everything would give: it is
what the run log stores and what ``reset-gui presets --show NAME`` prints.
"""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from .config import STAGE_TYPES, ConfigError, RunConfig
from .paths import PRESETS

EXTENDS = "extends"
STAGE_DEFAULTS = "stage_defaults"


def list_presets() -> dict[str, Path]:
    """Runnable presets by name; files starting with "_" are bases to extend, not listed."""
    return {p.stem: p for p in sorted(PRESETS.glob("*.toml")) if not p.stem.startswith("_")}


def deep_merge(parent: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """``child`` over ``parent``: tables merge recursively, anything else (arrays too) replaces."""
    out = copy.deepcopy(parent)
    for key, value in child.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_stage_defaults(data: dict[str, Any], where: str = "") -> dict[str, Any]:
    """Fill each stage with its type's ``stage_defaults`` (stage keys win) and drop the table."""
    data = dict(data)
    defaults = data.pop(STAGE_DEFAULTS, None)
    if defaults is None:
        return data
    if not isinstance(defaults, dict) or not all(isinstance(v, dict) for v in defaults.values()):
        raise ConfigError(f"invalid config {where}:\n  {STAGE_DEFAULTS}: expected one table per "
                          f"stage type, e.g. [{STAGE_DEFAULTS}.train]")
    unknown = sorted(set(defaults) - set(STAGE_TYPES))
    if unknown:
        raise ConfigError(f"invalid config {where}:\n  {STAGE_DEFAULTS}: unknown stage type(s) "
                          f"{unknown}; use {list(STAGE_TYPES)}")
    stages = data.get("stages")
    if isinstance(stages, list):
        data["stages"] = [_filled(st, defaults.get(st.get("type"), {}))
                          if isinstance(st, dict) else st for st in stages]
    return data


def _filled(stage: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    merged = deep_merge(defaults, stage)
    return {k: merged[k] for k in dict.fromkeys([*stage, *merged])}  # the stage's own keys first


def _parent_path(ref: Any, base: Path | None, where: str) -> Path:
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError(f"invalid config {where}:\n  {EXTENDS}: expected a preset name or a "
                          f"file path, got {ref!r}")
    if ref.endswith(".toml") or "/" in ref or "\\" in ref:
        path = Path(ref).expanduser()
        if not path.is_absolute():
            path = (base or Path.cwd()) / path
        if not path.exists():
            raise ConfigError(f"{where} extends {ref!r}, but there is no such file ({path})")
        return path.resolve()
    path = PRESETS / f"{ref}.toml"
    if not path.exists():
        raise ConfigError(f"{where} extends {ref!r}, but there is no such preset; available: "
                          f"{', '.join(list_presets()) or 'none'}")
    return path.resolve()


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def _merged(data: dict[str, Any], base: Path | None, where: str,
            chain: tuple[Path, ...]) -> dict[str, Any]:
    """``data`` over its whole ``extends`` chain, stage defaults not yet applied."""
    if EXTENDS not in data:
        return data
    child = dict(data)
    parent_path = _parent_path(child.pop(EXTENDS), base, where)
    if parent_path in chain:
        loop = " → ".join(p.stem for p in (*chain, parent_path))
        raise ConfigError(f"{where}: presets extend each other in a cycle: {loop}")
    parent = _merged(_read(parent_path), parent_path.parent, str(parent_path),
                     (*chain, parent_path))
    return deep_merge(parent, child)


def resolve(data: dict[str, Any], where: str = "<string>",
            base: str | Path | None = None) -> dict[str, Any]:
    """A config dict with ``extends`` and ``stage_defaults`` worked out (see the module doc).

    ``base`` is the folder of the file ``data`` came from (relative ``extends`` paths start
    there); ``where`` names it in errors.
    """
    base = Path(base).resolve() if base is not None else None
    return _ordered(apply_stage_defaults(_merged(data, base, where, ()), where))


def resolve_file(path: str | Path) -> dict[str, Any]:
    """The resolved config dict of one TOML file."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    full = path.resolve()
    merged = _merged(_read(path), full.parent, str(path), (full,))
    return _ordered(apply_stage_defaults(merged, str(path)))


def _ordered(data: dict[str, Any]) -> dict[str, Any]:
    """Keys in the config's own order (a parent's keys would otherwise come first)."""
    fields = list(RunConfig.model_fields)
    return dict(sorted(data.items(), key=lambda kv: fields.index(kv[0]) if kv[0] in fields
                       else len(fields)))


def preset_path(name: str) -> Path:
    presets = list_presets()
    if name not in presets:
        raise ConfigError(f"unknown preset {name!r}; available: {', '.join(presets) or 'none'}")
    return presets[name]
