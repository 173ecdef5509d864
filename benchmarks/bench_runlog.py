"""Run log: batched sample inserts, the live poll and the sample inspector's first page on a big log
(1 000 000 metric rows, 100 000 samples with scores), built once into a cache file under /tmp."""
from __future__ import annotations

import os
import random
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from .common import CACHE_DIR, Options, Target, header, median, table

N_RUNS = 10
N_METRICS = 1_000_000
N_SAMPLES = 100_000
CANDS = 4
METRIC_NAMES = ("loss", "learning_rate", "grad_norm", "tokens_per_s", "padding_fraction")
SAMPLE_STAGE = 1
TEXT = ("The committee approved the plan after a long debate, and the new bridge will open in "
        "spring. Residents asked for more bus lines; the council promised a study. ") * 2


def big_log_path() -> Path:
    from backend.runlog import SCHEMA_VERSION

    return Path(CACHE_DIR) / f"runlog-big-v{SCHEMA_VERSION}-{N_METRICS}m-{N_SAMPLES}s.db"


def build_big_log(path: Path) -> None:
    """10 runs; 100 000 metric rows each (written run after run, like sequential runs); the last
    run also has 25 000 prompts x 4 samples, 6 score rows per sample and a selection."""
    from backend.runlog import RunLog

    tmp = path.with_suffix(".building")
    for p in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm")):
        p.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log = RunLog(tmp)
    rng = random.Random(0)
    runs = [f"20250101-000000-run{i:02d}-beef" for i in range(N_RUNS)]
    for i, r in enumerate(runs):
        log.create_run(r, name=f"run{i}", preset="reset_demo", config_toml="", run_dir="/nowhere",
                       status="succeeded")
        for idx, (name, typ) in enumerate([("mtl", "train"), ("sample", "sample"),
                                           ("judge", "judge"), ("select", "select")]):
            log.stage_start(r, idx, name, typ)
            log.stage_end(r, idx, "succeeded")
    conn = log.conn
    per_run = N_METRICS // N_RUNS
    steps = per_run // len(METRIC_NAMES)
    for r in runs:
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO metrics (run_id, stage_idx, step, name, value, time) VALUES (?,?,?,?,?,?)",
            ((r, 0, s, n, rng.random(), 1.7e9 + s) for s in range(steps) for n in METRIC_NAMES))
        conn.execute("COMMIT")
    big = runs[-1]
    n_prompts = N_SAMPLES // CANDS
    kinds = ("instruction", "qa_extractive", "qa_abstractive", "summarization")
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO prompts (run_id, stage_idx, key, kind, source, prompt, context, reference) "
        "VALUES (?,?,?,?,?,?,?,?)",
        ((big, SAMPLE_STAGE, f"demo:{p:06d}", kinds[p % 4], "demo", f"Question {p}: " + TEXT[:120],
          TEXT if p % 4 else None, TEXT[:80]) for p in range(n_prompts)))
    pid0 = conn.execute("SELECT min(id) FROM prompts WHERE run_id=?", (big,)).fetchone()[0]
    conn.executemany(
        "INSERT INTO samples (run_id, stage_idx, prompt_id, cand_idx, decoding, params, seed, text, "
        "n_tokens, finish_reason, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        ((big, SAMPLE_STAGE, pid0 + p, c, "t0.7_p0.9", '{"temperature": 0.7}', p * 10 + c, TEXT,
          64, "length", 1.7e9) for p in range(n_prompts) for c in range(CANDS)))
    sid0 = conn.execute("SELECT min(id) FROM samples").fetchone()[0]
    judges = (("rouge_l", "task"), ("token_f1", "task"), ("faith_minilm", "faithfulness"),
              ("cat:task", "task"), ("cat:faithfulness", "faithfulness"), ("combined", "combined"))
    conn.executemany(
        "INSERT INTO scores (run_id, sample_id, judge, category, value, details) VALUES (?,?,?,?,?,?)",
        ((big, sid0 + s, j, c, rng.random(), '{"why": "bench"}' if j == "combined" else None)
         for s in range(N_SAMPLES) for j, c in judges))
    conn.execute("COMMIT")
    log.add_selection(big, 3, "select", {"threshold": 0.5},
                      [{"sample_id": sid0 + p * CANDS, "prompt_id": pid0 + p, "combined": 0.9,
                        "rank": k + 1} for k, p in enumerate(range(0, n_prompts, 3))])
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")  # planner statistics; the "no stats" variant drops them again
    log.close()
    os.replace(tmp, path)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    print(f"  built {path} ({path.stat().st_size / 2**20:.0f} MiB) in "
          f"{time.perf_counter() - t0:.0f} s", flush=True)


