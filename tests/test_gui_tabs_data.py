"""A realistic run log for the GUI tab tests, built with the real RunLog API (no tests here).

Two runs: an MTL baseline (train + evaluate) and a ReSet run (MTL → sample → judge → select →
continue → evaluate) with 2 000 prompts × 4 candidates, every judge's scores with details in the
shapes backend/judges produce, a selection, and evaluation rows incl. "_all" per checkpoint.
"""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

from backend.config import load_preset
from backend.records import Record
from backend.runlog import RunLog

KINDS = ("qa_extractive", "qa_abstractive", "summarization", "instruction")
DECODINGS = (("greedy", {"temperature": 0.0, "top_p": 1.0}),
             ("t0.7_p0.9", {"temperature": 0.7, "top_p": 0.9}),
             ("t0.7_p0.9", {"temperature": 0.7, "top_p": 0.9}),
             ("t1.0", {"temperature": 1.0, "top_p": 1.0}))
TOPICS = ("the Aldmere lighthouse", "the Voss river delta", "the Kettering glass works",
          "the Orlan mountain railway", "the Saint Brevik archive", "the Halvard tidal mill")
FACTS = ("{t} was completed in {y}.", "It was designed by engineer {n}.",
         "The project cost {c} million crowns.", "Visitors rose to {v} thousand a year by {y2}.",
         "A fire in {y3} destroyed the east wing.", "Local councils restored it with public funds.")
NAMES = ("Mara Quist", "Ivo Delane", "Sunniva Holt", "Tomas Erd", "Lea Vantor")
INVENTED = ("It is now a UNESCO world heritage site.", "The mayor opened it with a royal parade.",
            "Over 900 workers died during construction.", "It was moved to the capital in 1990.")


def _context(rng: random.Random, topic: str) -> str:
    vals = dict(t=topic.capitalize(), y=rng.randint(1850, 1950), n=rng.choice(NAMES),
                c=rng.randint(2, 90), v=rng.randint(5, 400), y2=rng.randint(1960, 2020),
                y3=rng.randint(1951, 2000))
    return " ".join(f.format(**vals) for f in FACTS)


def _sentences(text: str) -> list[tuple[int, int, str]]:
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch == "." and (i + 1 == len(text) or text[i + 1] == " "):
            out.append((start, i + 1, text[start:i + 1]))
            start = i + 2
    return out


def _response(rng: random.Random, context: str, quality: float) -> tuple[str, dict, float]:
    """A response of context sentences (supported) and invented ones (unsupported), with
    faith_lexical-style details (spans into the response and supporting context spans)."""
    ctx_sents = _sentences(context)
    n = rng.randint(1, 4)
    parts, plan = [], []
    for _ in range(n):
        if rng.random() < quality:
            j = rng.randrange(len(ctx_sents))
            parts.append(ctx_sents[j][2])
            plan.append(j)
        else:
            parts.append(rng.choice(INVENTED))
            plan.append(None)
    text = " ".join(parts)
    sents, pos, scores = [], 0, []
    for i, (part, j) in enumerate(zip(parts, plan)):
        start, end = pos, pos + len(part)
        pos = end + 1
        sup = j is not None
        score = round(rng.uniform(0.75, 1.0) if sup else rng.uniform(0.05, 0.45), 4)
        scores.append(score)
        missing = [] if sup else [{"text": w, "start": start + part.index(w), "end": start + part.index(w) + len(w),
                                   "kind": "word"} for w in part.rstrip(".").split()[-2:]]
        sents.append({"index": i, "start": start, "end": end, "text": part, "checked": True,
                      "score": score, "supported": sup, "missing": missing,
                      "support": ([{"context_index": j, "start": ctx_sents[j][0], "end": ctx_sents[j][1],
                                    "score": 0.9}] if sup else [])})
    value = sum(scores) / len(scores)
    details = {"judge": "faith_lexical", "sentences": sents,
               "unsupported": [s["index"] for s in sents if not s["supported"]], "threshold": 0.6}
    return text, details, value


