"""``backend.trackers.report_to`` with a real transformers Trainer (a tiny random Llama, seconds on a
CPU): TensorBoard, MLflow, W&B (offline) and trackio each write under the run folder, and each
tool's own reader sees the Trainer's losses — TensorBoard's EventAccumulator, the MLflow client on
its local SQLite store, W&B's transaction log parsed into wandb's own protobuf records, and
trackio's SQLiteStorage. No network."""
from __future__ import annotations

import os
import struct
import types
from pathlib import Path

import pytest

from backend import trackers

ENV_KEYS = ("TENSORBOARD_LOGGING_DIR", "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TAGS",
            "WANDB_MODE", "WANDB_DIR", "WANDB_PROJECT", "WANDB_NAME", "TRACKIO_DIR")


@pytest.fixture
def clean_env():
    saved = dict(os.environ)
    for k in ENV_KEYS:
        os.environ.pop(k, None)
    yield
    os.environ.clear()
    os.environ.update(saved)


def wandb_records(path: Path):
    """The records of a W&B transaction log (.wandb): LevelDB log blocks of wandb Record protos."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, buf = 7, 32768, b""
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 and length == 0:
            pos += left
            continue
        chunk = data[pos + 7:pos + 7 + length]
        pos += 7 + length
        buf = chunk if kind in (1, 2) else buf + chunk  # FULL/FIRST start, MIDDLE/LAST append
        if kind in (1, 4):
            rec = pb.Record()
            rec.ParseFromString(buf)
            yield rec
            buf = b""


def test_trainer_reports_to_tensorboard_mlflow_wandb_offline_and_trackio(tmp_path, clean_env):
    import torch
    from datasets import Dataset
    from mlflow.tracking import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments

    events: list[str] = []
    ctx = types.SimpleNamespace(
        cfg=types.SimpleNamespace(tracking=types.SimpleNamespace(report_to=["tensorboard", "mlflow", "wandb", "trackio"])),
        run_dir=tmp_path / "run", run_id="20250101-000000-tiny-0001",
        event=lambda idx, msg, **kw: events.append(msg))
    names = trackers.report_to(ctx, 0, types.SimpleNamespace(name="mtl"))
    assert names == ["tensorboard", "mlflow", "wandb", "trackio"]
    assert os.environ["WANDB_MODE"] == "offline"
    assert len(events) == 1 and "wandb (offline)" in events[0]

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2,
                                         intermediate_size=32))
    rows = [[i % 64 for i in range(j, j + 12)] for j in range(16)]
    ds = Dataset.from_list([{"input_ids": r, "attention_mask": [1] * 12, "labels": r} for r in rows])
    args = TrainingArguments(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4,
                             max_steps=4, logging_steps=1, report_to=names, use_cpu=True,
                             disable_tqdm=True, save_strategy="no")
    seen: list[tuple[int, float]] = []

    from transformers import TrainerCallback

    class Losses(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                seen.append((state.global_step, float(logs["loss"])))

    Trainer(model=model, args=args, train_dataset=ds, callbacks=[Losses()]).train()
    import wandb

    wandb.finish()  # flush the offline log (the Trainer leaves the run open until exit)
    assert [s for s, _ in seen] == [1, 2, 3, 4]
    losses = [v for _, v in seen]
    root = tmp_path / "run" / "trackers"

    acc = EventAccumulator(str(root / "tensorboard" / "00-mtl"))
    acc.Reload()
    tb = acc.Scalars("train/loss")
    assert [e.step for e in tb] == [1, 2, 3, 4]
    assert [e.value for e in tb] == pytest.approx(losses, rel=1e-5)

    client = MlflowClient(tracking_uri=trackers.mlflow_uri(root / "mlflow"))
    exp = client.get_experiment_by_name(trackers.EXPERIMENT)
    (run,) = client.search_runs([exp.experiment_id],
                                filter_string=f"tags.`{trackers.RUN_TAG}` = '{ctx.run_id}'")
    assert run.data.tags["reset_studio.stage"] == "00-mtl"
    hist = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "loss"))
    assert [s for s, _ in hist] == [1, 2, 3, 4]
    assert [v for _, v in hist] == pytest.approx(losses, rel=1e-5)

    (log_file,) = (root / "wandb").glob("offline-run-*/run-*.wandb")
    records = list(wandb_records(log_file))
    (meta,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert meta.display_name == f"{ctx.run_id}/00-mtl" and meta.project == trackers.EXPERIMENT
    history = [{i.key or "/".join(i.nested_key): i.value_json for i in r.history.item} for r in records
               if r.WhichOneof("record_type") == "history"]
    wb = [(int(h["train/global_step"]), float(h["train/loss"])) for h in history if "train/loss" in h]
    assert [s for s, _ in wb] == [1, 2, 3, 4]
    assert [v for _, v in wb] == pytest.approx(losses, rel=1e-5)

    assert os.environ["TRACKIO_DIR"] == str(root / "trackio")
    from trackio.sqlite_storage import SQLiteStorage

    (tr_run,) = SQLiteStorage.get_runs("huggingface")  # the Trainer's default trackio project
    tr = [log["train/loss"] for log in SQLiteStorage.get_logs("huggingface", tr_run)
          if log.get("train/loss") is not None]
    assert tr == pytest.approx(losses, rel=1e-5)
    assert (root / "trackio" / "huggingface.db").is_file()


def test_report_to_none_sets_nothing(tmp_path, clean_env):
    ctx = types.SimpleNamespace(cfg=types.SimpleNamespace(tracking=types.SimpleNamespace(report_to=[])),
                                run_dir=tmp_path, run_id="r", event=lambda *a, **k: None)
    assert trackers.report_to(ctx, 0, types.SimpleNamespace(name="mtl")) == "none"
    assert not any(k in os.environ for k in ENV_KEYS)
    assert not (tmp_path / "trackers").exists()


def test_a_tracking_uri_the_user_set_wins(tmp_path, clean_env):
    os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///" + str(tmp_path / "mine.db")
    ctx = types.SimpleNamespace(cfg=types.SimpleNamespace(tracking=types.SimpleNamespace(report_to=["mlflow"])),
                                run_dir=tmp_path / "run", run_id="r", event=lambda *a, **k: None)
    trackers.report_to(ctx, 2, types.SimpleNamespace(name="reset"))
    assert os.environ["MLFLOW_TRACKING_URI"].endswith("mine.db")
    assert '"reset_studio.stage": "02-reset"' in os.environ["MLFLOW_TAGS"]
