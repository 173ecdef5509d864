"""Trackers: each export opens in its real tool's reader (TensorBoard's EventAccumulator, MLflow's
client on a local SQLite store), the CLI writes them, ``[tracking] report_to`` is validated, and a
real tiny training run reports to TensorBoard and MLflow through the Trainer's own ``report_to``.
No network anywhere."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.config import ConfigError, load_preset, loads
from backend.runlog import RunLog
from backend.trackers import (EXPERIMENT, RUN_TAG, TrackerError, _key, export_mlflow,
                              export_tensorboard, mlflow_uri, scalar_series)

sys.path.insert(0, str(Path(__file__).parent))
from test_gui_tabs_data import build_runlog  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return {**build_runlog(home, n_prompts=80), "home": home}


def _expected(demo, run_key="reset"):
    with RunLog(demo["path"]) as log:
        run = log.find_run(demo[run_key])
        series = list(scalar_series(log, run))
        loss = [(r["step"], r["value"]) for r in log.query(
            "SELECT step, value FROM metrics WHERE run_id = ? AND stage_idx = 0 AND name = 'loss' "
            "ORDER BY step", (run["id"],))]
        sel = log.query("SELECT n_selected FROM selections WHERE run_id = ?", (run["id"],))[0]
        ev = log.query("SELECT faithfulness FROM evals WHERE run_id = ? AND dataset = '_all' "
                       "ORDER BY checkpoint_id", (run["id"],))
        judges = [r["judge"] for r in log.query("SELECT DISTINCT judge FROM scores WHERE run_id = ?",
                                                (run["id"],))]
    return {"series": series, "loss": loss, "n_selected": sel["n_selected"],
            "faith": [r["faithfulness"] for r in ev], "judges": judges}


def test_series_cover_losses_judges_selection_and_evaluation(demo):
    exp = _expected(demo)
    keys = {k for k, *_ in exp["series"]}
    assert {"mtl/loss", "reset/loss", "select/accept_rate/instruction"} <= keys
    assert {_key("judge", "sample", j, "mean") for j in exp["judges"]} <= keys
    assert "judge/sample/cat_faithfulness/mean" in keys  # ':' is not allowed in a key
    assert {"selection/select/size", "eval/_all/faithfulness", "eval/_all/faithfulness_ci95_lo",
            "eval/squad_qa/task_score"} <= keys
    assert exp["loss"] and exp["judges"]


def test_tensorboard_export_reads_back_with_event_accumulator(demo, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    exp = _expected(demo)
    with RunLog(demo["path"]) as log:
        target = export_tensorboard(log, demo["reset"], tmp_path / "tb")
        with pytest.raises(TrackerError, match="already holds an export"):
            export_tensorboard(log, demo["reset"], tmp_path / "tb")
    acc = EventAccumulator(str(target), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"mtl/loss", "reset/loss", "selection/select/size", "eval/_all/faithfulness"} <= set(tags["scalars"])
    loss = [(e.step, e.value) for e in acc.Scalars("mtl/loss")]
    assert [s for s, _ in loss] == [s for s, _ in exp["loss"]]
    assert [v for _, v in loss] == pytest.approx([v for _, v in exp["loss"]], rel=1e-6)
    assert acc.Scalars("selection/select/size")[0].value == exp["n_selected"]
    faith = acc.Scalars("eval/_all/faithfulness")
    assert [e.step for e in faith] == [0, 1]  # mtl then reset
    assert [e.value for e in faith] == pytest.approx(exp["faith"], rel=1e-6)
    lo, hi = acc.Scalars("eval/_all/faithfulness_ci95_lo"), acc.Scalars("eval/_all/faithfulness_ci95_hi")
    assert all(a.value <= f.value <= b.value for a, f, b in zip(lo, faith, hi))
    hists = set(tags["histograms"])
    assert {_key("judge", j, "scores") for j in exp["judges"]} <= hists
    assert any(t.startswith("evaluation") for t in tags["tensors"])  # the text table


def test_mlflow_export_reads_back_with_the_mlflow_client(demo, tmp_path):
    from mlflow.tracking import MlflowClient

    exp = _expected(demo)
    with RunLog(demo["path"]) as log:
        rid = export_mlflow(log, demo["reset"], tmp_path / "ml")
        with pytest.raises(TrackerError, match="already in .* as MLflow run"):
            export_mlflow(log, demo["reset"], tmp_path / "ml")
        run_name = log.find_run(demo["reset"])["name"]
    client = MlflowClient(tracking_uri=mlflow_uri(tmp_path / "ml"))
    (found,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id],
                                  filter_string=f"tags.`{RUN_TAG}` = '{demo['reset']}'")
    assert found.info.run_id == rid and found.info.run_name == run_name
    hist = sorted((m.step, m.value) for m in client.get_metric_history(rid, "mtl/loss"))
    assert [s for s, _ in hist] == [s for s, _ in exp["loss"]]
    assert [v for _, v in hist] == pytest.approx([v for _, v in exp["loss"]])
    assert found.data.metrics["selection/select/size"] == exp["n_selected"]
    faith = sorted(client.get_metric_history(rid, "eval/_all/faithfulness"), key=lambda m: m.step)
    assert [m.value for m in faith] == pytest.approx(exp["faith"])
    assert found.data.params["preset"] == "reset_demo" and "mtl:train" in found.data.params["stages"]
    assert {_key("judge", "sample", j, "mean") for j in exp["judges"]} <= set(found.data.metrics)
    arts = {a.path for a in client.list_artifacts(rid)}
    assert {"evaluation.md", "config.toml"} <= arts
    table = Path(client.download_artifacts(rid, "evaluation.md", str(tmp_path / "dl"))).read_text()
    assert "| 1 | reset | _all |" in table


def test_cli_exports_both(demo, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    home = demo["home"]
    for what in ("tensorboard", "mlflow"):
        p = subprocess.run([sys.executable, "-m", "backend.cli", "--home", str(home), "export", what,
                            demo["mtl"], "--out", str(tmp_path / what)],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr[-3000:]
        assert "wrote" in p.stdout
    assert list((tmp_path / "tensorboard" / demo["mtl"]).glob("events.out.tfevents.*"))
    assert (tmp_path / "mlflow" / "mlflow.db").is_file()
    p = subprocess.run([sys.executable, "-m", "backend.cli", "--home", str(home), "export", "mlflow",
                        "nope", "--out", str(tmp_path / "x")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode != 0 and "Traceback" not in p.stderr and "nope" in p.stderr


def test_report_to_is_validated(monkeypatch):
    base = load_preset("mtl_demo").to_toml().replace("[tracking]\nreport_to = []\n", "")
    assert load_preset("mtl_demo").tracking.report_to == []  # default: none
    assert loads(base + '[tracking]\nreport_to = "none"\n').tracking.report_to == []
    cfg = loads(base + '[tracking]\nreport_to = ["tensorboard", "mlflow", "tensorboard"]\n')
    assert cfg.tracking.report_to == ["tensorboard", "mlflow"]
    assert loads(cfg.to_toml()).tracking.report_to == ["tensorboard", "mlflow"]  # round trip
    with pytest.raises(ConfigError, match=r"tracking\.report_to: unknown tracker 'comet'"):
        loads(base + '[tracking]\nreport_to = ["comet"]\n')
    assert loads(base + '[tracking]\nreport_to = ["wandb", "trackio"]\n').tracking.report_to == [
        "wandb", "trackio"]  # installed by the trackers extra
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("wandb", "trackio") else real(name, *a))
    for name in ("wandb", "trackio"):  # a tracker that is not installed is named, with the install line
        with pytest.raises(ConfigError, match=f"needs the '{name}' package: pip install {name}"):
            loads(base + f'[tracking]\nreport_to = ["{name}"]\n')


@pytest.mark.slow
def test_training_reports_to_tensorboard_and_mlflow(studio):
    """A real tiny train stage with report_to = tensorboard + mlflow: the Trainer's own callbacks
    write under the run folder, and both readers see the same losses as the run log."""
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from tests.helpers import tiny_config

    cfg = tiny_config("tracked", max_steps=3, save_steps=3)
    cfg.tracking.report_to = ["tensorboard", "mlflow"]
    run_id = studio.launch(cfg)
    run = studio.wait(run_id, timeout=900)
    assert run["status"] == "succeeded", run
    with studio.open_log() as log:
        loss = [(r["step"], r["value"]) for r in log.query(
            "SELECT step, value FROM metrics WHERE run_id = ? AND name = 'loss' ORDER BY step", (run_id,))]
        events = [e["message"] for e in log.read_since("events", 0, run_id=run_id)]
    assert [s for s, _ in loss] == [1, 2, 3]
    assert any(m.startswith("reporting to tensorboard") and "mlflow" in m for m in events), events
    trackers = Path(run["run_dir"]) / "trackers"
    acc = EventAccumulator(str(trackers / "tensorboard" / "00-mtl"))
    acc.Reload()
    tb = [(e.step, e.value) for e in acc.Scalars("train/loss")]
    assert [s for s, _ in tb] == [1, 2, 3]
    assert [v for _, v in tb] == pytest.approx([v for _, v in loss], rel=1e-4)
    client = MlflowClient(tracking_uri=mlflow_uri(trackers / "mlflow"))
    (ml,) = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id],
                               filter_string=f"tags.`{RUN_TAG}` = '{run_id}'")
    hist = sorted((m.step, m.value) for m in client.get_metric_history(ml.info.run_id, "loss"))
    assert [s for s, _ in hist] == [1, 2, 3]
    assert [v for _, v in hist] == pytest.approx([v for _, v in loss], rel=1e-4)
    assert ml.info.status == "FINISHED"