def _config_toml(preset: str, **changes) -> str:
    cfg = load_preset(preset)
    for path, value in changes.items():
        obj = cfg
        *head, last = path.split(".")
        for h in head:
            obj = obj.stages[int(h)] if h.isdigit() else getattr(obj, h)
        setattr(obj, last, value)
    return cfg.to_toml()


def _train_metrics(log: RunLog, run: str, stage: int, rng: random.Random, start_loss: float,
                   steps: int = 30, lr: float = 3e-4) -> None:
    for step in range(1, steps + 1):
        loss = start_loss * math.exp(-step / 18) + 0.35 + rng.uniform(-0.05, 0.05)
        vals = {"loss": loss, "learning_rate": lr * (1 - step / steps), "grad_norm": rng.uniform(0.5, 2),
                "epoch": step / steps, "tokens_per_s": rng.uniform(900, 1100),
                "padding_fraction": rng.uniform(0.05, 0.2)}
        if step % 5 == 0:
            vals["gen_length"] = 40 + 25 * (step / steps) + rng.uniform(-3, 3) + (10 if stage else 0)
        log.log_metrics(run, stage, step, vals, time_=1000.0 + step)


def _evals(log: RunLog, run: str, stage: int, tags: list[tuple[str, int | None]], rng: random.Random,
           base_if: float, base_faith: float, n_items: int = 12) -> None:
    """Eval rows as the evaluate stage writes them (its own summarize functions): per-item scores
    around a per-checkpoint level, so means, intervals and length buckets are consistent."""
    from backend.stages.evaluate import ALL, summarize, summarize_all

    rows = []
    for k, (tag, ck) in enumerate(tags):
        f_all = min(0.95, base_faith + 0.07 * k)
        i_all = min(0.95, base_if + 0.06 * k)
        items, per_set = [], {}
        for ds, cat in (("squad_qa", "qa_extractive"), ("news_summaries", "summarization"),
                        ("alpaca_instructions", "instruction")):
            its = []
            for j in range(n_items):
                # an item's difficulty is the same for every checkpoint (what pairing removes)
                hard = random.Random(f"{ds}:{j}").gauss(0, 0.2)
                ref = rng.randint(10, 40)
                n_tok = int(ref * rng.uniform(0.5, 2.2))
                clip = lambda v: min(1.0, max(0.0, v))  # noqa: E731
                grounded = cat != "instruction"
                its.append({"key": f"{ds}:eval:{j}", "dataset": ds, "kind": cat,
                            "faithfulness": clip(f_all + hard + rng.gauss(0, 0.05)
                                                 - 0.1 * (n_tok > 1.5 * ref)) if grounded else None,
                            "instruction_following": None if grounded
                            else clip(i_all + hard + rng.gauss(0, 0.05)),
                            "task": clip(0.42 + 0.03 * k + rng.gauss(0, 0.1)), "combined": None,
                            "n_tokens": n_tok, "ref_tokens": ref, "finish_reason": "stop"})
            s = summarize(its, cat)
            per_set[ds] = {"kind": cat, **{c: s[c] for c in ("n", "faithfulness", "instruction_following",
                                                            "task_score", "mean_length")}}
            rows.append({"run_id": run, "stage_idx": stage, "checkpoint_id": ck, "checkpoint_tag": tag,
                         "dataset": ds, "category": cat, "faithfulness_judge": "faith_lexical",
                         **s, "details": s["details"].to_json()})
            items += its
        det = summarize_all(items, per_set)
        rows.append({"run_id": run, "stage_idx": stage, "checkpoint_id": ck, "checkpoint_tag": tag,
                     "dataset": ALL, "category": ALL, "n": len(items),
                     "faithfulness": det.means["faithfulness"],
                     "instruction_following": det.means["instruction_following"],
                     "task_score": det.means["task_score"],
                     "mean_length": sum(i["n_tokens"] for i in items) / len(items),
                     "faithfulness_judge": "faith_lexical", "details": det.to_json()})
    log.add_evals(rows)