def _drop_stats(path: Path) -> None:
    """The real app never runs ANALYZE: measure without planner statistics too."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("DROP TABLE IF EXISTS sqlite_stat1")
        conn.execute("DROP TABLE IF EXISTS sqlite_stat4")
        conn.commit()
    finally:
        conn.close()


def insert_rate(opts: Options) -> dict[int, float]:
    from backend.runlog import RunLog

    tmp = Path(tempfile.mkdtemp(prefix="bench-ins-"))
    out = {}
    n = opts.n(2_000, 20_000)
    try:
        for batch in (12, 100, 1000):
            log = RunLog(tmp / f"ins{batch}.db")
            log.create_run("r", name="r", preset="p", config_toml="", run_dir="/x")
            log.conn.execute("BEGIN")
            log.conn.executemany("INSERT INTO prompts (run_id, stage_idx, key, kind, prompt) "
                                 "VALUES ('r', 1, ?, 'instruction', 'p')",
                                 [(f"k{i}",) for i in range(n // CANDS + 1)])
            log.conn.execute("COMMIT")
            rows = [{"run_id": "r", "stage_idx": 1, "prompt_id": 1 + i // CANDS, "cand_idx": i % CANDS,
                     "decoding": "t0.7", "params": {"temperature": 0.7, "top_p": 0.9}, "seed": i,
                     "text": TEXT, "n_tokens": 64, "finish_reason": "length"} for i in range(n)]
            t0 = time.perf_counter()
            for k in range(0, n, batch):
                log.add_samples(rows[k:k + batch])
            out[batch] = n / (time.perf_counter() - t0)
            assert log.count("samples") == n
            log.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def run(opts: Options) -> list[Target]:
    from backend.runlog import RunLog
    from reset_gui.views import PromptFilter, count_prompts, fetch_prompt_page, prompt_stages

    header("run log: inserts, live poll and sample inspector on 1M metrics / 100k samples")
    path = big_log_path()
    if not path.exists():
        print(f"  building the big run log once (cached at {path}) ...", flush=True)
        build_big_log(path)
    rates = insert_rate(opts)
    for b, r in rates.items():
        print(f"  add_samples, {b:>4} rows per call (one transaction each): {r:,.0f} rows/s")
    reps = opts.reps or opts.n(20, 100)
    results = {}
    # schema v2 has the (run_id, id) index this benchmark once proposed; it is now what ships
    variants = ("no planner stats (as the app leaves it)", "with ANALYZE stats")
    for variant in variants:
        work = Path(tempfile.mkdtemp(prefix="bench-big-")) / "runlog.db"
        shutil.copyfile(path, work)
        if not variant.startswith("with"):
            _drop_stats(work)
        log = RunLog(work, readonly=True)
        runs = [r["id"] for r in log.list_runs()]
        live, old = runs[-1], runs[0]
        max_live = log.conn.execute("SELECT max(id) FROM metrics WHERE run_id=?", (live,)).fetchone()[0]
        max_old = log.conn.execute("SELECT max(id) FROM metrics WHERE run_id=?", (old,)).fetchone()[0]
        plan = log.conn.execute("EXPLAIN QUERY PLAN SELECT * FROM metrics WHERE id > ? AND run_id = ? "
                                "ORDER BY id", (max_live - 10, live)).fetchall()
        cases = {
            "poll live run (10 new rows)": (max_live - 10, live),
            "poll finished run (0 new rows)": (max_old, old),
            "catch-up read, 50 000 rows (info)": (max_old - 100_000 // 2, old),
        }
        row = {}
        for name, (after, rid) in cases.items():
            ts = []
            for _ in range(reps):
                t0 = time.perf_counter()
                got = log.read_since("metrics", after, run_id=rid)
                ts.append(time.perf_counter() - t0)
            row[name] = (median(ts) * 1000, max(ts) * 1000, len(got))
        log.close()

        def open_inspector():
            conn = sqlite3.connect(f"file:{work}?mode=ro", uri=True)
            try:
                stages = prompt_stages(conn, live)
                flt = PromptFilter(run_id=live, stage_idx=stages[0]["stage_idx"])
                page = fetch_prompt_page(conn, flt, 0)
                n = count_prompts(conn, flt)
                sel = conn.execute("SELECT id FROM selections WHERE run_id=?", (live,)).fetchone()[0]
                page_sel = fetch_prompt_page(conn, PromptFilter(run_id=live, stage_idx=1,
                                                                selection_id=sel), 0)
                return len(page), n, len(page_sel), page[0]
            finally:
                conn.close()

        ts = []
        for i in range(max(5, reps // 4)):
            t0 = time.perf_counter()
            n_page, n_total, n_sel, first = open_inspector()
            ts.append(time.perf_counter() - t0)
        row["open sample inspector (page+count+selection page)"] = (median(ts) * 1000, ts[0] * 1000,
                                                                    n_page)
        results[variant] = (row, plan)
        shutil.rmtree(work.parent, ignore_errors=True)
    rows = []
    for variant, (row, plan) in results.items():
        for name, (med, worst, n) in row.items():
            rows.append([variant, name, f"{med:.2f} ms", f"{worst:.2f} ms", str(n)])
    table(rows, ["planner", "query", "median", "max/first", "rows"])
    for variant, (row, plan) in results.items():
        print(f"  plan of the live poll ({variant}): " + "; ".join(p[3] for p in plan))
    current = results[variants[0]][0]
    worst_poll = max(v[0] for k, v in current.items() if k.startswith("poll"))
    inspector = max(v[0] for k, v in current.items() if k.startswith("open"))
    return [
        Target("runlog", "batched sample inserts (12 rows/call)", rates[12], "info", None, "rows/s"),
        Target("runlog", "incremental metrics poll, worst case (median)", worst_poll, "<=", 20.0, "ms",
               "as shipped: no planner stats"),
        Target("runlog", "sample inspector first page (views.fetch_prompt_page)", inspector, "<=",
               300.0, "ms"),
    ]
