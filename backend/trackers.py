"""Trackers: a run also reports to TensorBoard / MLflow / W&B (offline) / trackio, and a finished run
exports into the tracker a lab already has.

Two paths. While training, the Trainer's own ``report_to`` does the reporting (``report_to`` below
picks the trackers from ``[tracking]`` and points each at the run folder through the environment
variables the transformers integrations read). After a run, ``export_tensorboard`` and
``export_mlflow`` write everything the run log holds — training curves of every stage, judge
scores, selection sizes and acceptance, evaluation means with their intervals — with each
tracker's own writer. Nothing here touches the network: TensorBoard writes event files, MLflow a
local SQLite store (its file store is in maintenance mode and refuses to open by default), W&B runs
offline, trackio keeps its local database.
"""
from __future__ import annotations

import json
import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

from . import queries
from .errors import StudioError
from .eval_details import EvalDetails, with_interval
from .runlog import RunLog
from .vocab import Status

EXPERIMENT = "reset-studio"
RUN_TAG = "reset_studio.run_id"


class TrackerError(StudioError, ValueError):
    """An export that cannot be done; the message says why."""


# ---- report_to while training ---------------------------------------------------------------------
def tracker_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "trackers"


def mlflow_uri(target: str | os.PathLike) -> str:
    """A tracking URI for a folder (its mlflow.db), a .db file, or a URI given as is."""
    text = str(target)
    if "://" in text or text.startswith("file:"):
        return text
    path = Path(text).expanduser().resolve()
    if path.suffix != ".db":
        path.mkdir(parents=True, exist_ok=True)
        path = path / "mlflow.db"
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def report_to(ctx, idx: int, stage) -> list[str] | str:
    """The Trainer's ``report_to`` for a train stage, with each tracker pointed at the run folder.
    A location the user already set in the environment (MLFLOW_TRACKING_URI, WANDB_MODE, ...) wins;
    the per-stage names are always this stage's."""
    names = list(ctx.cfg.tracking.report_to)
    if not names:
        return "none"
    root = tracker_dir(ctx.run_dir)
    label = f"{idx:02d}-{stage.name}"
    env: dict[str, str] = {}
    where = []
    if "tensorboard" in names:
        env["TENSORBOARD_LOGGING_DIR"] = str(root / "tensorboard" / label)
        where.append(f"tensorboard → {env['TENSORBOARD_LOGGING_DIR']}")
    if "mlflow" in names:
        os.environ.setdefault("MLFLOW_TRACKING_URI", mlflow_uri(root / "mlflow"))
        os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", EXPERIMENT)
        env["MLFLOW_TAGS"] = json.dumps({RUN_TAG: ctx.run_id, "reset_studio.stage": label})
        where.append(f"mlflow → {os.environ['MLFLOW_TRACKING_URI']}")
    if "wandb" in names:
        os.environ.setdefault("WANDB_MODE", "offline")  # no network unless the user asked for it
        os.environ.setdefault("WANDB_DIR", str(root))
        os.environ.setdefault("WANDB_PROJECT", EXPERIMENT)
        env["WANDB_NAME"] = f"{ctx.run_id}/{label}"
        where.append(f"wandb ({os.environ['WANDB_MODE']}) → {os.environ['WANDB_DIR']}")
    if "trackio" in names:
        os.environ.setdefault("TRACKIO_DIR", str(root / "trackio"))
        where.append(f"trackio → {os.environ['TRACKIO_DIR']}")
    os.environ.update(env)
    ctx.event(idx, "reporting to " + "; ".join(where))
    return names


# ---- what a run log holds, as tracker-neutral series ----------------------------------------------
_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")


def _key(*parts: Any) -> str:
    """A metric key both trackers accept (MLflow: letters, digits, _ - . space /)."""
    return "/".join(_KEY.sub("_", str(p)) for p in parts if p not in (None, ""))


def _run(log: RunLog, run_id: str) -> dict[str, Any]:
    run = log.find_run(run_id)
    if run is None:
        raise TrackerError(f"no run {run_id!r}")
    return run


