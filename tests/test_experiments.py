"""Several seeds of one config: one run per seed, grouped by runs.experiment; seeds pooled per item."""
from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys

import pytest

from backend.config import RunConfig, config_from_dict, load_preset
from backend.eval_details import EvalDetails, ItemScores
from backend.experiments import merge_seeds, parse_seeds, seed_configs
from backend.runlog import SCHEMA_VERSION, RunLog
from tests.conftest import REPO


def test_parse_seeds():
    assert parse_seeds("1,2,3") == [1, 2, 3] and parse_seeds(" 7 ") == [7]
    for bad in ("", "1,1", "a,b", "-1,2"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_config_seeds_make_one_config_per_seed():
    cfg = load_preset("mtl_demo")
    cfg.seeds = [1, 2, 3]
    cfgs = seed_configs(cfg)
    assert [c.seed for c in cfgs] == [1, 2, 3] and all(c.seeds == [] for c in cfgs)
    assert [c.name for c in cfgs] == [f"{cfg.name}-s{s}" for s in (1, 2, 3)]
    assert cfgs[0].stages == cfg.stages and cfgs[0].stages is not cfg.stages
    assert seed_configs(cfg, [5])[0].seed == 5 and seed_configs(cfg, [5])[0].name == cfg.name
    # the TOML round trip keeps the list; repeats are refused
    again = RunConfig.model_validate(cfg.model_dump())
    assert again.seeds == [1, 2, 3]
    with pytest.raises(Exception, match="distinct"):
        config_from_dict({**cfg.model_dump(), "seeds": [1, 1]})


def test_runlog_migrates_to_the_experiment_column(tmp_path):
    path = tmp_path / "runlog.db"
    log = RunLog(path)
    log.create_run("r1", name="a", preset="p", config_toml="", run_dir=str(tmp_path), experiment="exp-1")
    assert log.get_run("r1")["experiment"] == "exp-1"
    # make it a version-2 log: no experiment column
    log.conn.execute("DROP INDEX idx_runs_experiment")
    log.conn.execute("ALTER TABLE runs DROP COLUMN experiment")
    log.conn.execute("UPDATE meta SET value='2' WHERE key='schema_version'")
    log.close()
    ro = RunLog(path, readonly=True)  # a viewer does not migrate, and still reads the runs
    assert "experiment" not in ro.get_run("r1")
    ro.close()
    log = RunLog(path)
    assert log._version() == SCHEMA_VERSION == 3
    assert log.get_run("r1")["experiment"] is None
    log.update_run("r1", experiment="exp-2")
    assert log.get_run("r1")["experiment"] == "exp-2"
    idx = {r[1] for r in log.conn.execute("PRAGMA index_list(runs)")}
    assert "idx_runs_experiment" in idx
    log.close()


def _det(level: float, seed: int, keys=("q:1", "q:2", "q:3", "a:1", "a:2")) -> EvalDetails:
    rng = random.Random(seed)
    items = {}
    for k in keys:
        grounded = k.startswith("q")
        items[k] = ItemScores("q" if grounded else "a", "qa_extractive" if grounded else "instruction",
                              faithfulness=level + rng.uniform(-0.1, 0.1) if grounded else None,
                              instruction_following=None if grounded else level + rng.uniform(-0.1, 0.1),
                              task_score=0.5, n_tokens=10 + seed)
    d = EvalDetails(kind="_all", items=items)
    d.means = {"faithfulness": sum(i.faithfulness for i in items.values() if i.faithfulness is not None) / 3}
    return d


def test_merge_seeds_pools_each_item_over_the_seeds():
    dets = [_det(0.6, s) for s in (1, 2, 3)]
    m = merge_seeds(dets)
    for k in ("q:1", "a:2"):
        cat = "faithfulness" if k.startswith("q") else "instruction_following"
        assert m.items[k].get(cat) == pytest.approx(sum(d.items[k].get(cat) for d in dets) / 3)
    assert m.means["faithfulness"] == pytest.approx(sum(d.means["faithfulness"] for d in dets) / 3)
    assert m.seed_means["faithfulness"] == [d.means["faithfulness"] for d in dets]
    assert m.intervals["faithfulness"].contains(m.means["faithfulness"])
    assert m.items["q:1"].n_tokens == 12 and m.bootstrap["seeds"] == 3
    # an item only one seed scored counts with that seed's score
    extra = _det(0.9, 4, keys=("q:9",))
    assert merge_seeds(dets + [extra]).items["q:9"].faithfulness == extra.items["q:9"].faithfulness
    assert EvalDetails.from_json(m.to_json()) == m


def _cli(*args, home):
    return subprocess.run([sys.executable, "-m", "backend.cli", "--home", str(home), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300)


def test_cli_run_with_seeds_launches_one_grouped_run_per_seed(tmp_path):
    bad = _cli("run", "mtl_demo", "--seeds", "1,1", home=tmp_path)
    assert bad.returncode == 2 and "distinct" in bad.stderr and "Traceback" not in bad.stderr
    res = _cli("run", "mtl_demo", "--seeds", "3,4", "--detach", home=tmp_path)
    assert res.returncode == 0, res.stderr
    try:
        assert res.stdout.count("experiment exp-") == 2
        runs = json.loads(_cli("list", "--json", home=tmp_path).stdout)
        assert len(runs) == 2
        con = sqlite3.connect(tmp_path / "runlog.db")
        rows = con.execute("SELECT id, name, experiment, config_toml FROM runs ORDER BY created_at").fetchall()
        con.close()
        assert len({r[2] for r in rows}) == 1 and rows[0][2].startswith("exp-")
        assert sorted(r[1].rsplit("-s", 1)[1] for r in rows) == ["3", "4"]
        for _id, name, _exp, toml in rows:
            assert f"seed = {name.rsplit('-s', 1)[1]}\n" in toml and "seeds = []" in toml
    finally:
        for r in json.loads(_cli("list", "--json", home=tmp_path).stdout):
            _cli("cancel", r["id"], "--wait", home=tmp_path)
