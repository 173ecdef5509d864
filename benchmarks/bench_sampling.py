"""Sampling: the sample stage's generation path vs a naive per-prompt loop vs one bare batched call.

All three generate exactly ``max_new_tokens`` tokens per row (the model's generation config gets
``min_new_tokens = max_new_tokens``, so EOS is masked until then), from the same demo prompts with
the same model, greedy and with temperature sampling.
"""
from __future__ import annotations

import cProfile
import io
import pstats
import time
from typing import Any

from .common import Options, Target, header, interleaved, median, paired_ratio, table


def demo_records(n: int):
    """n records spread over the demo data sets (round-robin over the reset_demo mixture)."""
    from backend.config import load_preset
    from backend.data import split_records

    cfg = load_preset("reset_demo")
    pools = [split_records(d)[0] for d in cfg.data]
    out = []
    i = 0
    while len(out) < n:
        for pool in pools:
            if i < len(pool) and len(out) < n:
                out.append(pool[i])
        i += 1
    return out


def embedded_model(opts: Options):
    if "model" not in opts.shared:
        from backend.models import load_model

        t0 = time.perf_counter()
        opts.shared["model"] = load_model("embedded")
        print(f"  loaded the embedded model in {time.perf_counter() - t0:.1f} s", flush=True)
    return opts.shared["model"]


class ForcedLength:
    """Every generate call on the model produces exactly n new tokens (EOS masked before that)."""

    def __init__(self, model, n: int):
        self.gc = model.generation_config
        self.n = n

    def __enter__(self):
        self.old = getattr(self.gc, "min_new_tokens", None)
        self.gc.min_new_tokens = self.n
        return self

    def __exit__(self, *exc):
        self.gc.min_new_tokens = self.old


def _encode(tok, convs):
    prompts = [tok.apply_chat_template(c, add_generation_prompt=True, tokenize=False) for c in convs]
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        return tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tok.padding_side = side


def _sampling_kwargs(temperature: float, top_p: float) -> dict[str, Any]:
    if temperature <= 0:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    return {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}


def naive_loop(model, tok, convs, n_new: int, temperature: float, top_p: float) -> int:
    import torch

    tokens = 0
    for c in convs:
        enc = _encode(tok, [c])
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=n_new, pad_token_id=tok.pad_token_id,
                                 **_sampling_kwargs(temperature, top_p))
        tokens += out.shape[1] - enc["input_ids"].shape[1]
    return tokens


def bare_batched(model, tok, convs, n_new: int, temperature: float, top_p: float) -> int:
    import torch

    enc = _encode(tok, convs)
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=n_new, pad_token_id=tok.pad_token_id,
                             **_sampling_kwargs(temperature, top_p))
    return (out.shape[1] - enc["input_ids"].shape[1]) * out.shape[0]


def seeded_sampler_breakdown(batch: int, vocab: int, top_p: float, steps: int = 30) -> dict[str, float]:
    """Milliseconds per decoding step of each operation SeededSampler performs."""
    import torch

    scores = torch.randn(batch, vocab)
    gens = [torch.Generator().manual_seed(i) for i in range(batch)]
    parts: dict[str, float] = {}

    def t(name, fn):
        t0 = time.perf_counter()
        for _ in range(steps):
            r = fn()
        parts[name] = (time.perf_counter() - t0) * 1000 / steps
        return r

    probs = t("softmax", lambda: torch.softmax(scores.float() / 0.7, dim=-1))
    if top_p < 1.0:
        sp, order = t("previous sampler: full sort (top-p)", lambda: torch.sort(probs, descending=True, dim=-1))
        t("previous sampler: cumsum+mask+scatter", lambda: torch.zeros_like(probs).scatter(
            -1, order, torch.where(torch.cumsum(sp, -1) - sp < top_p, sp, torch.zeros_like(sp))))
    t("previous sampler: per-row multinomial",
      lambda: [int(torch.multinomial(probs[i], 1, generator=g)) for i, g in enumerate(gens)])
    t("build -inf mask", lambda: torch.full_like(scores, float("-inf")))
    # what backend/generation.py ships: nucleus inside the top 1024 tokens (full sort only as a
    # fallback when they hold less than top_p of the mass), per-row inverse-CDF draw
    def shipped():
        tp, ti = torch.topk(probs, min(1024, vocab), dim=-1)
        keep = torch.cumsum(tp, -1) - tp < top_p
        tp = torch.where(keep, tp, torch.zeros_like(tp))
        u = torch.stack([torch.rand(1, generator=g) for g in gens]) * tp.sum(-1, keepdim=True)
        return ti.gather(-1, torch.searchsorted(torch.cumsum(tp, -1), u).clamp_max(tp.shape[-1] - 1))
    t("shipped: topk(1024) nucleus + inverse CDF", shipped)
    # what HF's own sampler does per step, for comparison
    t("HF: top-p warper sort", lambda: torch.sort(scores, descending=False))
    t("HF: one batched multinomial", lambda: torch.multinomial(probs, 1))
    return parts


