"""``reset-gui report RUN... --out report.html``: one self-contained HTML file from the run log.

It draws the paper's figures for the given runs, each number with its 95 % interval: the trade-off
scatter with the North Star (Fig. 1), macro-averaged scores per checkpoint (Fig. 3), generation
length over training (Fig. 4) and faithfulness by response length (Fig. 5); then every checkpoint's
difference from a reference checkpoint (paired bootstrap, said in words: within or outside noise),
the selection statistics, which judge scored how many items of which category, and each run's
config. Runs that are seeds of one experiment are also pooled item by item.

Figures are inline SVG written here (no plotting dependency, no script, no network: the file opens
anywhere and prints as it shows). Reads go through ``RunLog``'s API and ``backend.queries``.
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from . import queries
from .eval_details import ALL, CATEGORIES, EvalDetails, Interval
from .experiments import merge_seeds
from .runlog import RunLog
from .stats import Diff, compare_details

COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7F3C8D", "#000000",
          "#8C564B", "#17BECF")
CAT_LABEL = {"faithfulness": "faithfulness", "instruction_following": "instruction following",
             "task_score": "task"}
TRAINING_METRICS = ("loss", "learning_rate", "gen_length")


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(v: float | None, digits: int = 3, sign: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:+.{digits}f}" if sign else f"{v:.{digits}f}"


def fmt_iv(iv: Interval | None, sign: bool = False) -> str:
    return f"[{fmt(iv.lo, sign=sign)}, {fmt(iv.hi, sign=sign)}]" if iv else ""


# ==================================================================================================
# data

@dataclass
class Checkpoint:
    key: tuple[str, str]       # (run id or "exp:<id>", tag)
    label: str                 # "<run name> · <tag>"
    color: str
    det: EvalDetails
    row: dict[str, Any] | None  # the _all evals row (None for a pooled experiment)
    sets: list[dict[str, Any]] = field(default_factory=list)  # per-data-set evals rows
    pooled: int = 0            # seeds pooled (0: a single run)

    def mean(self, cat: str) -> float | None:
        v = self.det.means.get(cat)
        if v is None and self.row is not None:
            v = self.row.get(cat)
        return v


@dataclass
class RunData:
    run: dict[str, Any]
    color: str
    checkpoints: list[Checkpoint]
    gen_length: list[tuple[float, float]]           # (training step, stages end to end; tokens)
    boundaries: list[tuple[float, str]]             # (x where a training stage starts, its name)
    selections: list[dict[str, Any]]
    config: dict[str, Any]

    @property
    def name(self) -> str:
        return self.run.get("name") or self.run["id"]


def _training_curve(log: RunLog, run_id: str) -> tuple[list[tuple[float, float]], list[tuple[float, str]]]:
    """gen_length points with the training stages laid end to end (each restarts its steps)."""
    stages = {s["idx"]: s for s in log.get_stages(run_id)}
    last: dict[int, int] = {}
    points: dict[int, list[tuple[int, float]]] = {}
    for m in log.read_since("metrics", 0, run_id=run_id):
        if m["name"] not in TRAINING_METRICS:
            continue
        last[m["stage_idx"]] = max(last.get(m["stage_idx"], 0), int(m["step"]))
        if m["name"] == "gen_length":
            points.setdefault(m["stage_idx"], []).append((int(m["step"]), float(m["value"])))
    out, bounds, offset = [], [], 0
    for idx in sorted(last):
        if offset:
            bounds.append((offset, (stages.get(idx) or {}).get("name") or f"stage {idx}"))
        out += [(offset + s, v) for s, v in sorted(points.get(idx, []))]
        offset += last[idx]
    return out, bounds


def _selections(log: RunLog, run_id: str) -> list[dict[str, Any]]:
    out = []
    for sel in queries.selections(log, run_id):
        sel = dict(sel)
        policy = sel.get("policy")
        policy = json.loads(policy) if isinstance(policy, str) and policy else (policy or {})
        rates = ({k.split("/", 1)[1]: v for k, v in queries.metric_values(
                     log, run_id, sel["stage_idx"], "accept_rate/").items()}
                 if sel.get("stage_idx") is not None else {})
        out.append({"name": sel["name"], "n_selected": sel["n_selected"], "policy": policy,
                    "kinds": queries.selection_kinds(log, sel["id"]), "accept_rates": rates})
    return out


def load_runs(log: RunLog, run_ids: Sequence[str]) -> list[RunData]:
    """The report's data for each run, in the order given."""
    out = []
    for i, rid in enumerate(run_ids):
        run = log.get_run(rid)
        if run is None:
            raise ValueError(f"no run {rid!r} in {log.path}")
        color = COLORS[i % len(COLORS)]
        rows = [dict(r) for r in queries.evals(log, rid)]
        alls = sorted((r for r in rows if r["dataset"] == ALL),
                      key=lambda r: (r.get("checkpoint_id") if r.get("checkpoint_id") is not None else -1,
                                     r["id"]))
        cks = [Checkpoint((rid, r["checkpoint_tag"]), f"{run.get('name') or rid} · {r['checkpoint_tag']}",
                          color, EvalDetails.from_row(r), r,
                          [x for x in rows if x["checkpoint_tag"] == r["checkpoint_tag"]
                           and x["dataset"] != ALL]) for r in alls]
        curve, bounds = _training_curve(log, rid)
        out.append(RunData(run, color, cks, curve, bounds, _selections(log, rid),
                           queries.config_dict(run.get("config_toml"))))
    return out