def scalar_series(log: RunLog, run: dict[str, Any]) -> Iterator[tuple[str, int, float, float]]:
    """(key, step, value, wall time) for every figure of a run: stage metrics (losses, learning
    rate, generation length, selection acceptance...), judge means per sample stage, selection
    sizes per kind, evaluation means and 95 % interval bounds per checkpoint and data set."""
    rid = run["id"]
    names = {s["idx"]: s["name"] for s in log.get_stages(rid)}
    for m in log.query("SELECT stage_idx, step, name, value, time FROM metrics WHERE run_id = ? "
                       "ORDER BY stage_idx, step, id", (rid,)):
        if m["value"] is not None:
            yield _key(names.get(m["stage_idx"], f"stage{m['stage_idx']}"), m["name"]), \
                int(m["step"] or 0), float(m["value"]), float(m["time"] or 0)
    t0 = float(run.get("created_at") or 0)
    for j in log.query(
            "SELECT s.stage_idx, sc.judge, AVG(sc.value) AS mean, COUNT(sc.value) AS n "
            "FROM scores sc JOIN samples s ON s.id = sc.sample_id WHERE sc.run_id = ? "
            "AND sc.value IS NOT NULL GROUP BY s.stage_idx, sc.judge ORDER BY s.stage_idx, sc.judge",
            (rid,)):
        stage = names.get(j["stage_idx"], f"stage{j['stage_idx']}")
        yield _key("judge", stage, j["judge"], "mean"), 0, float(j["mean"]), t0
        yield _key("judge", stage, j["judge"], "n"), 0, float(j["n"]), t0
    for sel in queries.selections(log, rid):
        at = float(sel["created_at"] or t0)
        yield _key("selection", sel["name"], "size"), 0, float(sel["n_selected"] or 0), at
        for kind, n in queries.selection_kinds(log, sel["id"]).items():
            yield _key("selection", sel["name"], "selected", kind), 0, float(n), at
    for step, e in _eval_rows(log, rid):
        at = float(e["created_at"] or t0)
        for cat in ("faithfulness", "instruction_following", "task_score", "mean_length"):
            if e.get(cat) is not None:
                yield _key("eval", e["dataset"], cat), step, float(e[cat]), at
        for cat, iv in EvalDetails.from_json(e.get("details")).intervals.items():
            yield _key("eval", e["dataset"], f"{cat}_ci95_lo"), step, iv.lo, at
            yield _key("eval", e["dataset"], f"{cat}_ci95_hi"), step, iv.hi, at


def _eval_rows(log: RunLog, rid: str) -> list[tuple[int, dict[str, Any]]]:
    """Eval rows with a step per checkpoint: its position among the run's evaluated checkpoints
    (the base model first), so a curve over steps reads base → MTL → ReSet."""
    rows = log.query("SELECT * FROM evals WHERE run_id = ? ORDER BY COALESCE(checkpoint_id, -1), "
                     "checkpoint_tag, dataset", (rid,))
    order: dict[str, int] = {}
    for r in rows:
        order.setdefault(r["checkpoint_tag"], len(order))
    return [(order[r["checkpoint_tag"]], r) for r in rows]


def eval_table(log: RunLog, rid: str) -> str:
    """The evaluation table as Markdown (step = the checkpoint's position in the curves)."""
    rows = _eval_rows(log, rid)
    if not rows:
        return "This run has no evaluation."
    lines = ["| step | checkpoint | data set | n | faithfulness | instruction following | task |",
             "|---|---|---|---|---|---|---|"]
    for step, e in rows:
        ivs = EvalDetails.from_json(e.get("details")).intervals

        def cell(cat: str) -> str:
            return "–" if e.get(cat) is None else with_interval(e[cat], ivs.get(cat))

        lines.append(f"| {step} | {e['checkpoint_tag']} | {e['dataset']} | {e['n']} | "
                     f"{cell('faithfulness')} | {cell('instruction_following')} | {cell('task_score')} |")
    return "\n".join(lines)


def judge_values(log: RunLog, rid: str) -> dict[str, list[float]]:
    """Every judge's scores (for histograms)."""
    out: dict[str, list[float]] = defaultdict(list)
    for r in log.query("SELECT judge, value FROM scores WHERE run_id = ? AND value IS NOT NULL "
                       "ORDER BY id", (rid,)):
        out[r["judge"]].append(float(r["value"]))
    return dict(out)


def _params(run: dict[str, Any]) -> dict[str, str]:
    cfg = queries.config_dict(run.get("config_toml"))
    params = {"preset": run.get("preset") or "", "seed": str(cfg.get("seed", "")),
              "model.base": str((cfg.get("model") or {}).get("base", "")),
              "data": ",".join(d.get("name", "") for d in cfg.get("data") or []),
              "stages": ",".join(f"{s.get('name')}:{s.get('type')}" for s in cfg.get("stages") or [])}
    for i, st in enumerate(cfg.get("stages") or []):
        for k, v in st.items():
            if k not in ("name", "type") and isinstance(v, (int, float, str, bool)):
                params[_key(f"stage{i}.{st.get('name')}.{k}")] = str(v)[:500]
    return params


