"""Evaluate stage: greedy generation on the held-out eval sets, judged, per checkpoint.

Checkpoints are the final checkpoints of the train stages named in ``stage.checkpoints`` (default:
every train stage before this one), plus the base model (tag ``base``) when ``include_base``.
Generations are stored as prompts/samples/scores of this stage (prompt key
``"<checkpoint_tag>|<record id>"``, so the inspector can show a checkpoint's answers) and summarised
in ``evals``: one row per (checkpoint, data set) and one ``_all`` row per checkpoint — faithfulness
macro-averaged over the grounded sets, instruction following over the instruction sets, task score
over all sets: the points of the trade-off plot. Every row's ``details`` is an ``EvalDetails``
(backend/eval_details.py): means, per-item scores, 95 % bootstrap intervals, length buckets.
A checkpoint whose ``_all`` row exists is skipped, and within a checkpoint only missing generations
and scores are redone, so the stage resumes.
"""
from __future__ import annotations

import dataclasses
import gc
import json
import time
from typing import Any

from .. import queries
from ..config import EvaluateStage
from ..data import chat_messages, eval_sets, user_message
from ..eval_details import ALL, EvalDetails, ItemScores, LengthBucket
from ..judges.faithfulness import release_models
from ..records import Record
from ..stats import METHOD, bootstrap_ci, summarize_by_dataset
from .context import StageContext
from .judge import faithfulness_info, judge_pending, make_judges, unjudged_samples

LONGER_FACTOR = 1.5


def checkpoint_plan(ctx: StageContext, idx: int, stage: EvaluateStage) -> list[tuple[str, str, int | None]]:
    """(tag, model ref, checkpoint row id) for each checkpoint to evaluate, base first."""
    plan: list[tuple[str, str, int | None]] = []
    if stage.include_base:
        plan.append(("base", ctx.cfg.model.base, None))
    names = stage.checkpoints or [st.name for st in ctx.cfg.stages[:idx] if st.type == "train"]
    for name in names:
        try:
            j = ctx.cfg.stage_index(name)
        except KeyError:
            raise ValueError(f"stage {stage.name}: checkpoints names {name!r}, which is not a stage "
                             "of this run") from None
        if ctx.cfg.stages[j].type != "train":
            raise ValueError(f"stage {stage.name}: {name!r} is a {ctx.cfg.stages[j].type} stage, "
                             "not a train stage")
        ref = ctx.model_ref_for(idx, name)
        ck = ctx.log.find_checkpoint(ctx.run_id, name)
        plan.append((name, ref, ck["id"] if ck else None))
    if not plan:
        raise ValueError(f"stage {stage.name}: nothing to evaluate (no train stage before it and "
                         "include_base = false)")
    return plan


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


_CAT_COLUMNS = {"faithfulness": "faithfulness", "instruction_following": "instruction_following",
                "task_score": "task", "combined": "combined"}
_ROW_MEANS = ("faithfulness", "instruction_following", "task_score")  # the evals columns


def item_scores(it: dict[str, Any]) -> ItemScores:
    return ItemScores(dataset=it["dataset"] or "?", kind=it["kind"],
                      faithfulness=it["faithfulness"],
                      instruction_following=it["instruction_following"], task_score=it["task"],
                      combined=it["combined"], n_tokens=it["n_tokens"], ref_tokens=it.get("ref_tokens"))


def _length_split(items: list[dict[str, Any]]) -> list[LengthBucket]:
    """Faithfulness by response length relative to the reference (the paper's Fig. 5)."""
    buckets: dict[str, list[float]] = {"shorter": [], "similar": [], "longer_1.5x": []}
    for it in items:
        f, ref = it["faithfulness"], it.get("ref_tokens")
        if f is None or not ref:
            continue
        n = it["n_tokens"] or 0
        buckets["shorter" if n < ref else "longer_1.5x" if n > LONGER_FACTOR * ref
                else "similar"].append(f)
    return [LengthBucket(k, len(v), _mean(v), bootstrap_ci([v])) for k, v in buckets.items()]


def ifeval_summary(items: list[dict[str, Any]]) -> dict[str, Any]:
    """IFEval's prompt- and instruction-level strict and loose accuracies over the items the
    ifeval judge checked (its stored details); empty when it checked none."""
    from ..judges.base import JudgeResult
    from ..judges.instruction import ifeval_accuracies

    checked = [d for it in items if it.get("ifeval")
               and isinstance(d := json.loads(it["ifeval"]), dict) and d.get("checks")]
    if not checked:
        return {}
    return ifeval_accuracies([JudgeResult(d.get("strict"), d) for d in checked])


