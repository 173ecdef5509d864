"""Pure data helpers for the GUI tabs: no Qt, no torch.

Following pyqtgraph's own examples, the *data* (what to draw) is kept apart from the *drawing*
(items updated with ``setData``): every class and function here takes plain rows from the run log
(dicts, as ``RunLog.read_since`` and ``backend.queries`` return them) and gives back arrays, lists and
strings. The widgets in ``live_tab``/``samples_tab``/``compare_tab`` only feed rows in and draw.
"""
from __future__ import annotations

import html
import json
import math
import tomllib
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from backend.eval_details import EvalDetails, Interval, with_interval

# Okabe-Ito-ish palette: distinguishable, colour-blind friendly, legible on white.
RUN_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7F3C8D",
              "#000000", "#8C564B", "#17BECF")


def run_color(i: int) -> str:
    return RUN_COLORS[i % len(RUN_COLORS)]


def loads_json(value: Any) -> Any:
    """details/policy/params columns: JSON text, already-decoded dicts, or junk (-> None)."""
    if value is None or isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "–"
    return f"{v:.{digits}f}"


# ==================================================================================================
# trade-off plot: one point per evaluated checkpoint ("_all" eval rows)

@dataclass
class TradeoffPoint:
    run_id: str
    tag: str
    checkpoint_id: int | None
    x: float                  # instruction following
    y: float                  # faithfulness
    task: float | None = None
    mean_length: float | None = None
    n: int | None = None
    judge: str | None = None
    eval_id: int = 0
    x_iv: Interval | None = None   # 95 % bootstrap intervals (rows with per-item scores)
    y_iv: Interval | None = None

    @property
    def order(self) -> tuple:
        # base first, then checkpoints in creation (= stage) order
        return (-1 if self.checkpoint_id is None else self.checkpoint_id, self.eval_id)


class TradeoffData:
    """Accumulates evals rows; keeps the "_all" row of every (run, checkpoint)."""

    def __init__(self) -> None:
        self.points: dict[str, dict[str, TradeoffPoint]] = {}

    def add_evals(self, rows: Iterable[dict[str, Any]]) -> set[str]:
        changed: set[str] = set()
        for r in rows:
            if r.get("dataset") != "_all":
                continue
            x, y = r.get("instruction_following"), r.get("faithfulness")
            if x is None or y is None:
                continue
            ivs = EvalDetails.from_json(r.get("details")).intervals
            p = TradeoffPoint(run_id=r["run_id"], tag=r.get("checkpoint_tag") or "?",
                              checkpoint_id=r.get("checkpoint_id"), x=float(x), y=float(y),
                              task=r.get("task_score"), mean_length=r.get("mean_length"),
                              n=r.get("n"), judge=r.get("faithfulness_judge"),
                              eval_id=int(r.get("id") or 0),
                              x_iv=ivs.get("instruction_following"), y_iv=ivs.get("faithfulness"))
            self.points.setdefault(p.run_id, {})[p.tag] = p
            changed.add(p.run_id)
        return changed

    def series(self, run_id: str) -> list[TradeoffPoint]:
        return sorted(self.points.get(run_id, {}).values(), key=lambda p: p.order)

    def all_points(self, run_ids: Iterable[str] | None = None) -> list[TradeoffPoint]:
        keys = self.points.keys() if run_ids is None else [r for r in run_ids if r in self.points]
        return [p for k in keys for p in self.series(k)]

    def __len__(self) -> int:
        return sum(len(v) for v in self.points.values())