def add_sampled(log: RunLog, run: str, stage: int, n_prompts: int, n_cands: int, rng: random.Random,
                full_scores: bool = True, key_prefix: str = "", start: int = 0) -> None:
    """n_prompts prompts × n_cands samples with scores (all judges + categories + combined)."""
    records = []
    for i in range(start, start + n_prompts):
        kind = KINDS[i % 4]
        topic = TOPICS[i % len(TOPICS)]
        if kind == "instruction":
            records.append(Record(id=f"{key_prefix}alp-{i}", kind=kind, source="alpaca_instructions",
                                  prompt=f"Write a short note about {topic} in exactly two sentences. #{i}",
                                  reference="A reference note.",
                                  instruction_id_list=["length_constraints:number_sentences"],
                                  kwargs=[{"relation": "exactly", "num_sentences": 2}]))
        else:
            ctx = _context(rng, topic)
            prompt = (f"Summarize the article about {topic}. #{i}" if kind == "summarization"
                      else f"When was {topic} completed, and who designed it? #{i}")
            records.append(Record(id=f"{key_prefix}{kind[:4]}-{i}", kind=kind, source=kind, prompt=prompt,
                                  context=ctx, reference=_sentences(ctx)[0][2]))
    ids = log.add_prompts(run, stage, records)
    samples, pending = [], []
    for rec in records:
        pid = ids[rec.id]
        for c in range(n_cands):
            dec, params = DECODINGS[c % len(DECODINGS)]
            quality = 0.85 - 0.15 * params["temperature"] + rng.uniform(-0.1, 0.1)
            if rec.context:
                text, fdet, fval = _response(rng, rec.context, quality)
            else:
                text = " ".join(f"{rec.prompt.split(' about ')[1].split(' in ')[0].capitalize()} is worth a visit."
                                for _ in range(rng.randint(1, 3)))
                fdet, fval = None, None
            samples.append({"run_id": run, "stage_idx": stage, "prompt_id": pid, "cand_idx": c,
                            "decoding": dec, "params": params, "seed": 1000 + c, "text": text,
                            "n_tokens": len(text.split()) * 4 // 3, "finish_reason": "stop"})
            pending.append((pid, c, rec, text, fdet, fval))
    log.add_samples(samples)
    sid = {(r["prompt_id"], r["cand_idx"]): r["id"] for r in log.query(
        "SELECT id, prompt_id, cand_idx FROM samples WHERE run_id = ? AND stage_idx = ?", (run, stage))}
    scores = []
    for pid, c, rec, text, fdet, fval in pending:
        s = sid[(pid, c)]
        task = round(rng.uniform(0.1, 0.9), 4)
        cats = {"task": task}
        if full_scores:
            scores.append({"run_id": run, "sample_id": s, "judge": "rouge_l", "category": "task",
                           "value": task, "details": {"precision": task, "recall": task, "f1": task}})
        if fval is not None:
            cats["faithfulness"] = fval
            if full_scores:
                scores.append({"run_id": run, "sample_id": s, "judge": "faith_lexical",
                               "category": "faithfulness", "value": fval, "details": fdet})
        if rec.kind == "instruction":
            ok = text.count(".") == 2
            cats["instruction_following"] = 1.0 if ok else 0.0
            if full_scores:
                scores.append({"run_id": run, "sample_id": s, "judge": "ifeval",
                               "category": "instruction_following", "value": cats["instruction_following"],
                               "details": {"results": [{"id": "length_constraints:number_sentences",
                                                        "passed": ok}]}})
        w = {"task": 0.3, "faithfulness": 0.4, "instruction_following": 0.3}
        comb = sum(w[k] * v for k, v in cats.items()) / sum(w[k] for k in cats)
        for k, v in cats.items():
            scores.append({"run_id": run, "sample_id": s, "judge": f"cat:{k}", "category": k, "value": v,
                           "details": None})
        scores.append({"run_id": run, "sample_id": s, "judge": "combined", "category": "combined",
                       "value": comb, "details": {"weights": w}})
    log.add_scores(scores)


def build_runlog(home: Path, n_prompts: int = 2000, n_cands: int = 4, seed: int = 7,
                 full_scores: bool = True) -> dict:
    """Returns {"path", "mtl", "reset"} (run ids)."""
    from backend.queries import candidates
    from tests.helpers import select_samples

    rng = random.Random(seed)
    path = Path(home) / "runlog.db"
    log = RunLog(path)
    mtl, reset = "20250101-000000-mtl-demo-aaaa", "20250101-010000-reset-demo-bbbb"
    log.create_run(mtl, name="mtl-demo", preset="mtl_demo", config_toml=_config_toml("mtl_demo"),
                   run_dir=str(home / "runs" / mtl), status="succeeded")
    log.create_run(reset, name="reset-demo", preset="reset_demo",
                   config_toml=_config_toml("reset_demo", **{"4.learning_rate": 1e-4, "3.threshold": 0.7}),
                   run_dir=str(home / "runs" / reset), status="running")
    # MTL baseline
    log.stage_start(mtl, 0, "mtl", "train")
    _train_metrics(log, mtl, 0, rng, 2.4)
    for step in (10, 20, 30):
        log.add_checkpoint(mtl, 0, step, f"mtl@{step}" if step < 30 else "mtl",
                           str(home / "runs" / mtl / "stage0" / f"checkpoint-{step}"), "adapter", "embedded")
    log.stage_end(mtl, 0, "succeeded")
    log.stage_start(mtl, 1, "evaluate", "evaluate")
    ck = log.find_checkpoint(mtl, "mtl")["id"]
    _evals(log, mtl, 1, [("base", None), ("mtl", ck)], rng, 0.35, 0.55)
    # ReSet
    names = ["mtl", "sample", "judge", "select", "reset", "evaluate"]
    types = ["train", "sample", "judge", "select", "train", "evaluate"]
    for i, (n, t) in enumerate(zip(names, types)):
        log.stage_start(reset, i, n, t)
    _train_metrics(log, reset, 0, rng, 2.5)
    log.add_checkpoint(reset, 0, 30, "mtl", str(home / "runs" / reset / "stage0" / "final"), "adapter", "embedded")
    add_sampled(log, reset, 1, n_prompts, n_cands, rng, full_scores=full_scores)
    cands = candidates(log, reset, 1)
    items = select_samples(cands, 0.7, {"task": 0.3, "faithfulness": 0.4,
                                        "instruction_following": 0.3}, {}, None)
    log.add_selection(reset, 3, "select", {"threshold": 0.7}, items)
    acc = {}
    kinds = {r["sample_id"]: r["kind"] for r in cands}
    for it in items:
        acc[kinds[it["sample_id"]]] = acc.get(kinds[it["sample_id"]], 0) + 1
    log.log_metrics(reset, 3, 0, {f"accept_rate/{k}": acc.get(k, 0) / (n_prompts / 4) for k in KINDS})
    _train_metrics(log, reset, 4, rng, 0.9, steps=20, lr=1e-4)
    log.add_checkpoint(reset, 4, 20, "reset", str(home / "runs" / reset / "stage4" / "final"), "adapter",
                       "run:%s:mtl" % reset)
    ck_m, ck_r = log.find_checkpoint(reset, "mtl")["id"], log.find_checkpoint(reset, "reset")["id"]
    _evals(log, reset, 5, [("mtl", ck_m), ("reset", ck_r)], rng, 0.4, 0.6)
    for tag in ("mtl", "reset"):
        add_sampled(log, reset, 5, 12, 1, rng, key_prefix=f"{tag}|", start=10_000)
    log.close()
    return {"path": path, "mtl": mtl, "reset": reset}


if __name__ == "__main__":  # python tests/test_gui_tabs_data.py /tmp/x  — a demo log to look at
    import sys
    import time

    t0 = time.time()
    print(build_runlog(Path(sys.argv[1])), f"{time.time() - t0:.1f}s")
