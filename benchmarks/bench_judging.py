"""Judging and logging: judge the sampling benchmark's samples with the default judges and write
samples + scores to a run log; both as a share of the wall time it took to sample them."""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from .common import Options, Target, header, interleaved, median, table


def _samples(opts: Options):
    """(records, responses, sampling seconds) — from the sampling benchmark, or drawn here."""
    if "samples" not in opts.shared:
        from backend.config import DecodingSpec
        from backend.data import chat_messages
        from backend.samplers import make_sampler

        from .bench_sampling import ForcedLength, demo_records, embedded_model

        model, tok = embedded_model(opts)
        records = demo_records(opts.n(8, 16))
        n_new = opts.n(16, 64)
        sampler = make_sampler("hf", max_new_tokens=n_new, batch_size=16, model=model, tokenizer=tok)
        gens, times = {}, {}
        with ForcedLength(model, n_new):
            for d in (DecodingSpec(name="greedy"), DecodingSpec(name="t0.7_p0.9", temperature=0.7,
                                                               top_p=0.9)):
                sampler.generate([chat_messages(r) for r in records[:2]], d, [1, 2])  # warm-up
                t0 = time.perf_counter()
                gens[d.name] = sampler.generate([chat_messages(r) for r in records], d,
                                                list(range(len(records))))
                times[d.name] = time.perf_counter() - t0
        opts.shared["samples"] = {"records": records, "gens": gens, "stage_times": times,
                                  "n_new": n_new}
    s = opts.shared["samples"]
    records, responses, cand = [], [], []
    for c, (name, gens) in enumerate(s["gens"].items()):
        for r, g in zip(s["records"], gens):
            records.append(r)
            responses.append(g.text)
            cand.append((c, name, g))
    return records, responses, cand, sum(s["stage_times"].values()), s["n_new"]