def pooled_experiments(runs: Sequence[RunData]) -> list[Checkpoint]:
    """For runs that are seeds of one experiment (two or more given): their checkpoints pooled."""
    groups: dict[str, list[RunData]] = {}
    for r in runs:
        if r.run.get("experiment"):
            groups.setdefault(r.run["experiment"], []).append(r)
    out = []
    for exp, members in groups.items():
        if len(members) < 2:
            continue
        name = members[0].name.rsplit("-s", 1)[0]
        tags = [c.key[1] for c in members[0].checkpoints]
        for tag in tags:
            dets = [c.det for m in members for c in m.checkpoints if c.key[1] == tag]
            if len(dets) == len(members):
                out.append(Checkpoint((f"exp:{exp}", tag), f"{name} · {tag} ({len(dets)} seeds)",
                                      members[0].color, merge_seeds(dets), None, pooled=len(dets)))
    return out


def reference_checkpoint(cks: Sequence[Checkpoint]) -> Checkpoint | None:
    """The first MTL checkpoint (what ReSet and the control continue from), else the first."""
    for c in cks:
        if c.key[1] == "mtl":
            return c
    return cks[0] if cks else None


Comparison = tuple[Checkpoint, Checkpoint, dict[str, "Diff | None"]]


def _single_and_pooled(cks: Sequence[Checkpoint]) -> tuple[list[Checkpoint], list[Checkpoint]]:
    """Checkpoints of single runs, and checkpoints pooled over seeds: never compared across."""
    return [c for c in cks if not c.pooled], [c for c in cks if c.pooled]


def comparisons(cks: Sequence[Checkpoint]) -> list[Comparison]:
    """(reference, checkpoint, paired differences) for every checkpoint but the references: a run's
    checkpoints against its own MTL (a run without one: against the first run's), checkpoints
    pooled over seeds against the pooled MTL."""
    out = []
    for group in _single_and_pooled(cks):
        first = reference_checkpoint(group)
        for c in group:
            ref = next((r for r in group if r.key == (c.key[0], "mtl")), first)
            if c is not ref:
                out.append((ref, c, compare_details(ref.det, c.det)))
    return out


def control_comparisons(cks: Sequence[Checkpoint]) -> list[Comparison]:
    """(control, ReSet checkpoint, differences): whether a ReSet gain over MTL is more than the
    extra training the control had (same prompts, original references, same steps)."""
    out = []
    for group in _single_and_pooled(cks):
        for ctl in (c for c in group if c.key[1] == "control"):
            out += [(ctl, c, compare_details(ctl.det, c.det)) for c in group
                    if c.key[0] == ctl.key[0] and c.key[1].startswith("reset")]
    return out


def verdict(d: Diff) -> str:
    return ("within noise" if d.within_noise else
            ("outside noise, higher" if d.diff > 0 else "outside noise, lower"))


def diff_phrase(cat: str, d: Diff | None) -> str:
    """One category's difference in words (plain text: the HTML escapes it)."""
    if d is None:
        return f"{CAT_LABEL[cat]}: no per-item scores to compare"
    return f"{CAT_LABEL[cat]} {fmt(d.diff, sign=True)} {fmt_iv(d.interval, sign=True)} — {verdict(d)}"


# ==================================================================================================
# SVG

