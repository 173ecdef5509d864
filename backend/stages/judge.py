"""Judge stage: score every sample of a sample stage with the configured judges.

Per sample it writes one ``scores`` row per judge that applies (value not None), one row per
category score (``cat:task``, ``cat:faithfulness``, ``cat:instruction_following``; category = the
category) and one ``combined`` row (category ``combined``; value NULL when nothing applies) whose
details hold the weights, the categories it covered, the faithfulness judge that ran and any
judge errors. The ``combined`` row is written in the same transaction as the others and marks the
sample as judged, so a resumed stage scores exactly the samples that have none.
"""
from __future__ import annotations

import time
from typing import Any

from ..config import JudgeSpec, JudgeStage, RunConfig
from ..queries import unjudged_samples
from ..records import Record, record_from_prompt
from ..vocab import CATEGORY_ROWS
from .context import StageContext


# ---- shared with the evaluate stage and judge_file ------------------------------------------------
def judge_settings(spec: JudgeSpec) -> dict[str, Any]:
    """JudgeSpec -> the settings dict backend.judges expects (no secrets: only the env var name)."""
    settings: dict[str, Any] = {}
    if spec.nli_model:
        settings["nli_model"] = spec.nli_model
    if spec.llm_endpoint is not None and spec.llm_endpoint.base_url:
        ep = spec.llm_endpoint
        settings["llm_judge"] = {"base_url": ep.base_url, "model": ep.model or "default",
                                 "api_key_env": ep.api_key_env, "timeout": ep.timeout_s}
    if spec.llm_judge is not None:  # a local model folder (the config allows one or the other)
        settings["llm_judge"] = spec.llm_judge.model_dump()
    return settings


def judge_names(spec: JudgeSpec) -> list[str]:
    names = [*spec.task, "faithfulness" if spec.faithfulness == "auto" else spec.faithfulness,
             *spec.instruction_following]
    endpoint = spec.llm_endpoint is not None and spec.llm_endpoint.base_url
    if (endpoint or spec.llm_judge is not None) and "llm_judge" not in names:
        names.append("llm_judge")
    return names


def if_coverage_note(judges: dict[str, Any], data: list[dict[str, Any]]) -> str:
    """Which instruction prompts of a mixture get an instruction-following score, from a (draft)
    config's judges and data tables, before any run: IFEval checks score only prompts that carry
    an instruction_id_list; free-form instructions (Alpaca, ShareGPT) need an LLM judge."""
    from ..data import FORMATS

    spec = {**JudgeSpec().model_dump(), **(judges or {})}
    weight = float((spec.get("weights") or {}).get("instruction_following", 0.0) or 0.0)
    names = list(spec.get("instruction_following") or [])
    ep = spec.get("llm_endpoint") or {}
    local = spec.get("llm_judge") or {}
    if weight <= 0:
        return "IF: weight 0, so instruction following is not in the combined score."
    if "llm_judge" in names or (isinstance(ep, dict) and ep.get("base_url")) \
            or (isinstance(local, dict) and local.get("model_path")):
        return "IF: the LLM judge scores every prompt" + (
            "; IFEval checks too where a prompt carries them." if "ifeval" in names else ".")
    checked, partial, unscored = [], [], []
    for d in data or []:
        fmt = d.get("format", "auto")
        kind = d.get("kind") or (FORMATS.get(fmt) or (None, {}))[0]
        if kind != "instruction":
            continue
        label = str(d.get("name", "?")) + (f" ({d['budget']} prompts)" if d.get("budget") else "")
        (checked if fmt == "ifeval" else partial if fmt in ("records", "custom", "auto")
         else unscored).append(label)
    if "ifeval" not in names:
        unscored, checked, partial = checked + partial + unscored, [], []
    if not (checked or partial or unscored):
        return "IF: no instruction data in the mixture."
    parts = [] if "ifeval" in names else ["no IF judge configured"]
    if checked:
        parts.append(f"IFEval only, {', '.join(checked)}")
    if partial:
        parts.append(f"only rows with an instruction_id_list: {', '.join(partial)}")
    if unscored:
        what = "free-form instructions" if "ifeval" in names else "instructions"
        parts.append(f"{what} unscored: {', '.join(unscored)}")
    return "IF: " + "; ".join(parts) + "."


def make_judges(cfg: RunConfig) -> list:
    from ..judges import build_judges

    return build_judges(judge_names(cfg.judges), judge_settings(cfg.judges))


def faithfulness_info(judges: list) -> dict[str, Any]:
    for j in judges:
        if j.category == "faithfulness":
            return {"judge": j.name, "selection": getattr(j, "selection_note", None)
                    or "configured explicitly"}
    return {"judge": None, "selection": "no faithfulness judge configured"}