def _demo_answers(n: int):
    """Records with a context and their reference answer / highlights as the response (the size of
    real grounded answers): abstractive QA and news summaries from the demo eval files."""
    import json

    from backend.records import Record

    root = Path(__file__).resolve().parent.parent / "assets" / "demo"
    recs, resps = [], []
    for name, ctx_key, ref_key in (("abstractive_qa_eval", "passage", "answer"),
                                   ("news_summaries_eval", "article", "highlights")):
        for line in (root / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            recs.append(Record(id=row["id"], kind="qa_abstractive", prompt="", context=row[ctx_key]))
            resps.append(row[ref_key])
    return (recs * (n // len(recs) + 1))[:n], (resps * (n // len(resps) + 1))[:n]


def faith_throughput(opts: Options, name: str, per_prompt: int = 1) -> list[Target]:
    """Samples/s of one faithfulness judge on demo answers, `per_prompt` candidates sharing each
    context (ReSet judges several per prompt; evaluation one). Loading / training is not timed."""
    from backend.judges import JUDGES

    records, responses = _demo_answers(opts.n(32, 128) // per_prompt)
    records = [r for r in records for _ in range(per_prompt)]
    responses = [a for a in responses for _ in range(per_prompt)]
    j = JUDGES[name]({})
    j.score_batch(records[:2], responses[:2])  # trains at first use / loads the model
    ts, cpu = [], []
    for _ in range(opts.reps or opts.n(2, 3)):
        t0, c0 = time.perf_counter(), time.process_time()
        j.score_batch(records, responses)
        ts.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    n = len(records)
    what = f"{per_prompt} per context" if per_prompt > 1 else "demo answers"
    print(f"  {name}: {n} demo answers ({what}) in {median(ts) * 1000:.0f} ms "
          f"({n / median(ts):,.1f} samples/s; {median(cpu):.2f} CPU s)", flush=True)
    out = [Target("judging", f"{name} throughput ({what})", n / median(ts), ">=", 50.0,
                  "samples/s", f"{n} samples, {median(cpu):.2f} CPU s")]
    if hasattr(j, "work"):
        out.append(compute_ceiling(j, records, responses, n / median(ts), what))
    return out


def matmul_rate(dtype, device, k: int, n: int, reps: int = 40) -> float:
    """Multiply-accumulates per second of a (1024 x k) @ (k x n) matmul (k, n: the judge model's
    width and MLP width, so a padded batch through its MLP), in its dtype, on its device and threads."""
    import torch

    a = torch.randn(1024, k, dtype=dtype, device=device)
    b = torch.randn(k, n, dtype=dtype, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(5):
        a @ b
    sync()
    best = float("inf")
    for _ in range(3):  # best of three: the rate the hardware reaches, not a busy moment's
        t0 = time.perf_counter()
        for _ in range(reps):
            a @ b
        sync()
        best = min(best, time.perf_counter() - t0)
    return reps * 1024 * k * n / best


def compute_ceiling(j, records, responses, measured: float, what: str) -> Target:
    """The most samples/s this machine could give the judge's arithmetic: its matmul rate
    (measured now) over the multiply-accumulates one sample needs (a lower bound)."""
    model, _ = j._load()
    w = j.work([r.context for r in records], responses)
    rate = matmul_rate(next(model.parameters()).dtype, model.device, model.config.hidden_size,
                       model.config.intermediate_size)
    per_sample = w["macs"] / len(responses)
    ceiling = rate / per_sample
    n_ctx = len(dict.fromkeys(r.context for r in records))
    print(f"  {j.name} ({what}): {w['prompt_tokens'] / n_ctx:.0f} prompt tokens per context, "
          f"{w['answer_tokens'] / len(responses):.0f} answer tokens per "
          f"sample -> {per_sample / 1e9:.2f} GMAC per sample; matmul rate here "
          f"{rate / 1e9:.0f} GMAC/s -> at most {ceiling:,.1f} samples/s; measured "
          f"{measured:,.1f} = {measured / ceiling * 100:.0f} % of that", flush=True)
    return Target("judging", f"{j.name} compute ceiling ({what})", ceiling, "info", None,
                  "samples/s", f"{per_sample / 1e9:.2f} GMAC/sample at {rate / 1e9:.0f} GMAC/s; "
                  f"measured {measured / ceiling * 100:.0f} % of it")


def run(opts: Options) -> list[Target]:
    from backend.config import load_preset
    from backend.runlog import RunLog
    from backend.stages.judge import faithfulness_info, make_judges, score_rows

    header("judging and logging: share of the sampling wall time for the same samples")
    records, responses, cand, sample_s, n_new = _samples(opts)
    n = len(records)
    cfg = load_preset("reset_demo")
    t0 = time.perf_counter()
    judges = make_judges(cfg)
    faith = faithfulness_info(judges)
    # first call loads models / imports checkers: one-off setup, reported apart
    score_rows("bench", list(range(2)), records[:2], responses[:2], judges, dict(cfg.judges.weights),
               faith)
    setup_s = time.perf_counter() - t0
    print(f"  {n} samples of {n_new} tokens, sampled in {sample_s:.2f} s; judges "
          f"{[j.name for j in judges]} (faithfulness: {faith['judge']}); setup {setup_s:.1f} s "
          "(one-off per stage, not counted below)", flush=True)
    reps = opts.reps or opts.n(2, 5)
    batch = cfg.stages[2].batch_size if cfg.stages[2].type == "judge" else 32
    tmp = Path(tempfile.mkdtemp(prefix="bench-judge-"))
    box: dict = {}
    counter = {"i": 0}

    def judge_all():
        out = []
        for k in range(0, n, batch):
            out.extend(score_rows("bench", list(range(k, min(k + batch, n))), records[k:k + batch],
                                  responses[k:k + batch], judges, dict(cfg.judges.weights), faith))
        box["rows"] = out

    def write_all():
        counter["i"] += 1
        log = RunLog(tmp / f"log{counter['i']}.db")
        run_id = "bench"
        log.create_run(run_id, name="bench", preset="bench", config_toml="", run_dir=str(tmp))
        t0 = time.perf_counter()
        key_to_id = log.add_prompts(run_id, 1, {r.id: r for r in records}.values())
        sample_rows = [{"run_id": run_id, "stage_idx": 1, "prompt_id": key_to_id[r.id],
                        "cand_idx": c, "decoding": name,
                        "params": {"backend": "hf", "temperature": 0.7, "top_p": 0.9,
                                   "max_new_tokens": n_new},
                        "seed": i, "text": g.text, "n_tokens": g.n_tokens,
                        "finish_reason": g.finish_reason}
                       for i, (r, (c, name, g)) in enumerate(zip(records, cand))]
        for k in range(0, n, 16):  # the stage writes after every generate batch
            log.add_samples(sample_rows[k:k + 16])
        ids = {(row["prompt_id"], row["cand_idx"]): row["id"] for row in log.query(
            "SELECT id, prompt_id, cand_idx FROM samples")}
        rows = [dict(row) for row in box["rows"]]
        for row in rows:
            c, _, _ = cand[row["sample_id"]]
            row["sample_id"] = ids[(key_to_id[records[row["sample_id"]].id], c)]
        for k in range(0, len(rows), batch * 8):
            log.add_scores(rows[k:k + batch * 8])
        box["write_s"] = time.perf_counter() - t0
        box["n_score_rows"] = len(rows)
        log.close()

    judge_all()
    times = interleaved({"judge": judge_all, "write": write_all}, reps, warmup=False)
    judge_s = median(times["judge"])
    write_s = median(times["write"])
    share = (judge_s + write_s) / sample_s * 100
    # per judge: samples/s over the items it applies to
    rows = []
    for j in judges:
        idx = [i for i, r in enumerate(records) if j.applies(r)]
        if not idx:
            rows.append([j.name, j.category, "0", "-", "-"])
            continue
        recs, resp = [records[i] for i in idx], [responses[i] for i in idx]
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            j.score_batch(recs, resp)
            ts.append(time.perf_counter() - t0)
        rows.append([j.name, j.category, str(len(idx)), f"{median(ts) * 1000:.1f} ms",
                     f"{len(idx) / median(ts):,.0f}"])
    table(rows, ["judge", "category", "items", "time", "samples/s"])
    print(f"  judging {n} samples: {judge_s * 1000:.0f} ms ({n / judge_s:,.0f} samples/s); writing "
          f"{n} samples + {box['n_score_rows']} score rows: {write_s * 1000:.0f} ms; sampling them: "
          f"{sample_s * 1000:.0f} ms -> {share:.1f} % of sampling", flush=True)
    if not opts.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        *faith_throughput(opts, "faith_factcc"),
        *faith_throughput(opts, "faith_lm"),
        *faith_throughput(opts, "faith_lm", per_prompt=4),
        Target("judging", "judge + log, share of sampling time", share, "<=", 10.0, "%",
               f"judge {judge_s * 1000:.0f} ms + log {write_s * 1000:.0f} ms vs sample "
               f"{sample_s * 1000:.0f} ms"),
        Target("judging", "judging throughput (all default judges)", n / judge_s, "info", None,
               "samples/s"),
    ]