def summarize(items: list[dict[str, Any]], kind: str | None = None) -> dict[str, Any]:
    """Means and 95 % intervals over one data set's items (dicts with faithfulness,
    instruction_following, task, combined, n_tokens, ref_tokens, finish_reason, key, ifeval)."""
    det = EvalDetails(kind=kind, bootstrap=dict(METHOD), items={it["key"]: item_scores(it) for it in items},
                      truncated_rate=_mean([1.0 if i["finish_reason"] == "length" else 0.0
                                            for i in items]),
                      length_buckets=_length_split(items), ifeval=ifeval_summary(items))
    for cat, col in _CAT_COLUMNS.items():
        vals = [i[col] for i in items if i[col] is not None]
        det.means[cat] = _mean(vals)
        det.n[cat] = len(vals)
        iv = bootstrap_ci([vals])
        if iv is not None:
            det.intervals[cat] = iv
    return _row_means(items, det)


def _row_means(items: list[dict[str, Any]], det: EvalDetails) -> dict[str, Any]:
    """The summary columns of an evals row."""
    return {"n": len(items), **{k: det.means[k] for k in _ROW_MEANS},
            "mean_length": _mean([float(i["n_tokens"] or 0) for i in items]), "details": det}


def summarize_all(items: list[dict[str, Any]], per_set: dict[str, dict[str, Any]]) -> EvalDetails:
    """A checkpoint's ``_all`` details: each category macro-averaged over the data sets whose kind
    it covers (CATEGORY_KINDS), with a bootstrap stratified by data set."""
    pooled = summarize(items, ALL)["details"]
    det = EvalDetails(kind=ALL, items=pooled.items, length_buckets=pooled.length_buckets,
                      truncated_rate=pooled.truncated_rate, datasets=per_set, bootstrap=dict(METHOD),
                      ifeval=pooled.ifeval,  # over every checked prompt, as IFEval reports it
                      aggregation="faithfulness: macro mean over grounded sets; instruction_following: "
                                  "mean over instruction sets; task_score and combined: mean over "
                                  "sets; intervals: " + METHOD["method"])
    summarize_by_dataset(det, _CAT_COLUMNS)
    return det


def eval_rows(ctx: StageContext, idx: int, tag: str, checkpoint_id: int | None,
              faith_judge: str | None) -> list[dict[str, Any]]:
    """The evals rows of one checkpoint, from what is stored; details are ``EvalDetails`` JSON."""
    prefix = f"{tag}|"
    items = queries.eval_items(ctx.log, ctx.run_id, idx, tag)
    for it in items:
        params = json.loads(it["params"]) if it["params"] else {}
        it["ref_tokens"] = params.get("ref_tokens")
        it["key"] = it["key"][len(prefix):]  # the eval item key, the same for every checkpoint
    by_set: dict[str, list[dict[str, Any]]] = {}
    for it in items:
        by_set.setdefault(it["dataset"] or "?", []).append(it)
    base = {"run_id": ctx.run_id, "stage_idx": idx, "checkpoint_id": checkpoint_id,
            "checkpoint_tag": tag, "faithfulness_judge": faith_judge}
    rows = []
    per_set: dict[str, dict[str, Any]] = {}
    for name, its in sorted(by_set.items()):
        kinds = [i["kind"] for i in its]
        kind = max(set(kinds), key=kinds.count)
        s = summarize(its, kind)
        per_set[name] = {"kind": kind, **{k: s[k] for k in ("n", *_ROW_MEANS, "mean_length")}}
        rows.append({**base, "dataset": name, "category": kind, **s,
                     "details": s["details"].to_json()})
    det = summarize_all(items, per_set)
    rows.append({**base, "dataset": ALL, "category": ALL, **_row_means(items, det),
                 "details": det.to_json()})
    return rows


def _n_tokens(tok, text: str | None) -> int | None:
    return len(tok(text, add_special_tokens=False)["input_ids"]) if text else None


def _free(model) -> None:
    del model
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # noqa: BLE001
        pass


