"""Sample stage: draw several candidate responses per trained prompt with several decoding settings.

Prompts are the records the starting checkpoint was trained on (the train stage named by
``stage.prompts``, else ``stage.source``, its examples rebuilt with the same seed), deduplicated by record id, optionally
restricted to ``stage.data`` and capped per kind by ``stage.budget_per_kind`` (the first N of each
kind in a seeded order). Candidates are numbered by their position in the flattened list
"decoding setting x n" (a greedy setting yields one candidate: its copies would be identical); each
candidate's seed is a hash of (stage seed, prompt key, candidate index), so a sample depends on its
own seed only. Samples are written after every batch; a resumed stage draws only the
(prompt, candidate) pairs that are missing.
"""
from __future__ import annotations

import hashlib
import math
import time
from collections import Counter

from ..config import DecodingSpec, SampleStage
from ..data import build_mixture, chat_messages, user_message
from ..queries import sample_keys, sample_totals
from ..records import Record
from .context import StageContext


def candidate_seed(stage_seed: int, key: str, cand_idx: int) -> int:
    """A 31-bit seed from (stage seed, prompt key, candidate index): stable across machines."""
    digest = hashlib.sha256(f"{stage_seed}|{key}|{cand_idx}".encode()).hexdigest()
    return int(digest[:8], 16) & 0x7FFFFFFF


def candidate_plan(decoding: list[DecodingSpec]) -> list[tuple[int, DecodingSpec]]:
    """(cand_idx, setting) for every candidate, in the flattened order decoding x n."""
    return list(enumerate(d for d in decoding for _ in range(1 if d.greedy else d.n)))


def _seeded_order(records: list[Record], seed: int) -> list[Record]:
    return sorted(records, key=lambda r: hashlib.sha1(f"{seed}|{r.id}".encode()).hexdigest())


def prompt_records(ctx: StageContext, idx: int, stage: SampleStage) -> list[Record]:
    """The prompts to sample: trained-on records, deduplicated, filtered and budgeted."""
    from .train import training_examples

    train_idx = None
    ref = stage.prompts or stage.source  # a later ReSet round: MTL's prompts, its latest model
    if not ref.startswith("run:"):
        train_idx = ctx.cfg.resolve_ref(idx, ref, "train")
    if train_idx is not None:
        records = [r for r, _ in training_examples(ctx, train_idx, ctx.cfg.stages[train_idx])]
    else:  # the base model or another run's checkpoint: the prompts of this run's mixture
        records = build_mixture(ctx.cfg.data, ctx.seed_for(idx), names=stage.data or None)
    if stage.data:
        records = [r for r in records if r.source in stage.data]
    unique = {r.id: r for r in reversed(records)}  # the first of each id wins; order is re-drawn
    ordered = _seeded_order(list(unique.values()), ctx.seed_for(idx))
    if stage.budget_per_kind:
        taken: Counter[str] = Counter()
        kept = []
        for r in ordered:
            if taken[r.kind] < stage.budget_per_kind.get(r.kind, math.inf):
                taken[r.kind] += 1
                kept.append(r)
        ordered = kept
    return ordered


def build_stage_sampler(ctx: StageContext, idx: int, stage: SampleStage, model_ref: str):
    from ..samplers import make_sampler

    if stage.backend == "hf":
        return make_sampler("hf", max_new_tokens=stage.max_new_tokens, batch_size=stage.batch_size,
                            load=lambda: ctx.load_model(model_ref))
    if stage.backend == "vllm":
        from ..models import resolve_model
        from ..samplers.vllm_backend import vllm_unavailable_reason
        from ..samplers import SamplerError

        why = vllm_unavailable_reason()
        if why:
            raise SamplerError(why)
        resolved = resolve_model(model_ref, allow_unsafe_weights=ctx.cfg.model.allow_unsafe_weights,
                                 trust_remote_code=ctx.cfg.model.trust_remote_code,
                                 revision=ctx.cfg.model.revision,
                                 checkpoint_lookup=ctx.log.find_checkpoint)
        return make_sampler("vllm", max_new_tokens=stage.max_new_tokens,
                            batch_size=stage.batch_size, resolved=resolved,
                            dtype=ctx.cfg.model.dtype,
                            tensor_parallel_size=max(1, ctx.cfg.compute.gpus_per_process))
    return make_sampler("openai", max_new_tokens=stage.max_new_tokens, batch_size=stage.batch_size,
                        endpoint=stage.endpoint)