def pareto_front(xy: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points not dominated in (x, y) (both maximised), in ascending x."""
    order = sorted(range(len(xy)), key=lambda i: (-xy[i][0], -xy[i][1]))
    front, best_y = [], -math.inf
    for i in order:
        if xy[i][1] > best_y:
            front.append(i)
            best_y = xy[i][1]
    return front[::-1]


def tradeoff_tip(p: TradeoffPoint, run_name: str | None = None) -> str:
    lines = [f"{run_name or p.run_id}", f"checkpoint {p.tag}",
             f"instruction following {with_interval(p.x, p.x_iv)}",
             f"faithfulness {with_interval(p.y, p.y_iv)}" + (f" ({p.judge})" if p.judge else "")]
    if p.x_iv or p.y_iv:
        lines.append("[ ]: 95 % bootstrap interval over eval items")
    if p.task is not None:
        lines.append(f"task score {p.task:.3f}")
    if p.mean_length is not None:
        lines.append(f"mean length {p.mean_length:.1f} tokens")
    return "\n".join(lines)


# ==================================================================================================
# metric curves over training steps, stages laid end to end

def ema(y: np.ndarray, alpha: float = 0.8) -> np.ndarray:
    """Exponential moving average that restarts after each NaN gap (a stage boundary)."""
    out = np.empty_like(y, dtype=float)
    acc = np.nan
    for i, v in enumerate(y):
        if np.isnan(v):
            acc = np.nan
        else:
            acc = v if np.isnan(acc) else alpha * acc + (1 - alpha) * v
        out[i] = acc if not np.isnan(v) else np.nan
    return out


class MetricSeries:
    """Metric rows -> per (run, name) x/y arrays. Each stage restarts its step count, so stages
    are laid end to end: x = offset(stage) + step, offset = sum of earlier stages' last steps."""

    # metrics a training stage logs; other stages' rows (sampling speed, acceptance) have steps
    # of their own that must not shift the training axis
    TRAINING = frozenset({"loss", "learning_rate", "grad_norm", "epoch", "gen_length",
                          "padding_fraction"})

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], dict[int, dict[int, float]]] = {}
        self._max_step: dict[str, dict[int, int]] = {}
        self.stage_names: dict[tuple[str, int], str] = {}

    def add(self, rows: Iterable[dict[str, Any]]) -> set[tuple[str, str]]:
        touched: set[tuple[str, str]] = set()
        for r in rows:
            run, name, stage = r["run_id"], r["name"], int(r.get("stage_idx") or 0)
            step, value = int(r.get("step") or 0), r.get("value")
            if value is None:
                continue
            self._data.setdefault((run, name), {}).setdefault(stage, {})[step] = float(value)
            if name not in self.TRAINING:
                touched.add((run, name))
                continue
            ms = self._max_step.setdefault(run, {})
            if step > ms.get(stage, -1):
                ms[stage] = step
            touched.add((run, name))
        return touched

    def add_stages(self, rows: Iterable[dict[str, Any]]) -> None:
        for r in rows:
            self.stage_names[(r["run_id"], int(r["idx"]))] = r.get("name") or f"stage {r['idx']}"

    def offsets(self, run_id: str) -> dict[int, int]:
        out, acc = {}, 0
        for stage in sorted(self._max_step.get(run_id, {})):
            out[stage] = acc
            acc += self._max_step[run_id][stage]
        return out

    def xy(self, run_id: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        stages = self._data.get((run_id, name), {})
        off = self.offsets(run_id)
        xs: list[float] = []
        ys: list[float] = []
        for stage in sorted(stages):
            if xs:  # a NaN gap: stages are separate curves, not joined across the boundary
                xs.append(xs[-1])
                ys.append(np.nan)
            pts = stages[stage]
            for step in sorted(pts):
                xs.append(off.get(stage, 0) + step)
                ys.append(pts[step])
        return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)

    def boundaries(self, run_id: str, names: Iterable[str] = ("loss",)) -> list[tuple[int, str]]:
        """(x, label) at the start of every stage (after the first) that logged one of `names`."""
        stages = set()
        for n in names:
            stages |= set(self._data.get((run_id, n), {}))
        off = self.offsets(run_id)
        out = []
        for s in sorted(stages):
            if off.get(s, 0) > 0:
                out.append((off[s], self.stage_names.get((run_id, s), f"stage {s}")))
        return out

    def names(self, run_id: str) -> list[str]:
        return sorted(n for (r, n) in self._data if r == run_id)

    def has(self, run_id: str, name: str) -> bool:
        return (run_id, name) in self._data

    def runs(self) -> list[str]:
        return sorted({r for r, _ in self._data})

    def latest(self, run_id: str, prefix: str) -> dict[str, float]:
        """name-suffix -> value at the highest (stage, step) for metrics named prefix<suffix>."""
        out = {}
        for (r, n), stages in self._data.items():
            if r != run_id or not n.startswith(prefix):
                continue
            s = max(stages)
            out[n[len(prefix):]] = stages[s][max(stages[s])]
        return out


# ==================================================================================================
# faithfulness by response length (evals.details)

def length_buckets(details: Any) -> list[tuple[str, float, int | None]]:
    """(label, faithfulness, n) per response-length bucket of an evals row's details, read through
    the one details contract (backend/eval_details.py; rows of every version)."""
    return [(b.label, float(b.faithfulness), b.n) for b in EvalDetails.from_json(details).filled_buckets()]