def run(ctx: StageContext, idx: int, stage: EvaluateStage) -> None:
    from ..samplers import make_sampler
    from ..config import DecodingSpec

    ctx.progress(idx, 0, None, "loading eval sets", force=True)
    plan = checkpoint_plan(ctx, idx, stage)
    sets = eval_sets(ctx.cfg.data, size=stage.eval_size)
    if not sets:
        raise ValueError(f"stage {stage.name}: the mixture has no held-out eval records "
                         "(set eval_source or eval_fraction on a data set)")
    records: list[Record] = [r for recs in sets.values() for r in recs]
    judges = make_judges(ctx.cfg)
    faith = faithfulness_info(judges)
    ctx.event(idx, f"evaluating {', '.join(t for t, _, _ in plan)} on {len(records)} held-out "
                   f"prompts from {', '.join(sets)}; faithfulness judge: {faith['judge']} "
                   f"({faith['selection']})",
              details={"checkpoints": [t for t, _, _ in plan], "datasets": {k: len(v) for k, v in sets.items()},
                       "faithfulness_judge": faith["judge"], "selection": faith["selection"]})
    greedy = DecodingSpec(name="greedy", temperature=0.0)
    total = len(plan) * len(records)
    done = 0
    for tag, ref, ck_id in plan:
        if ctx.log.count("evals", run_id=ctx.run_id, checkpoint_tag=tag, dataset=ALL):
            done += len(records)
            ctx.event(idx, f"{tag}: already evaluated; skipped")
            continue
        tagged = [dataclasses.replace(r, id=f"{tag}|{r.id}") for r in records]
        key_to_id = ctx.log.add_prompts(ctx.run_id, idx, tagged)
        have = {p for p, c in queries.sample_keys(ctx.log, ctx.run_id, idx) if c == 0}
        pending = [r for r in tagged if key_to_id[r.id] not in have]
        done += len(tagged) - len(pending)
        if pending:
            ctx.progress(idx, done, total, f"{tag}: loading {ref}", force=True)
            t0 = time.time()
            release_models()  # the judges' LM must not sit beside the checkpoint being generated with
            model, tok = ctx.load_model(ref)
            sampler = make_sampler("hf", model=model, tokenizer=tok,
                                   max_new_tokens=stage.max_new_tokens, batch_size=stage.batch_size)
            pending.sort(key=lambda r: len(user_message(r)))
            n_gen = 0
            try:
                for k in range(0, len(pending), sampler.chunk_size):
                    chunk = pending[k:k + sampler.chunk_size]
                    outs = sampler.generate([chat_messages(r) for r in chunk], greedy, [0] * len(chunk))
                    ctx.log.add_samples([
                        {"run_id": ctx.run_id, "stage_idx": idx, "prompt_id": key_to_id[r.id],
                         "cand_idx": 0, "decoding": "greedy",
                         "params": {**sampler.params(greedy), "checkpoint": tag,
                                    "dataset": r.source, "ref_tokens": _n_tokens(tok, r.reference)},
                         "seed": 0, "text": g.text, "n_tokens": g.n_tokens,
                         "finish_reason": g.finish_reason} for r, g in zip(chunk, outs)])
                    done += len(chunk)
                    n_gen += len(chunk)
                    ctx.progress(idx, done, total, f"{tag}: generated {done}/{total}")
                    ctx.check_stop()
            finally:
                sampler.close()
                _free(model)
            ctx.event(idx, f"{tag}: {n_gen} greedy generations in {time.time() - t0:.1f} s")
        ctx.progress(idx, done, total, f"{tag}: judging", force=True)
        pending_scores = unjudged_samples(ctx.log, ctx.run_id, idx)
        n_judge = len(pending_scores)
        judge_pending(ctx, idx, idx, judges, max(stage.batch_size, 16), pending=pending_scores,
                      on_batch=lambda n: ctx.progress(idx, done, total,
                                                      f"{tag}: judged {n}/{n_judge}"))
        rows = eval_rows(ctx, idx, tag, ck_id, faith["judge"])
        ctx.log.add_evals(rows)
        summary = rows[-1]
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        ctx.event(idx, f"{tag}: faithfulness {fmt(summary['faithfulness'])}, instruction following "
                       f"{fmt(summary['instruction_following'])}, task {fmt(summary['task_score'])}, "
                       f"mean length {summary['mean_length'] or 0:.1f} tokens",
                  details={k: summary[k] for k in ("faithfulness", "instruction_following",
                                                    "task_score", "mean_length", "n")})
        ife = EvalDetails.from_json(summary["details"]).ifeval
        if ife.get("n_prompts"):
            ctx.event(idx, f"{tag}: IFEval on {ife['n_prompts']} prompts: prompt-level strict "
                           f"{ife['prompt_strict']:.3f}, loose {ife['prompt_loose']:.3f}; "
                           f"instruction-level ({ife['n_instructions']}) strict "
                           f"{ife['instruction_strict']:.3f}, loose {ife['instruction_loose']:.3f}",
                      details={"ifeval": ife})
        ctx.check_stop()
    ctx.progress(idx, total, total, f"evaluated {len(plan)} checkpoint(s)", force=True)