def run(ctx: StageContext, idx: int, stage: SampleStage) -> None:
    from ..compute import shard, stage_processes

    part = shard()  # (rank, world) inside a shard process: sample its batches, report nothing
    rank, world = part or (0, 1)
    quiet = part is not None
    if not quiet:
        ctx.progress(idx, 0, None, "collecting prompts", force=True)
    records = prompt_records(ctx, idx, stage)
    if not records:
        raise ValueError(f"stage {stage.name}: no prompts to sample (check data / budget_per_kind)")
    key_to_id = (ctx.log.prompt_ids(ctx.run_id, idx) if quiet
                 else ctx.log.add_prompts(ctx.run_id, idx, records))
    plan = candidate_plan(stage.decoding)
    greedy_many = [d.name for d in stage.decoding if d.greedy and d.n > 1]
    if greedy_many and not quiet:
        ctx.event(idx, f"greedy settings {greedy_many} draw one candidate each (greedy copies "
                       "would be identical)", level="warning")
    total = len(records) * len(plan)
    have = sample_keys(ctx.log, ctx.run_id, idx)
    stage_seed = ctx.seed_for(idx)
    # jobs grouped by sampling parameters (one generate call needs one temperature / top_p)
    groups: dict[tuple[float, float], list[tuple[Record, int, int, DecodingSpec]]] = {}
    for cand_idx, d in plan:
        key = (d.temperature, 1.0 if d.greedy else d.top_p)
        for r in records:
            # every job, done or not: batches must be the same ones an uninterrupted run forms,
            # so a resumed stage reproduces the remaining samples bit for bit
            groups.setdefault(key, []).append((r, key_to_id[r.id], cand_idx, d))
    pending = sum(1 for jobs in groups.values() for _, pid, c, _ in jobs if (pid, c) not in have)
    done = total - pending
    kinds = dict(Counter(r.kind for r in records))
    if not quiet:
        ctx.event(idx, f"{len(records)} prompts ({', '.join(f'{k}: {n}' for k, n in sorted(kinds.items()))})"
                       f" x {len(plan)} candidates = {total} samples; {done} already there",
                  details={"prompts_per_kind": kinds, "candidates": len(plan),
                           "backend": stage.backend,
                           "decoding": [d.model_dump() for d in stage.decoding]})
        ctx.progress(idx, done, total, "loading model" if pending else "done", force=True)
    if not pending:
        return
    nproc = stage_processes(ctx.cfg, stage)
    if not quiet and nproc > 1:
        _run_sharded(ctx, idx, nproc, total)
        return
    if stage.backend == "openai":  # the endpoint serves the model; `source` only names the prompts
        model_ref = f"{stage.endpoint.base_url} ({stage.endpoint.model or 'default'})" \
            if stage.endpoint else "?"
    else:
        model_ref = ctx.model_ref_for(idx, stage.source)
    sampler = build_stage_sampler(ctx, idx, stage, model_ref)
    if not quiet:
        ctx.event(idx, f"sampling from {model_ref} with the {sampler.name} backend")
    t_start = time.time()
    generated = tokens = 0
    try:
        offset = 0  # position of the group's first job in the stage: the metrics' step
        batch_no = -1  # batches are numbered over the whole stage; shard r takes b % world == r
        for (temp, top_p), jobs in groups.items():
            if sampler.name == "hf":  # similar lengths share a batch: less padding
                jobs.sort(key=lambda j: len(user_message(j[0])))
            step = sampler.chunk_size
            for k in range(0, len(jobs), step):
                chunk = jobs[k:k + step]
                batch_no += 1
                if batch_no % world != rank:
                    continue
                if all((pid, c) in have for _, pid, c, _ in chunk):
                    continue  # written before an interruption (batches are written whole)
                d = chunk[0][3]
                seeds = [candidate_seed(stage_seed, r.id, c) for r, _, c, _ in chunk]
                t0 = time.time()
                outs = sampler.generate([chat_messages(r) for r, *_ in chunk], d, seeds)
                dt = max(time.time() - t0, 1e-6)
                ctx.log.add_samples([
                    {"run_id": ctx.run_id, "stage_idx": idx, "prompt_id": pid, "cand_idx": c,
                     "decoding": dec.name, "params": sampler.params(dec), "seed": seed,
                     "text": g.text, "n_tokens": g.n_tokens, "finish_reason": g.finish_reason}
                    for (_, pid, c, dec), seed, g in zip(chunk, seeds, outs)])
                n_tokens = sum(g.n_tokens for g in outs)
                generated += len(chunk)
                tokens += n_tokens
                done += sum(1 for _, pid, c, _ in chunk if (pid, c) not in have)
                ctx.log.log_metrics(ctx.run_id, idx, offset + k + len(chunk), {
                    "samples_per_s": len(chunk) / dt, "tokens_per_s": n_tokens / dt,
                    "mean_sample_length": n_tokens / len(outs)})
                if not quiet:
                    ctx.progress(idx, done, total, f"sampled {done}/{total}")
                ctx.check_stop()
            offset += len(jobs)
    finally:
        sampler.close()
    if quiet:
        return
    elapsed = max(time.time() - t_start, 1e-6)
    ctx.event(idx, f"sampled {generated} responses in {elapsed:.1f} s "
                   f"({generated / elapsed:.2f} samples/s, {tokens / elapsed:.1f} tokens/s)")
    ctx.progress(idx, done, total, f"sampled {total} responses", force=True)


def _run_sharded(ctx: StageContext, idx: int, nproc: int, total: int) -> None:
    """The stage in ``nproc`` shard processes (backend.compute); this process reports progress."""
    from ..compute import run_sample_shards

    def count() -> tuple[int, int]:
        return sample_totals(ctx.log, ctx.run_id, idx)

    n0, t0_tokens = count()
    ctx.event(idx, f"sampling in {nproc} shard processes (batch b goes to shard b mod {nproc})",
              details={"shards": nproc})

    def poll() -> None:
        n, _ = count()
        ctx.progress(idx, n, total, f"sampled {n}/{total} ({nproc} shards)")

    t_start = time.time()
    run_sample_shards(ctx, idx, nproc, poll)
    n, t = count()
    elapsed = max(time.time() - t_start, 1e-6)
    ctx.event(idx, f"sampled {n - n0} responses in {elapsed:.1f} s with {nproc} shards "
                   f"({(n - n0) / elapsed:.2f} samples/s, {(t - t0_tokens) / elapsed:.1f} tokens/s)")
    ctx.progress(idx, n, total, f"sampled {n} responses", force=True)
