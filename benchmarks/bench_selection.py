"""Selection on 100 000 candidates: loading them for the select stage and the what-if panel
(``backend.queries.candidates``, one SQL query) and one what-if slider move (``backend.scoring``:
combined score, threshold, best per prompt, quota, budget, per-kind summary), next to the same rule
written per row in plain Python (the select stage's loop before backend/scoring.py)."""
from __future__ import annotations

import random
import shutil
import tempfile
import time
from pathlib import Path

from .common import Options, Target, header, interleaved, median, paired_ratio, table

W = {"task": 0.3, "faithfulness": 0.4, "instruction_following": 0.3}
KINDS = ("instruction", "qa_extractive", "qa_abstractive", "summarization")
CANDS = 4


def build_log(path: Path, n_prompts: int) -> None:
    """n_prompts x 4 samples; per sample a judge row, two category rows and a combined row."""
    from backend.runlog import RunLog

    rng = random.Random(1)
    log = RunLog(path)
    with log.transaction() as conn:
        conn.executemany(
            "INSERT INTO prompts (id, run_id, stage_idx, key, kind, prompt) VALUES (?,?,?,?,?,?)",
            [(p + 1, "r", 1, f"k{p}", KINDS[p % 4], "q") for p in range(n_prompts)])
        conn.executemany(
            "INSERT INTO samples (id, run_id, stage_idx, prompt_id, cand_idx, decoding, text, n_tokens)"
            " VALUES (?,?,?,?,?,?,?,?)",
            [(p * CANDS + c + 1, "r", 1, p + 1, c, "t1.0", "x", 10)
             for p in range(n_prompts) for c in range(CANDS)])
        rows = []
        for sid in range(1, n_prompts * CANDS + 1):
            instr = KINDS[((sid - 1) // CANDS) % 4] == "instruction"
            t, other = rng.random(), rng.random()
            other_cat = "instruction_following" if instr else "faithfulness"
            rows += [(sid, "rouge_l", "task", t), (sid, "cat:task", "task", t),
                     (sid, f"cat:{other_cat}", other_cat, other), (sid, "combined", "combined", 0.5)]
        conn.executemany("INSERT INTO scores (run_id, sample_id, judge, category, value) "
                         "VALUES ('r',?,?,?,?)", rows)
    log.close()


def per_row_select(rows, threshold, weights, quota, budget):
    """The baseline: the same rule, one Python loop per row."""
    best = {}
    for row in rows:
        pairs = [(w, row.get(c)) for c, w in weights.items() if w > 0 and row.get(c) is not None]
        if not pairs:
            continue
        c = sum(w * v for w, v in pairs) / sum(w for w, _ in pairs)
        if c < threshold:
            continue
        cur = best.get(row["prompt_id"])
        if cur is None or c > cur[0] or (c == cur[0] and row["sample_id"] < cur[1]):
            best[row["prompt_id"]] = (c, row["sample_id"], row["kind"])
    chosen, taken = [], {}
    for c, sid, kind in sorted(best.values(), key=lambda t: (-t[0], t[1])):
        if kind in quota and taken.get(kind, 0) >= quota[kind]:
            continue
        taken[kind] = taken.get(kind, 0) + 1
        chosen.append(sid)
    return chosen[:budget] if budget is not None else chosen


def run(opts: Options) -> list[Target]:
    from backend import scoring
    from backend.queries import candidates
    from backend.runlog import RunLog

    n_prompts = opts.n(5_000, 25_000)
    header(f"selection: {n_prompts * CANDS:,} candidates, load + what-if recompute")
    tmp = Path(tempfile.mkdtemp(prefix="bench-select-"))
    try:
        t0 = time.perf_counter()
        build_log(tmp / "runlog.db", n_prompts)
        print(f"  built the run log in {time.perf_counter() - t0:.1f} s", flush=True)
        reps = opts.reps or opts.n(1, 5)
        log = RunLog(tmp / "runlog.db", readonly=True)
        loads, arrays_t = [], []
        for _ in range(reps):
            t0 = time.perf_counter()
            rows = candidates(log, "r", 1)
            loads.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            arrays = scoring.CandidateArrays(rows)
            arrays_t.append(time.perf_counter() - t0)
        log.close()
        quota, budget = {"instruction": 1000}, 10_000

        def whatif():
            idx, comb = scoring.select(arrays, W, 0.5, quota, budget)
            scoring.summarize_selection(arrays, idx, comb)
            return idx

        times = interleaved({"scoring": whatif,
                             "per-row": lambda: per_row_select(rows, 0.5, W, quota, budget)},
                            opts.reps or opts.n(3, 10))
        same = arrays.sample_id[whatif()].tolist() == per_row_select(rows, 0.5, W, quota, budget)
        speedup = paired_ratio(times["per-row"], times["scoring"])
        table([["load candidates (one query)", f"{median(loads):.2f} s"],
               ["build CandidateArrays", f"{median(arrays_t) * 1000:.0f} ms"],
               ["what-if recompute (select + summary)", f"{median(times['scoring']) * 1000:.1f} ms"],
               ["same rule per row in Python", f"{median(times['per-row']) * 1000:.0f} ms"],
               ["same samples chosen", str(same)]], ["step", "time"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [
        Target("selection", f"load {n_prompts * CANDS:,} candidates", median(loads), "<=", 5.0, "s"),
        Target("selection", "what-if recompute (select + summary)", median(times["scoring"]) * 1000,
               "<=", 200.0, "ms", "the panel debounces slider moves by 50 ms"),
        Target("selection", "speed-up over the per-row loop", speedup, "info", None, "x"),
        Target("selection", "numpy and per-row pick the same samples", 1.0 if same else 0.0, ">=", 1.0),
    ]
