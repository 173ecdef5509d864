"""The headless CLI through real subprocesses."""
import subprocess
import sys

from tests.conftest import REPO


def cli(*args, home=None):
    cmd = [sys.executable, "-m", "backend.cli"]
    if home is not None:
        cmd += ["--home", str(home)]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, cwd=REPO, timeout=120)


def test_help_lists_commands():
    out = cli("--help").stdout
    for name in ("run", "status", "list", "cancel", "resume", "logs", "judge", "export", "presets"):
        assert name in out


def test_presets_listed():
    out = cli("presets").stdout
    assert "reset_demo" in out and "mtl → sample → judge → select → reset → evaluate" in out


def test_presets_show_prints_the_resolved_config(tmp_path):
    import tomllib

    from backend.config import config_from_dict, load_preset

    res = cli("presets", "--show", "reset_s_demo")
    assert res.returncode == 0, res.stderr
    data = tomllib.loads(res.stdout)
    assert "extends" not in data and "stage_defaults" not in data
    assert [s["name"] for s in data["stages"]] == ["mtl", "sample", "judge", "select", "reset_s",
                                                   "evaluate"]
    assert data["stages"][0]["lora_r"] == 8  # filled in from _demo_base's stage defaults
    shown = config_from_dict(data)
    assert shown.to_dict()["stages"] == load_preset("reset_s_demo").to_dict()["stages"]
    full = tomllib.loads(cli("presets", "--show", "mtl_demo", "--full").stdout)
    assert full["stages"][0]["lora_dropout"] == 0.0  # a default the preset does not state
    missing = cli("presets", "--show", "nope")
    assert missing.returncode == 2 and "unknown preset 'nope'" in missing.stderr


def test_one_base_error():
    """Every error a module raises for a person derives from StudioError: the CLI catches that."""
    import re

    from backend.config import ConfigError
    from backend.data import DataError
    from backend.errors import StudioError
    from backend.launcher import LaunchError
    from backend.runlog import RunLogError

    assert all(issubclass(e, StudioError) for e in (ConfigError, DataError, LaunchError, RunLogError))
    assert issubclass(ConfigError, ValueError) and issubclass(RunLogError, RuntimeError)  # as before
    strays = [f"{path.relative_to(REPO)}: {m.group(0)}" for path in (REPO / "backend").rglob("*.py")
              for m in re.finditer(r"^class (\w+Error)\((ValueError|RuntimeError|Exception)\)",
                                   path.read_text(encoding="utf-8"), re.M)
              if m.group(1) not in ("StudioError", "FieldError")]  # FieldError stays in pydantic
    assert not strays, strays


def test_list_empty_home(tmp_path):
    res = cli("list", home=tmp_path)
    assert res.returncode == 0 and "no runs yet" in res.stdout


def test_list_shows_slurm_job_column_only_when_a_run_has_one(tmp_path):
    import json

    from backend import slurm
    from backend.runlog import RunLog

    plan = '[[stages]]\ntype = "train"\n'
    with RunLog(tmp_path / "runlog.db") as log:
        log.create_run("r-local", name="local", preset="mtl_demo", config_toml=plan,
                       run_dir=str(tmp_path / "runs" / "r-local"), status="succeeded")
    plain = cli("list", home=tmp_path)
    assert plain.returncode == 0 and "r-local" in plain.stdout
    assert "JOB" not in plain.stdout.splitlines()[0]
    rdir = tmp_path / "runs" / "r-slurm"
    rdir.mkdir(parents=True)
    slurm._record(rdir, job_id="777", attempt=2, active=False, state="COMPLETED", node="c01")
    with RunLog(tmp_path / "runlog.db") as log:
        log.create_run("r-slurm", name="slurm", preset="mtl_demo", run_dir=str(rdir),
                       config_toml=plan + '[compute]\nexecutor = "slurm"\n', status="succeeded")
    res = cli("list", home=tmp_path)
    head, *rows = res.stdout.splitlines()
    assert head.split()[-2:] == ["JOB", "NODE"]
    by_id = {r.split()[0]: r.split() for r in rows}
    assert by_id["r-slurm"][-2:] == ["777", "c01"] and by_id["r-local"][-2:] == ["-", "-"]
    runs = {r["id"]: r for r in json.loads(cli("list", "--json", home=tmp_path).stdout)}
    assert runs["r-local"]["slurm_job"] is None
    assert runs["r-slurm"]["slurm_job"] == {"job_id": "777", "node": "c01", "state": "COMPLETED",
                                            "reason": "", "attempt": 2}


def test_unknown_run_is_clear(tmp_path):
    res = cli("status", "nope", home=tmp_path)
    assert res.returncode == 2
    assert "no run matching 'nope'" in res.stderr and "Traceback" not in res.stderr


def test_validate_preset_and_bad_checkpoint(tmp_path):
    ok = cli("validate", "mtl_demo", home=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("ok:")
    cfg = tmp_path / "bad.toml"
    # a user file that extends a preset and changes one value
    cfg.write_text(f'extends = "mtl_demo"\n[model]\nbase = "{tmp_path / "missing-model"}"\n')
    bad = cli("validate", str(cfg), home=tmp_path)
    assert bad.returncode == 1 and "does not exist" in bad.stdout


def test_run_refuses_bad_config(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[[stages]]\ntype = "train"\nlearning_rate = 0\n')
    res = cli("run", str(cfg), home=tmp_path)
    assert res.returncode == 2
    assert "stages.0.learning_rate" in res.stderr and "Traceback" not in res.stderr


def test_app_command_opens_window_on_demo(tmp_path):
    """The README's run command ends in `reset-gui`: the window opens on the demo preset."""
    import os

    exe = REPO / ".venv" / "bin" / "reset-gui"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "reset_gui.cli"]
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run(cmd + ["gui", "--home", str(tmp_path), "--quit-after", "3"],
                         capture_output=True, text=True, cwd=REPO, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "window shown (ReSet Studio, tab Setup, 0 runs" in res.stdout
    assert (tmp_path / "runlog.db").exists()


def test_judge_prepare_uses_the_factcc_cache(tmp_path, monkeypatch):
    """`judge --prepare` goes through backend.judges.factcc.prepare: with the cache in place it
    trains nothing and says where the model is and how it was trained."""
    import json
    import os

    from backend import paths
    from backend.judges import factcc
    from backend.judges.faithfulness import _minilm_path

    monkeypatch.setenv(paths.ENV_CACHE, str(tmp_path / "cache"))
    base = _minilm_path({})
    assert base, "the bundled MiniLM package is a dependency"
    folder = factcc.model_dir(base)  # the folder the recipe's cache key names, under tmp_path
    folder.mkdir(parents=True)
    (folder / "factcc.json").write_text(json.dumps({"steps": 180, "train_pairs": 2345,
                                                    "train_seconds": 201.5}))
    env = {**os.environ, paths.ENV_CACHE: str(tmp_path / "cache")}
    res = subprocess.run([sys.executable, "-m", "backend.cli", "judge", "--prepare"],
                         capture_output=True, text=True, cwd=REPO, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    lines = res.stdout.splitlines()
    assert lines[0].startswith("faith_factcc: preparing")
    assert lines[-1] == (f"faith_factcc: ready at {folder} (180 steps on 2345 pairs, trained in "
                         "201.5 s)")
    assert not any("factcc step" in ln for ln in lines)  # cached: no training
    assert "--prepare" in cli("judge", "--help").stdout