def score_rows(run_id: str, sample_ids: list[int], records: list[Record], responses: list[str],
               judges: list, weights: dict[str, float], faith: dict[str, Any]) -> list[dict[str, Any]]:
    """Judge a batch and return the ``scores`` rows to write."""
    from ..judges import score_records
    from ..scoring import uncovered

    by_name = {j.name: j for j in judges}
    results = score_records(judges, records, responses, weights)
    rows: list[dict[str, Any]] = []
    for sid, rec, res in zip(sample_ids, records, results):
        errors = {}
        for name, value in res["scores"].items():
            details = res["details"].get(name) or {}
            if value is None:
                if isinstance(details, dict) and details.get("error"):
                    errors[name] = details["error"]
                continue
            rows.append({"run_id": run_id, "sample_id": sid, "judge": name,
                         "category": by_name[name].category, "value": float(value),
                         "details": details})
        cats = res["category_scores"]
        for cat, row_name in CATEGORY_ROWS.items():
            if cats.get(cat) is not None:
                rows.append({"run_id": run_id, "sample_id": sid, "judge": row_name,
                             "category": cat, "value": float(cats[cat]), "details": None})
        combined = cats.get("combined")
        rows.append({"run_id": run_id, "sample_id": sid, "judge": "combined",
                     "category": "combined",
                     "value": None if combined is None else float(combined),
                     "details": {"weights": weights, "covered": res["covered"],
                                 "uncovered": uncovered(cats, weights, rec.kind),
                                 "faithfulness_judge": faith["judge"],
                                 **({"errors": errors} if errors else {})}})
    return rows


def prompt_batches(pending: list[dict[str, Any]], batch_size: int) -> list[list[dict[str, Any]]]:
    """Batches of about ``batch_size`` samples that never split a prompt's candidates. Samples
    are stored one decoding at a time; a batch holding all of a prompt's candidates lets a judge
    read that prompt's context once for them (faith_lm shares its cache)."""
    by_prompt: dict[str, list[dict[str, Any]]] = {}
    for b in sorted(pending, key=lambda b: b["sample_id"]):
        by_prompt.setdefault(b["key"], []).append(b)
    batches: list[list[dict[str, Any]]] = [[]]
    for group in by_prompt.values():  # prompts in the order their first candidate was sampled
        if batches[-1] and len(batches[-1]) + len(group) > batch_size:
            batches.append([])
        batches[-1].extend(group)
    return [b for b in batches if b]


def judge_pending(ctx: StageContext, idx: int, sample_stage_idx: int, judges: list,
                  batch_size: int, *, pending: list[dict[str, Any]] | None = None, done0: int = 0,
                  total: int | None = None, label: str = "judging", on_batch=None) -> int:
    """Score every unjudged sample of ``sample_stage_idx``; returns how many were scored.
    Progress goes to the stage row (done0 + scored of total), or to ``on_batch(scored)``."""
    weights = dict(ctx.cfg.judges.weights)
    faith = faithfulness_info(judges)
    if pending is None:
        pending = unjudged_samples(ctx.log, ctx.run_id, sample_stage_idx)
    done = 0
    for batch in prompt_batches(pending, batch_size):
        rows = score_rows(ctx.run_id, [b["sample_id"] for b in batch],
                          [record_from_prompt(b) for b in batch], [b["text"] or "" for b in batch],
                          judges, weights, faith)
        ctx.log.add_scores(rows)
        done += len(batch)
        if on_batch is not None:
            on_batch(done)
        else:
            ctx.progress(idx, done0 + done, total,
                         f"{label} {done0 + done}" + (f"/{total}" if total else ""))
        ctx.check_stop()
    return done


# ---- stage ------------------------------------------------------------------------------------
def run(ctx: StageContext, idx: int, stage: JudgeStage) -> None:
    j = ctx.cfg.resolve_ref(idx, stage.samples, "sample")
    if j is None:
        raise ValueError(f"stage {stage.name}: no sample stage {stage.samples!r} before it")
    ctx.progress(idx, 0, None, "building judges", force=True)
    judges = make_judges(ctx.cfg)
    faith = faithfulness_info(judges)
    ctx.event(idx, f"judges: {', '.join(jd.name for jd in judges)}; faithfulness judge: "
                   f"{faith['judge']} ({faith['selection']})",
              details={"judges": [{"name": jd.name, "category": jd.category} for jd in judges],
                       "faithfulness_judge": faith["judge"], "selection": faith["selection"],
                       "weights": dict(ctx.cfg.judges.weights)})
    total = ctx.log.count("samples", run_id=ctx.run_id, stage_idx=j)
    if total == 0:
        raise ValueError(f"stage {stage.name}: sample stage {ctx.cfg.stages[j].name!r} has no samples")
    t0 = time.time()
    pending = unjudged_samples(ctx.log, ctx.run_id, j)
    done0 = total - len(pending)
    if done0:
        ctx.event(idx, f"resuming: {done0} of {total} samples already judged")
    n = judge_pending(ctx, idx, j, judges, stage.batch_size, pending=pending, done0=done0,
                      total=total)
    dt = time.time() - t0
    if n:
        ctx.log.log_metrics(ctx.run_id, idx, 0, {"judged_per_s": n / max(dt, 1e-6)})
    warn_uncovered(ctx, idx, j, dict(ctx.cfg.judges.weights))
    ctx.progress(idx, total, total, f"judged {total} samples", force=True)


def warn_uncovered(ctx: StageContext, idx: int, sample_stage_idx: int,
                   weights: dict[str, float], arrays=None) -> dict[str, Any]:
    """A warning event naming the kinds whose combined score lacks a weighted category (never
    silent); returns the gaps (scoring.uncovered_by_kind)."""
    from .. import scoring
    from ..queries import candidates

    if arrays is None:
        arrays = scoring.CandidateArrays(candidates(ctx.log, ctx.run_id, sample_stage_idx))
    gaps = scoring.uncovered_by_kind(arrays, weights)
    if gaps:
        ctx.event(idx, scoring.uncovered_message(gaps, weights), level="warning",
                  details={"uncovered": gaps, "weights": weights})
    return gaps