def run(opts: Options) -> list[Target]:
    from backend.config import DecodingSpec
    from backend.data import chat_messages
    from backend import generation
    from backend.samplers import make_sampler
    from backend.stages.sample import candidate_seed

    header("sampling: stage path (HFSampler/generate_batch) vs naive loop vs bare batched generate")
    n_prompts = opts.n(8, 16)
    n_new = opts.n(16, 64)
    reps = opts.reps or opts.n(1, 3)
    model, tok = embedded_model(opts)
    records = demo_records(n_prompts)
    convs = [chat_messages(r) for r in records]
    seeds = [candidate_seed(42, r.id, 1) for r in records]
    sampler = make_sampler("hf", max_new_tokens=n_new, batch_size=n_prompts, model=model,
                           tokenizer=tok)
    prompt_lens = _encode(tok, convs)["attention_mask"].sum(1).tolist()
    print(f"  {n_prompts} demo prompts ({min(prompt_lens)}-{max(prompt_lens)} prompt tokens), "
          f"{n_new} new tokens each (forced), batch {n_prompts}, {reps} interleaved reps", flush=True)
    settings = [DecodingSpec(name="greedy", temperature=0.0),
                DecodingSpec(name="t0.7_p0.9", temperature=0.7, top_p=0.9)]
    targets: list[Target] = []
    rows = []
    samples_out: dict[str, list] = {}
    stage_times: dict[str, float] = {}
    # time spent inside the seeded per-row sampler during the timed stage-path calls
    spent = {"s": 0.0, "calls": 0}
    real_row_sampler = generation._row_sampler

    def timed_row_sampler(*a, **kw):
        inner = real_row_sampler(*a, **kw)

        class Timed(type(inner)):
            def __call__(self, input_ids, scores):
                t0 = time.perf_counter()
                out = super().__call__(input_ids, scores)
                spent["s"] += time.perf_counter() - t0
                spent["calls"] += 1
                return out

        inner.__class__ = Timed
        return inner

    in_sampler: dict[str, list[tuple[float, float]]] = {}
    generation._row_sampler = timed_row_sampler
    try:
        with ForcedLength(model, n_new):
            for d in settings:
                got: dict[str, Any] = {}

                def stage_path(d=d):
                    s0, t0 = spent["s"], time.perf_counter()
                    got["gens"] = sampler.generate(convs, d, seeds)
                    in_sampler.setdefault(d.name, []).append((spent["s"] - s0,
                                                              time.perf_counter() - t0))

                variants = {
                    "stage path": stage_path,
                    "naive loop": lambda d=d: naive_loop(model, tok, convs, n_new, d.temperature,
                                                         d.top_p),
                    "bare batched": lambda d=d: bare_batched(model, tok, convs, n_new,
                                                             d.temperature, d.top_p),
                }
                # cheap warm-up (2 prompts, 2 tokens) of each path; then interleaved repetitions
                sampler.max_new_tokens = 2
                with ForcedLength(model, 2):
                    sampler.generate(convs[:2], d, seeds[:2])
                    naive_loop(model, tok, convs[:1], 2, d.temperature, d.top_p)
                    bare_batched(model, tok, convs[:2], 2, d.temperature, d.top_p)
                sampler.max_new_tokens = n_new
                in_sampler.pop(d.name, None)
                times = interleaved(variants, reps, warmup=False, label=d.name)
                gens = got["gens"]
                lengths = {g.n_tokens for g in gens}
                if lengths != {n_new}:
                    print(f"  WARNING: stage path produced lengths {sorted(lengths)}, not all {n_new}")
                samples_out[d.name] = gens
                total_tokens = n_prompts * n_new
                tps = {k: total_tokens / median(v) for k, v in times.items()}
                r_naive = paired_ratio(times["naive loop"], times["stage path"])
                r_bare = paired_ratio(times["bare batched"], times["stage path"])
                stage_times[d.name] = median(times["stage path"])
                for k in variants:
                    rows.append([d.name, k, f"{median(times[k]):.2f} s", f"{tps[k]:.1f}",
                                 "" if k == "stage path" else
                                 f"stage = {(r_naive if k == 'naive loop' else r_bare):.2f}x this"])
                targets.append(Target("sampling", f"{d.name}: stage path vs naive loop", r_naive,
                                      ">=", 2.0, "x",
                                      f"{tps['stage path']:.0f} vs {tps['naive loop']:.0f} tok/s"))
                targets.append(Target("sampling", f"{d.name}: stage path vs bare batched", r_bare,
                                      ">=", 0.9, "x",
                                      f"{tps['stage path']:.0f} vs {tps['bare batched']:.0f} tok/s"))
            table(rows, ["decoding", "variant", "median time", "tokens/s", "ratio"])
    finally:
        generation._row_sampler = real_row_sampler

    # Where the seeded per-row sampler's time goes
    sampled = [t for t in targets if t.name.startswith("t0.7") and "bare" in t.name][0]
    greedy = [t for t in targets if t.name.startswith("greedy") and "bare" in t.name][0]
    pairs = in_sampler.get(settings[1].name, [])
    share = 100 * sum(a for a, _ in pairs) / max(sum(b for _, b in pairs), 1e-9)
    per_step = sum(a for a, _ in pairs) * 1000 / max(len(pairs) * n_new, 1)
    print(f"  seeded sampler: {per_step:.1f} ms per decoding step, {share:.1f} % of the sampled "
          f"stage path's wall time (stage vs bare: sampled {sampled.value:.2f}x, greedy "
          f"{greedy.value:.2f}x)", flush=True)
    targets.append(Target("sampling", "seeded sampler share of sampled generate", share, "<=",
                          10.0, "%", f"{per_step:.1f} ms/step"))
    if share > 10.0 or sampled.value < 0.9 or not opts.quick:
        vocab = model.config.vocab_size
        parts = seeded_sampler_breakdown(n_prompts, vocab, 0.9)
        print(f"  per-step cost of the seeded sampler's operations (batch {n_prompts}, vocab {vocab}):")
        for k, v in parts.items():
            print(f"    {k:<40} {v:6.2f} ms")
        if not opts.quick and (share > 10.0 or sampled.value < 0.9):
            with ForcedLength(model, n_new):
                prof = cProfile.Profile()
                prof.enable()
                sampler.generate(convs, settings[1], seeds)
                prof.disable()
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(12)
            print("  cProfile of one sampled stage-path call (top 12 by own time):")
            print("\n".join("    " + ln for ln in s.getvalue().splitlines()[4:24] if ln.strip()))
    opts.shared["samples"] = {"records": records, "gens": samples_out, "stage_times": stage_times,
                              "n_new": n_new}
    return targets