# ---- exports --------------------------------------------------------------------------------------
def _run_label(run: dict[str, Any]) -> str:
    return _KEY.sub("_", run["id"]).replace(" ", "_")


def export_tensorboard(log: RunLog, run_id: str, out: str | os.PathLike) -> Path:
    """Event files under ``out/<run id>/`` (``tensorboard --logdir out``): every scalar series,
    a histogram of each judge's scores, the config and the evaluation table as text."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:  # tensorboard missing
        raise TrackerError(f"TensorBoard export needs the tensorboard package ({exc}); "
                           "pip install 'reset-studio[trackers]'") from None
    run = _run(log, run_id)
    target = Path(out) / _run_label(run)
    if target.exists() and any(target.iterdir()):
        raise TrackerError(f"{target} already holds an export; choose another --out")
    writer = SummaryWriter(log_dir=str(target))
    try:
        n = 0
        for key, step, value, wall in scalar_series(log, run):
            writer.add_scalar(key, value, global_step=step, walltime=wall or None)
            n += 1
        for judge, values in judge_values(log, run["id"]).items():
            import numpy as np

            writer.add_histogram(_key("judge", judge, "scores"), np.asarray(values), global_step=0)
        writer.add_text("evaluation", eval_table(log, run["id"]), global_step=0)
        writer.add_text("config", "```toml\n" + (run.get("config_toml") or "") + "\n```", global_step=0)
        if n == 0:
            raise TrackerError(f"run {run['id']} has nothing to export yet (no metrics, scores or evals)")
    finally:
        writer.close()
    return target


def export_mlflow(log: RunLog, run_id: str, out: str | os.PathLike) -> str:
    """One MLflow run (experiment "reset-studio") in the store at ``out`` (a folder, a .db file or
    a tracking URI) with every scalar series as metric histories, the config as params and
    artifacts, and the evaluation table as a text artifact. Returns the MLflow run id."""
    try:
        from mlflow.entities import Metric, Param, RunTag
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        raise TrackerError(f"MLflow export needs the mlflow-skinny package ({exc}); "
                           "pip install 'reset-studio[trackers]'") from None
    run = _run(log, run_id)
    uri = mlflow_uri(out)
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name(EXPERIMENT)
    if exp is None:
        artifacts = (Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"
                     if uri.startswith("sqlite:///") else None)
        exp_id = client.create_experiment(EXPERIMENT, artifact_location=artifacts.as_uri()
                                          if artifacts else None)
    else:
        exp_id = exp.experiment_id
    done = client.search_runs([exp_id], filter_string=f"tags.`{RUN_TAG}` = '{run['id']}'")
    if done:
        raise TrackerError(f"run {run['id']} is already in {uri} as MLflow run "
                           f"{done[0].info.run_id}")
    start = int(float(run.get("created_at") or 0) * 1000) or None
    ml = client.create_run(exp_id, run_name=run.get("name") or run["id"], start_time=start,
                           tags={RUN_TAG: run["id"], "reset_studio.preset": run.get("preset") or "",
                                 "reset_studio.status": run.get("status") or ""})
    rid = ml.info.run_id
    metrics = [Metric(key, value, int(wall * 1000), step)
               for key, step, value, wall in scalar_series(log, run)]
    if not metrics:
        client.delete_run(rid)
        raise TrackerError(f"run {run['id']} has nothing to export yet (no metrics, scores or evals)")
    params = [Param(k, v) for k, v in _params(run).items()]
    for i in range(0, max(len(metrics), len(params)), 900):  # MLflow takes 1000 entries a batch
        client.log_batch(rid, metrics=metrics[i:i + 900], params=params[i:i + 90] if i == 0 else [],
                         tags=[RunTag("mlflow.note.content", f"ReSet Studio run {run['id']}")] if i == 0 else [])
    for i in range(90, len(params), 90):
        client.log_batch(rid, params=params[i:i + 90])
    client.log_text(rid, eval_table(log, run["id"]), "evaluation.md")
    client.log_text(rid, run.get("config_toml") or "", "config.toml")
    status = {Status.SUCCEEDED: "FINISHED", Status.FAILED: "FAILED", Status.DIED: "FAILED",
              Status.CANCELLED: "KILLED"}.get(run.get("status") or "", "FINISHED")
    end = int(float(run.get("ended_at") or run.get("updated_at") or 0) * 1000) or None
    client.set_terminated(rid, status=status, end_time=end)
    return rid
