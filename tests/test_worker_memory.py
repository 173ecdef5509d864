"""The worker's memory on a train stage: micro-batches on CPU, logits only where labels are, and
a peak RSS bound on a real worker process training with the demo's batch shape."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import psutil
import pytest
import torch

from backend import launcher, paths
from backend.config import load_preset
from backend.runlog import RunLog
from backend.stages.train import IGNORE, TokenCount, counting_trainer, micro_batch

# The demo's MTL batch (4 x 384 tokens) peaked at 4.4 GB before micro-batching and the logits
# cut; about 1.6 GB after (see benchmarks/bench_memory.py). The bound leaves room for noise.
PEAK_BOUND = 2 * 2**30


def test_micro_batch_keeps_the_batch_and_fits_the_token_budget():
    assert micro_batch(4, 384, "cpu") == 1
    assert micro_batch(4, 256, "cpu") == 2
    assert micro_batch(4, 64, "cpu") == 4
    assert micro_batch(6, 128, "cpu") == 3  # a divisor, so accumulation makes up the batch exactly
    assert micro_batch(4, 384, "cuda") == 4  # GPU memory is not the worker's RSS


def test_loss_on_label_positions_equals_the_full_loss(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from backend.models import load_model

    model, _tok = load_model("embedded", for_training=True)
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM"))
    model.eval()  # no dropout: both losses see the same network
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 49000, (2, 48), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 40:] = 0
    labels = ids.clone()
    labels[0, :30] = IGNORE
    labels[1, :20] = IGNORE
    labels[1, 40:] = IGNORE
    inputs = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    ours = counting_trainer(TokenCount())(model=model, args=args)
    bare = Trainer(model=model, args=args)
    with torch.no_grad():
        for n in (None, torch.tensor(37)):
            a = ours.compute_loss(model, dict(inputs), num_items_in_batch=n)
            b = bare.compute_loss(model, dict(inputs), num_items_in_batch=n)
            assert torch.allclose(a, b, rtol=1e-5), (float(a), float(b))


@pytest.mark.slow  # one real worker, ~45 s on 2 cores
def test_worker_peak_rss_on_a_demo_sized_train_step():
    cfg = load_preset("reset_demo")
    st = cfg.stages[0]
    cfg.stages = [st]
    st.max_steps, st.batch_size, st.max_length = 1, 4, 384
    st.save_steps, st.probe_size = 1000, 0
    home = tempfile.mkdtemp(prefix="test-mem-")
    run_id = launcher.create_run(cfg, home)
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", RESET_STUDIO_TORCH_THREADS="1")
    worker = subprocess.Popen([sys.executable, "-m", "backend.worker", "--home", home, run_id],
                              cwd=str(paths.REPO_ROOT), env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    proc = psutil.Process(worker.pid)
    peak = 0
    while worker.poll() is None:
        try:
            peak = max(peak, proc.memory_info().rss)
        except psutil.Error:
            pass
        time.sleep(0.02)
    with RunLog(paths.runlog_path(home), readonly=True) as log:
        assert log.get_run(run_id)["status"] == "succeeded"
        events = [e["message"] for e in log.query("SELECT message FROM events WHERE run_id = ?",
                                                   (run_id,))]
    assert any("micro-batches of 1" in m for m in events), events
    assert 0 < peak < PEAK_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"