# ==================================================================================================
# histograms of judge scores, accepted vs rejected

def histogram_pair(values: Sequence[float], accepted: Sequence[bool], bins: int = 20
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=float)
    a = np.asarray(accepted, dtype=bool)
    ok = ~np.isnan(v)
    edges = np.linspace(0.0, 1.0, bins + 1)
    acc, _ = np.histogram(np.clip(v[ok & a], 0, 1), bins=edges)
    rej, _ = np.histogram(np.clip(v[ok & ~a], 0, 1), bins=edges)
    return edges, acc, rej


def accept_rates_from_rows(rows: Iterable[dict[str, Any]]) -> dict[str, float]:
    """kind -> accepted/total from rows with 'kind' and 'accepted' (prompt-level not needed)."""
    tot: dict[str, int] = {}
    acc: dict[str, int] = {}
    for r in rows:
        k = r.get("kind") or "?"
        tot[k] = tot.get(k, 0) + 1
        acc[k] = acc.get(k, 0) + (1 if r.get("accepted") else 0)
    return {k: acc[k] / tot[k] for k in tot if tot[k]}


# ==================================================================================================
# config diff

def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dict/list -> {"dotted.key": scalar}. List items that have a "name" are keyed by it
    (stages[mtl].learning_rate), so reordering a plan does not show every key as changed."""
    out: dict[str, Any] = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        for i, v in enumerate(value):
            key = v.get("name", i)
            out.update(flatten(v, f"{prefix}[{key}]"))
    elif isinstance(value, list):
        out[prefix] = json.dumps(value, sort_keys=True)
    else:
        out[prefix] = value
    return out


def config_diff(configs: dict[str, str]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """run id -> config TOML  ==>  (keys whose values differ, sorted; run -> flat config).
    A key missing from a run counts as different; unparsable TOML gives {"<error>": message}."""
    flat: dict[str, dict[str, Any]] = {}
    for run, text in configs.items():
        try:
            flat[run] = flatten(tomllib.loads(text or ""))
        except tomllib.TOMLDecodeError as exc:
            flat[run] = {"<error>": str(exc)}
    keys = sorted({k for f in flat.values() for k in f})
    missing = object()
    differ = [k for k in keys if len({json.dumps(f.get(k, missing) if f.get(k, missing) is not missing
                                                 else "<missing>", sort_keys=True, default=str)
                                      for f in flat.values()}) > 1]
    return differ, flat


# ==================================================================================================
# faithfulness highlighting and judge explanations

@dataclass
class Highlights:
    unsupported: list[tuple[int, int]] = field(default_factory=list)   # into the response
    missing: list[tuple[int, int]] = field(default_factory=list)       # words absent from context
    support: list[tuple[int, int]] = field(default_factory=list)       # into the context


def _span(item: Any, text_len: int | None) -> tuple[int, int] | None:
    if isinstance(item, dict):
        s, e = item.get("start"), item.get("end")
        if s is None and isinstance(item.get("span"), (list, tuple)):
            s, e = item["span"][:2]
    elif isinstance(item, (list, tuple)) and len(item) >= 2:
        s, e = item[0], item[1]
    else:
        return None
    try:
        s, e = int(s), int(e)
    except (TypeError, ValueError):
        return None
    if text_len is not None:
        s, e = max(0, min(s, text_len)), max(0, min(e, text_len))
    return (s, e) if e > s else None


def faith_highlights(details: Any, response_len: int | None = None,
                     context_len: int | None = None) -> Highlights:
    """Spans to colour from a faithfulness judge's details (see backend/judges/faithfulness.py);
    anything malformed is skipped, never raised."""
    h = Highlights()
    d = loads_json(details)
    if not isinstance(d, dict):
        return h
    sents = d.get("sentences")
    if not isinstance(sents, list):
        return h
    unsupported_idx = set(d.get("unsupported") or []) if isinstance(d.get("unsupported"), list) else set()
    for i, s in enumerate(sents):
        if not isinstance(s, dict):
            continue
        idx = s.get("index", i)
        supported = s.get("supported")
        if supported is None:
            supported = idx not in unsupported_idx
        sp = _span(s, response_len)
        if not supported and sp:
            h.unsupported.append(sp)
        for m in s.get("missing") or []:
            ms = _span(m, response_len)
            if ms:
                h.missing.append(ms)
        if supported and s.get("checked", True):
            for sup in s.get("support") or []:
                cs = _span(sup, context_len)
                if cs:
                    h.support.append(cs)
    return h


def spans_html(text: str, layers: Sequence[tuple[Sequence[tuple[int, int]], str]]) -> str:
    """HTML of `text` with spans styled; later layers win where spans overlap.
    layers: [(spans, css style), ...]. Newlines become <br>."""
    text = text or ""
    n = len(text)
    style_at = [-1] * n
    for li, (spans, _css) in enumerate(layers):
        for s, e in spans:
            for k in range(max(0, s), min(n, e)):
                style_at[k] = li
    out, i = [], 0
    while i < n:
        j = i
        while j < n and style_at[j] == style_at[i]:
            j += 1
        chunk = html.escape(text[i:j]).replace("\n", "<br>")
        if style_at[i] >= 0:
            out.append(f'<span style="{layers[style_at[i]][1]}">{chunk}</span>')
        else:
            out.append(chunk)
        i = j
    return "".join(out)


def judge_why(judge: str, value: Any, details: Any) -> str:
    """One short line explaining a judge's number, from its details."""
    d = loads_json(details)
    if not isinstance(d, dict):
        return ""
    if d.get("error"):
        return f"error: {str(d['error'])[:80]}"
    if d.get("reason") and value is None:
        return str(d["reason"])[:80]
    if isinstance(d.get("sentences"), list):
        sents = [s for s in d["sentences"] if isinstance(s, dict)]
        checked = [s for s in sents if s.get("checked", True)]
        bad = [s for s in checked if s.get("supported") is False]
        why = f"{len(checked) - len(bad)}/{len(checked)} sentences supported"
        flagged = [m for s in bad for m in (s.get("missing") or [])
                   if isinstance(m, dict) and m.get("text")]
        missing = [m["text"] for m in flagged if not m.get("why")]
        unlikely = [m["text"] for m in flagged if m.get("why")]  # faith_lm: words it did not expect
        if missing:
            why += "; not in context: " + ", ".join(dict.fromkeys(missing[:4]))
        if unlikely:
            why += "; unlikely given the context: " + ", ".join(dict.fromkeys(unlikely[:4]))
        if d.get("note"):
            why += f" ({d['note']})"
        return why
    for key in ("results", "checks", "instructions"):  # IFEval-style
        res = d.get(key)
        if isinstance(res, list) and res:
            # the ifeval judge's checks say "strict" (its score; None: could not be checked)
            rows = [(r, r["strict"] if "strict" in r else bool(r.get("passed") or r.get("ok")
                                                               or r.get("followed")))
                    for r in res if isinstance(r, dict)]
            known = [(r, passed) for r, passed in rows if passed is not None]
            failed = [str(r.get("id") or r.get("instruction_id") or r.get("name") or "?")
                      for r, passed in known if not passed]
            why = f"{len(known) - len(failed)}/{len(known)} checks passed"
            if failed:
                why += ": failed " + ", ".join(failed[:3])
            if len(known) < len(rows):
                why += f"; {len(rows) - len(known)} not checkable"
            return why
        if isinstance(res, dict) and res:
            ok = [k for k, v in res.items() if v is True or (isinstance(v, dict) and v.get("passed"))]
            failed = [k for k in res if k not in ok]
            why = f"{len(ok)}/{len(res)} checks passed"
            if failed:
                why += ": failed " + ", ".join(failed[:3])
            return why
    for key in ("rating", "raw_rating"):
        if d.get(key) is not None:
            return f"rated {d[key]}/10" + (f": {str(d.get('explanation') or d.get('reason'))[:60]}"
                                          if d.get("explanation") or d.get("reason") else "")
    parts = []
    for key in ("precision", "recall", "f1", "fmeasure"):
        if isinstance(d.get(key), (int, float)):
            parts.append(f"{key[0].upper()} {d[key]:.2f}")
    if parts:
        return " · ".join(parts) + (" vs reference" if d.get("reference") is not False else "")
    if d.get("weights") and judge == "combined":
        w = d["weights"]
        if isinstance(w, dict):
            return "weights " + ", ".join(f"{k[:5]} {v:g}" for k, v in w.items())
    if d.get("note"):
        return str(d["note"])[:80]
    return ""
