"""Sharded sampling: 2 shard processes write exactly the rows 1 process writes (embedded model)."""
import time

import pytest

from backend.config import DecodingSpec, SampleStage, load_preset
from backend.stages.context import StageContext

pytestmark = pytest.mark.slow  # loads the embedded model in 3 processes (~1 min on 2 cores)


def _config(processes: int):
    cfg = load_preset("mtl_demo")
    cfg.name, cfg.seed = f"shards{processes}", 11
    for d in cfg.data:
        d.budget = 3
    # short prompts only (instructions): a loaded 2-core machine prefills news articles slowly
    cfg.stages = [SampleStage(name="sample", source="base", data=["alpaca_instructions"],
                              max_new_tokens=6, batch_size=2,
                              decoding=[DecodingSpec(name="greedy", temperature=0.0),
                                        DecodingSpec(name="t1.0", temperature=1.0, top_p=0.9, n=2)])]
    cfg.compute.processes = processes
    return cfg


def _sample(studio, processes: int):
    from backend.stages import sample

    cfg = _config(processes)
    run_id = studio.create_run(cfg, check=False)
    log = studio.open_log()
    ctx = StageContext(run_id=run_id, home=studio.home, run_dir=studio.run_dir(run_id), cfg=cfg,
                       log=log)
    log.stage_start(run_id, 0, "sample", "sample")
    t0 = time.perf_counter()
    sample.run(ctx, 0, cfg.stages[0])
    dt = time.perf_counter() - t0
    rows = log.query(
        "SELECT p.key, s.cand_idx, s.decoding, s.seed, s.text, s.n_tokens, s.finish_reason, s.params "
        "FROM samples s JOIN prompts p ON p.id = s.prompt_id WHERE s.run_id=? "
        "ORDER BY p.key, s.cand_idx", (run_id,))
    events = [e["message"] for e in log.read_since("events", 0, run_id=run_id)]
    stage = log.get_stages(run_id)[0]
    steps = [m["step"] for m in log.query("SELECT step FROM metrics WHERE run_id=? AND "
                                          "name='samples_per_s' ORDER BY step", (run_id,))]
    log.close()
    return run_id, rows, events, stage, steps, dt


def test_two_shards_equal_one_process_row_for_row(studio):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each shard (and fast on a busy 2-core machine)
    try:
        _, one, _, _, steps1, dt1 = _sample(studio, 1)
    finally:
        torch.set_num_threads(threads)
    run2, two, events, stage, steps2, dt2 = _sample(studio, 2)
    print(f"\n1 process {dt1:.1f} s, 2 shards {dt2:.1f} s for {len(one)} samples")
    assert len(one) == 3 * 3 and len({(r["key"], r["cand_idx"]) for r in one}) == len(one)
    assert [tuple(r.values()) for r in two] == [tuple(r.values()) for r in one]
    assert any(r["text"] for r in one)
    assert steps2 == steps1  # each batch's metrics once, at the same step
    assert any("2 shard processes" in m for m in events)
    assert stage["done"] == stage["total"] == len(one)
    sdir = studio.run_dir(run2) / "00-sample"
    assert {p.name for p in sdir.glob("shard-*.stderr.log")} == {"shard-0.stderr.log",
                                                                 "shard-1.stderr.log"}


def test_dead_shard_fails_the_stage_naming_its_rank(studio, monkeypatch):
    from backend.compute import ShardError

    # the shard that draws the first batch kills itself in its model load
    monkeypatch.setenv("RESET_STUDIO_FAULT", "rank_start=1:error")
    with pytest.raises(ShardError, match=r"rank 1 exited with code 1") as err:
        _sample(studio, 2)
    assert "injected" in str(err.value)