class Svg:
    """A small plot: linear axes with ticks and a grid, drawn into an inline <svg>."""

    def __init__(self, title: str, x_label: str, y_label: str, x_range: tuple[float, float],
                 y_range: tuple[float, float], width: int = 620, height: int = 400,
                 x_ticks: Sequence[tuple[float, str]] | None = None):
        self.title, self.x_label, self.y_label = title, x_label, y_label
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range
        self.w, self.h = width, height
        self.ml, self.mr, self.mt, self.mb = 58, 18, 34, 50
        self.parts: list[str] = []
        self.legend_items: list[tuple[str, str, str]] = []  # (label, color, shape)
        self.x_ticks = x_ticks

    def sx(self, x: float) -> float:
        return self.ml + (x - self.x0) / ((self.x1 - self.x0) or 1) * (self.w - self.ml - self.mr)

    def sy(self, y: float) -> float:
        return self.h - self.mb - (y - self.y0) / ((self.y1 - self.y0) or 1) * (self.h - self.mt - self.mb)

    @staticmethod
    def nice_ticks(lo: float, hi: float, n: int = 6) -> list[float]:
        span = (hi - lo) or 1.0
        raw = span / n
        mag = 10 ** math.floor(math.log10(raw))
        step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
        first = math.ceil(lo / step) * step
        return [round(first + i * step, 10) for i in range(int((hi - first) / step + 1e-9) + 1)]

    def _axes(self) -> str:
        p = [f'<rect x="{self.ml}" y="{self.mt}" width="{self.w - self.ml - self.mr}" '
             f'height="{self.h - self.mt - self.mb}" fill="#fff" stroke="#888"/>']
        for t in self.nice_ticks(self.y0, self.y1):
            y = self.sy(t)
            p.append(f'<line x1="{self.ml}" x2="{self.w - self.mr}" y1="{y:.1f}" y2="{y:.1f}" '
                     f'stroke="#e5e5e5"/><text x="{self.ml - 6}" y="{y + 4:.1f}" text-anchor="end" '
                     f'class="tick">{t:g}</text>')
        xt = self.x_ticks if self.x_ticks is not None else [(t, f"{t:g}") for t in self.nice_ticks(self.x0, self.x1)]
        for t, label in xt:
            x = self.sx(t)
            p.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{self.mt}" y2="{self.h - self.mb}" '
                     f'stroke="#f0f0f0"/><text x="{x:.1f}" y="{self.h - self.mb + 16}" '
                     f'text-anchor="middle" class="tick">{esc(label)}</text>')
        p.append(f'<text x="{(self.ml + self.w - self.mr) / 2:.1f}" y="{self.h - 10}" '
                 f'text-anchor="middle" class="axis">{esc(self.x_label)}</text>')
        p.append(f'<text transform="translate(14 {(self.mt + self.h - self.mb) / 2:.1f}) rotate(-90)" '
                 f'text-anchor="middle" class="axis">{esc(self.y_label)}</text>')
        p.append(f'<text x="{self.ml}" y="20" class="ptitle">{esc(self.title)}</text>')
        return "".join(p)

    def add(self, part: str) -> None:
        self.parts.append(part)

    def errbar(self, x: float, y: float, xiv: Interval | None, yiv: Interval | None, color: str) -> None:
        cap = 4
        if yiv:
            a, b, cx = self.sy(yiv.lo), self.sy(yiv.hi), self.sx(x)
            self.add(f'<path d="M{cx:.1f} {a:.1f}V{b:.1f}M{cx - cap:.1f} {a:.1f}H{cx + cap:.1f}'
                     f'M{cx - cap:.1f} {b:.1f}H{cx + cap:.1f}" stroke="{color}" fill="none" '
                     f'class="ci"/>')
        if xiv:
            a, b, cy = self.sx(xiv.lo), self.sx(xiv.hi), self.sy(y)
            self.add(f'<path d="M{a:.1f} {cy:.1f}H{b:.1f}M{a:.1f} {cy - cap:.1f}V{cy + cap:.1f}'
                     f'M{b:.1f} {cy - cap:.1f}V{cy + cap:.1f}" stroke="{color}" fill="none" '
                     f'class="ci"/>')

    def point(self, x: float, y: float, color: str, tip: str = "", label: str = "",
              hollow: bool = False, r: float = 5.5) -> None:
        fill = "#fff" if hollow else color
        self.add(f'<circle cx="{self.sx(x):.1f}" cy="{self.sy(y):.1f}" r="{r}" fill="{fill}" '
                 f'stroke="{color if hollow else "#fff"}" stroke-width="{2 if hollow else 1}">'
                 f'<title>{esc(tip)}</title></circle>')
        if label:
            self.add(f'<text x="{self.sx(x) + 8:.1f}" y="{self.sy(y) - 6:.1f}" class="plabel" '
                     f'fill="{color}">{esc(label)}</text>')

    def polyline(self, pts: Iterable[tuple[float, float]], color: str, dash: str = "",
                 markers: bool = False) -> None:
        pts = list(pts)
        if len(pts) >= 2:
            d = " ".join(f"{self.sx(x):.1f},{self.sy(y):.1f}" for x, y in pts)
            self.add(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="1.6"'
                     + (f' stroke-dasharray="{dash}"' if dash else "") + "/>")
        if markers:
            for x, y in pts:
                self.add(f'<circle cx="{self.sx(x):.1f}" cy="{self.sy(y):.1f}" r="2.6" fill="{color}"/>')

    def bar(self, x0: float, x1: float, y: float, color: str, tip: str = "",
            iv: Interval | None = None) -> None:
        top, base = self.sy(max(y, self.y0)), self.sy(max(self.y0, 0.0))
        self.add(f'<rect x="{self.sx(x0):.1f}" y="{min(top, base):.1f}" width="{self.sx(x1) - self.sx(x0):.1f}" '
                 f'height="{abs(base - top):.1f}" fill="{color}" opacity="0.85">'
                 f'<title>{esc(tip)}</title></rect>')
        if iv:
            self.errbar((x0 + x1) / 2, y, None, iv, "#222")

    def vline(self, x: float, label: str) -> None:
        sx = self.sx(x)
        self.add(f'<line x1="{sx:.1f}" x2="{sx:.1f}" y1="{self.mt}" y2="{self.h - self.mb}" '
                 f'stroke="#999" stroke-dasharray="3 3"/><text x="{sx + 3:.1f}" y="{self.mt + 12}" '
                 f'class="tick">{esc(label)}</text>')

    def legend(self, label: str, color: str, shape: str = "dot") -> None:
        self.legend_items.append((label, color, shape))

    def render(self, desc: str = "") -> str:
        """The plot, its legend in columns below the x axis (never over the data)."""
        leg = []
        cols = max(1, min(3, (self.w - self.ml) // 210))
        col_w = (self.w - self.ml - self.mr) / cols
        for k, (label, color, shape) in enumerate(self.legend_items):
            x = self.ml + (k % cols) * col_w
            y = self.h + 4 + 16 * (k // cols)
            mark = (f'<circle cx="{x + 5:.1f}" cy="{y - 4}" r="4.5" fill="{color}"/>' if shape == "dot" else
                    f'<rect x="{x:.1f}" y="{y - 9}" width="10" height="10" fill="{color}"/>' if shape == "box"
                    else f'<path d="M{x + 5:.1f} {y - 11}l2.4 5 5.5.6-4 3.8 1 5.4-4.9-2.6-4.9 2.6 1-5.4-4-3.8 '
                         f'5.5-.6z" fill="{color}"/>')
            leg.append(f'{mark}<text x="{x + 14:.1f}" y="{y}" class="legend">{esc(label)}</text>')
        rows = -(-len(self.legend_items) // cols)
        height = self.h + (16 * rows + 8 if rows else 0)
        return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.w} {height}" '
                f'width="{self.w}" height="{height}" role="img" aria-label="{esc(self.title)}">'
                f'<desc>{esc(desc or self.title)}</desc>{self._axes()}{"".join(self.parts)}'
                f'{"".join(leg)}</svg>')


# ==================================================================================================
# figures

def fig_tradeoff(runs: Sequence[RunData], pooled: Sequence[Checkpoint]) -> str:
    """Fig. 1: instruction following × faithfulness, one point per checkpoint, 95 % bars."""
    xs = [v for c in list(_all_cks(runs)) + list(pooled) if (v := c.mean("instruction_following")) is not None]
    ys = [v for c in list(_all_cks(runs)) + list(pooled) if (v := c.mean("faithfulness")) is not None]
    # zoom onto the points, keeping the North Star (1, 1) in view
    lo_x = max(0.0, math.floor((min(xs, default=0.0) - 0.12) * 10) / 10)
    lo_y = max(0.0, math.floor((min(ys, default=0.0) - 0.12) * 10) / 10)
    svg = Svg("Fig. 1 — Trade-off: instruction following × faithfulness", "instruction following",
              "faithfulness", (lo_x, 1.05), (lo_y, 1.05), height=440)
    svg.add(f'<path d="M{svg.sx(1) - 8:.1f} {svg.sy(1):.1f}l8-9 8 9-8 9z" fill="#f2b01e" '
            f'stroke="#8a6400"><title>North Star (1, 1)</title></path><text x="{svg.sx(1) - 12:.1f}" '
            f'y="{svg.sy(1) + 4:.1f}" text-anchor="end" class="plabel" fill="#8a6400">North Star (1, 1)</text>')
    for r in runs:
        pts = [(c.mean("instruction_following"), c.mean("faithfulness"), c) for c in r.checkpoints]
        pts = [(x, y, c) for x, y, c in pts if x is not None and y is not None]
        svg.polyline([(x, y) for x, y, _ in pts], r.color)
        for x, y, c in pts:
            svg.errbar(x, y, c.det.intervals.get("instruction_following"),
                       c.det.intervals.get("faithfulness"), r.color)
            svg.point(x, y, r.color, _tip(c), c.key[1])
        if pts:
            svg.legend(r.name[:40], r.color)
    for c in pooled:
        x, y = c.mean("instruction_following"), c.mean("faithfulness")
        if x is not None and y is not None:
            svg.errbar(x, y, c.det.intervals.get("instruction_following"),
                       c.det.intervals.get("faithfulness"), c.color)
            svg.point(x, y, c.color, _tip(c), "", hollow=True, r=8)
    if pooled:
        svg.legend("seeds pooled (hollow)", "#666")
    svg.legend("North Star", "#f2b01e", "star")
    return svg.render("Each checkpoint's macro-averaged instruction following (x) and faithfulness (y) "
                      "with 95 % bootstrap intervals over eval items.")


def _all_cks(runs: Sequence[RunData]) -> list[Checkpoint]:
    return [c for r in runs for c in r.checkpoints]


def _tip(c: Checkpoint) -> str:
    parts = [c.label]
    for cat in CATEGORIES:
        parts.append(f"{CAT_LABEL[cat]} {fmt(c.mean(cat))} {fmt_iv(c.det.intervals.get(cat))}")
    return "\n".join(parts)


def fig_scores(cks: Sequence[Checkpoint]) -> str:
    """Fig. 3: macro-averaged scores per checkpoint (before → after), with 95 % intervals."""
    cats = list(CATEGORIES)
    n = len(cks)
    width = max(620, 120 + 70 * n * len(cats) // 2)
    svg = Svg("Fig. 3 — Macro-averaged scores per checkpoint", "", "score", (0, len(cats)), (0, 1.05),
              width=min(width, 1100), x_ticks=[(i + 0.5, CAT_LABEL[c]) for i, c in enumerate(cats)])
    bw = 0.84 / max(n, 1)
    palette = [c.color if sum(1 for d in cks if d.color == c.color) == 1 else None for c in cks]
    for j, c in enumerate(cks):
        color = palette[j] or COLORS[j % len(COLORS)]
        for i, cat in enumerate(cats):
            v = c.mean(cat)
            if v is None:
                continue
            x0 = i + 0.08 + j * bw
            svg.bar(x0, x0 + bw * 0.92, v, color, f"{c.label}: {CAT_LABEL[cat]} {fmt(v)} "
                    f"{fmt_iv(c.det.intervals.get(cat))}", c.det.intervals.get(cat))
        svg.legend(c.label[:44], color, "box")
    return svg.render("Bars: each checkpoint's mean per category; whiskers: 95 % bootstrap intervals.")


def fig_gen_length(runs: Sequence[RunData]) -> str:
    """Fig. 4: mean generated length on a fixed probe set during training."""
    pts = [p for r in runs for p in r.gen_length]
    if not pts:
        return '<p class="empty">No generation-length probe was logged (train stages log it every ' \
               '<code>eval_steps</code> steps).</p>'
    xs, ys = [p[0] for p in pts], [p[1] for p in pts]
    svg = Svg("Fig. 4 — Generation length during training", "training step (stages end to end)",
              "mean generated tokens", (0, max(xs) * 1.03 or 1), (0, max(ys) * 1.15 or 1))
    for r in runs:
        svg.polyline(r.gen_length, r.color, markers=True)
        if r.gen_length:
            svg.legend(r.name[:40], r.color)
    if len(runs) == 1:
        for x, name in runs[0].boundaries:
            svg.vline(x, name)
    return svg.render("Mean length of the greedy answers to a fixed probe set, logged during training.")


def fig_length_buckets(cks: Sequence[Checkpoint]) -> str:
    """Fig. 5: faithfulness by response length relative to the reference, per checkpoint."""
    labels: list[str] = []
    for c in cks:
        for b in c.det.filled_buckets():
            if b.label not in labels:
                labels.append(b.label)
    if not labels:
        return '<p class="empty">No faithfulness-by-length data (grounded eval items with a reference).</p>'
    with_b = [c for c in cks if c.det.filled_buckets()]
    svg = Svg("Fig. 5 — Faithfulness by response length (relative to the reference)",
              "response length bucket", "faithfulness", (0, len(labels)), (0, 1.05),
              x_ticks=[(i + 0.5, lab) for i, lab in enumerate(labels)])
    bw = 0.84 / len(with_b)
    for j, c in enumerate(with_b):
        color = COLORS[j % len(COLORS)]
        for b in c.det.filled_buckets():
            i = labels.index(b.label)
            x0 = i + 0.08 + j * bw
            svg.bar(x0, x0 + bw * 0.92, b.faithfulness, color,
                    f"{c.label}: {b.label} {fmt(b.faithfulness)} {fmt_iv(b.interval)} (n = {b.n})", b.interval)
        svg.legend(c.label[:44], color, "box")
    return svg.render("Faithfulness of answers shorter than, similar to, or over 1.5× the reference "
                      "length; whiskers: 95 % bootstrap intervals.")


# ==================================================================================================
# tables and words

def diff_sentence(ref: Checkpoint, c: Checkpoint, diffs: dict[str, Diff | None]) -> str:
    parts = [diff_phrase(cat, diffs.get(cat)) for cat in CATEGORIES]
    how = "paired over shared eval items" if any(d and d.paired for d in diffs.values()) else "unpaired"
    return (f"<b>{esc(c.label)}</b> vs <b>{esc(ref.label)}</b> ({how}): " + "; ".join(esc(p) for p in parts) + ".")


def _summary_table(cks: Sequence[Checkpoint]) -> str:
    head = "".join(f"<th>{esc(CAT_LABEL[c])} [95 % CI]</th>" for c in CATEGORIES)
    rows = []
    for c in cks:
        cells = "".join(f"<td>{fmt(c.mean(cat))} <span class='ci'>{fmt_iv(c.det.intervals.get(cat))}</span></td>"
                        for cat in CATEGORIES)
        n = c.row.get("n") if c.row else len(c.det.items)
        length = fmt(c.row.get("mean_length"), 1) if c.row else "–"
        seeds = f"; per-seed faithfulness {', '.join(fmt(v) for v in c.det.seed_means.get('faithfulness', []))}" \
            if c.pooled else ""
        rows.append(f"<tr><td style='color:{c.color}'><b>{esc(c.label)}</b></td>{cells}<td>{n}</td>"
                    f"<td>{length}</td><td>{esc((c.row or {}).get('faithfulness_judge') or '–')}{esc(seeds)}</td></tr>")
    return (f"<table class='summary'><tr><th>checkpoint</th>{head}<th>eval items</th><th>mean length</th>"
            f"<th>faithfulness judge</th></tr>{''.join(rows)}</table>")


def _names(v: Any) -> str:
    if not v:
        return "–"
    return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)


def _coverage_table(runs: Sequence[RunData]) -> str:
    rows = []
    for r in runs:
        judges = r.config.get("judges") or {}
        for c in r.checkpoints:
            total = len(c.det.items) or (c.row or {}).get("n") or 0
            cells = []
            for cat in CATEGORIES:
                n = c.det.n.get(cat)
                cls = "warn" if n == 0 else ""
                cells.append(f"<td class='{cls}'>{'–' if n is None else n} of {total}</td>")
            sets = ", ".join(f"{esc(s['dataset'])} ({esc(s.get('category'))}, {s.get('n')})" for s in c.sets)
            unscored = [s["dataset"] for s in c.sets if s.get("category") == "instruction"
                        and s.get("instruction_following") is None]
            note = (f"<br><span class='warn'>instruction following not scored on {esc(', '.join(unscored))}"
                    "</span>" if unscored else "")
            rows.append(f"<tr><td>{esc(c.label)}</td>{''.join(cells)}<td>{esc(c.row.get('faithfulness_judge') or '–')}"
                        f"</td><td>{esc(_names(judges.get('task')))} / "
                        f"{esc(_names(judges.get('instruction_following')))}"
                        f"</td><td>{sets}{note}</td></tr>")
    return ("<table><tr><th>checkpoint</th>" + "".join(f"<th>{esc(CAT_LABEL[c])} scored</th>" for c in CATEGORIES)
            + "<th>faithfulness judge</th><th>task / instruction-following judges (config)</th>"
            "<th>eval sets (kind, items)</th></tr>" + "".join(rows) + "</table>")


def _selection_table(runs: Sequence[RunData]) -> str:
    rows = []
    for r in runs:
        for s in r.selections:
            p = s["policy"]
            vs = p.get("vs_reset") or {}
            ratio = (f"{vs['ratio']:.0%} of ReSet's {vs['reset_n_selected']} (threshold "
                     f"{vs['reset_threshold']})" if vs.get("ratio") is not None else "–")
            kinds = ", ".join(f"{esc(k)} {v}" for k, v in sorted(s["kinds"].items()))
            rates = ", ".join(f"{esc(k)} {v:.0%}" for k, v in sorted(s["accept_rates"].items()))
            quota = ", ".join(f"{esc(k)} ≤ {v}" for k, v in sorted((p.get("per_kind_quota") or {}).items()))
            rows.append(f"<tr><td>{esc(r.name)}</td><td>{esc(s['name'])}</td><td>{s['n_selected']}</td>"
                        f"<td>{kinds or '–'}</td><td>{rates or '–'}</td><td>{esc(p.get('threshold', '–'))}</td>"
                        f"<td>{quota or '–'}; budget {esc(p.get('budget') or 'none')}</td><td>{ratio}</td>"
                        f"<td>{esc(json.dumps(p.get('weights') or {}))}</td></tr>")
    if not rows:
        return "<p class='empty'>None of these runs has a selection.</p>"
    return ("<table><tr><th>run</th><th>selection</th><th>kept</th><th>kept per kind</th>"
            "<th>acceptance per kind</th><th>threshold</th><th>per-kind budgets; total</th>"
            "<th>size vs ReSet (same samples)</th><th>weights</th></tr>" + "".join(rows) + "</table>")


CSS = """
body { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px auto;
       max-width: 1200px; color: #222; padding: 0 16px; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 8px 0 14px; font-size: 13px; }
td, th { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } .ci { color: #666; } .warn { color: #b42318; }
.figs { display: flex; flex-wrap: wrap; gap: 14px; } .figs figure { margin: 0; }
.figs svg { border: 1px solid #eee; }
svg .tick { font-size: 11px; fill: #444; } svg .axis { font-size: 12px; fill: #222; }
svg .ptitle { font-size: 13px; font-weight: 600; fill: #222; } svg .legend { font-size: 11px; fill: #222; }
svg .plabel { font-size: 11px; font-weight: 600; } svg .ci { stroke-width: 1.3; }
.empty { color: #777; font-style: italic; } pre { background: #f7f7f7; padding: 8px; overflow: auto; }
li { margin: 4px 0; } .noise { color: #777; }
"""


def render(runs: Sequence[RunData], *, title: str = "ReSet Studio report") -> str:
    cks = [c for r in runs for c in r.checkpoints]
    pooled = pooled_experiments(runs)
    ref = reference_checkpoint(cks or pooled)
    words = []
    for r, c, diffs in comparisons(cks + pooled) + control_comparisons(cks + pooled):
        within = all(d is None or d.within_noise for d in diffs.values())
        words.append(f"<li class='{'noise' if within else ''}'>{diff_sentence(r, c, diffs)}</li>")
    now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    run_list = "".join(
        f"<li style='color:{r.color}'><b>{esc(r.name)}</b> <code>{esc(r.run['id'])}</code> — preset "
        f"{esc(r.run.get('preset'))}, {esc(r.run.get('status'))}"
        + (f", experiment <code>{esc(r.run['experiment'])}</code>" if r.run.get("experiment") else "")
        + "</li>" for r in runs)
    configs = "".join(f"<details><summary>{esc(r.name)} <code>{esc(r.run['id'])}</code></summary>"
                      f"<pre>{esc(r.run.get('config_toml') or '')}</pre></details>" for r in runs)
    method = ("Intervals: 95 % percentile bootstrap over eval items (2000 resamples, seed 0), "
              "stratified by data set for the macro means; differences are paired over the eval items "
              "both checkpoints were scored on. A difference is <i>within noise</i> when its interval "
              "contains 0. Seeds of one experiment are pooled item by item (each item's score is its "
              "mean over the seeds).")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>
<meta name="generator" content="ReSet Studio backend/report.py"><style>{CSS}</style></head>
<body>
<h1>{esc(title)}</h1>
<p>Generated {now} from the run log. {len(runs)} run(s), {len(cks)} evaluated checkpoint(s).</p>
<ul>{run_list}</ul>
<h2>Scores with 95 % intervals</h2>
{_summary_table(cks + pooled) if cks else "<p class='empty'>No evaluated checkpoints in these runs.</p>"}
<p class="ci">{method}</p>
<h2>Differences from MTL{f" ({esc(ref.label)} for runs without their own)" if ref else ""}</h2>
<ul id="differences">{''.join(words) or "<li class='empty'>Nothing to compare.</li>"}</ul>
<h2>Figures</h2>
<div class="figs">
<figure id="fig1">{fig_tradeoff(runs, pooled) if cks else ''}</figure>
<figure id="fig3">{fig_scores(cks + pooled) if cks else ''}</figure>
<figure id="fig4">{fig_gen_length(runs)}</figure>
<figure id="fig5">{fig_length_buckets(cks + pooled) if cks else ''}</figure>
</div>
<h2>Selection statistics</h2>
{_selection_table(runs)}
<h2>Judge coverage</h2>
<p>Which judge scored how many eval items of each category; a category scored on no item is red.</p>
{_coverage_table(runs)}
<h2>Configs</h2>
{configs}
</body></html>
"""


def write_report(log: RunLog, run_ids: Sequence[str], out: str | Path, *, title: str | None = None) -> Path:
    runs = load_runs(log, run_ids)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = render(runs, title=title or "ReSet Studio report: " + ", ".join(r.name for r in runs)[:120])
    out.write_text(text, encoding="utf-8")
    return out


def _diff_words(diffs: dict[str, Diff | None]) -> str:
    return "; ".join(diff_phrase(cat, diffs.get(cat)) for cat in CATEGORIES)


def render_markdown(runs: Sequence[RunData]) -> str:
    """The report's numbers as Markdown (for a lab notebook or a paper draft): each checkpoint's
    means with 95 % intervals (seeds pooled where an experiment's seeds are given), then each
    difference from the MTL reference and whether it is outside noise."""
    cks = [c for r in runs for c in r.checkpoints]
    pooled = pooled_experiments(runs)
    shown = pooled or cks
    head = " | ".join(f"{CAT_LABEL[c]} [95 % CI]" for c in CATEGORIES)
    lines = [f"| checkpoint | {head} | eval items |", "|---" * (len(CATEGORIES) + 2) + "|"]
    for c in shown:
        cells = " | ".join(f"{fmt(c.mean(cat))} {fmt_iv(c.det.intervals.get(cat))}" for cat in CATEGORIES)
        n = c.row.get("n") if c.row else len(c.det.items)
        lines.append(f"| {c.label} | {cells} | {n} |")
    pairs = comparisons(shown)
    if pairs:
        lines += ["", "Differences from MTL (paired bootstrap over shared eval items; within noise: "
                  "the 95 % interval contains 0):", ""]
        lines += [f"- {c.label} vs {ref.label}: {_diff_words(diffs)}" for ref, c, diffs in pairs]
    controls = control_comparisons(shown)
    if controls:
        lines += ["", "Against the control (as much extra training, on the original references):", ""]
        lines += [f"- {c.label} vs {ctl.label}: {_diff_words(diffs)}" for ctl, c, diffs in controls]
    if pooled:
        lines += ["", "Per-seed means (faithfulness / instruction following / task):", ""]
        for c in pooled:
            per = [c.det.seed_means.get(cat, []) for cat in CATEGORIES]
            lines.append(f"- {c.label}: " + " / ".join(", ".join(fmt(v) for v in vs) or "–" for vs in per))
    return "\n".join(lines) + "\n"
