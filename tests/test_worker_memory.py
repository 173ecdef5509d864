"""The worker's memory on a train stage: token-capped chunks on CPU, logits only where labels are,
activation-lean ops (a recomputed SwiGLU, a loss without whole logits), and a peak RSS bound on a real worker process training with the demo's batch shape."""
from __future__ import annotations

import ctypes.util
import os
import subprocess
import sys
import tempfile
import time

import psutil
import pytest
import torch

from backend import lean_ops, paths
from backend.config import load_preset
from backend.launcher import Studio
from backend.stages.train import IGNORE, TokenCount, counting_trainer, token_chunks

# The demo's MTL batch (4 x 384 tokens) peaked at 4.4 GB in one pass; as chunks with the lean ops
# about 1.45 GiB under jemalloc, more under glibc malloc (see benchmarks/bench_memory.py). The
# bound is glibc's with room for noise.
PEAK_BOUND = 2.5 * 2**30


def _batch(lengths: list[int], seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.randint(0, 49000, (len(lengths), width), generator=g)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE)
    for i, n in enumerate(lengths):
        mask[i, :n] = 1
        labels[i, n // 2:n] = ids[i, n // 2:n]
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def test_token_chunks_keep_rows_in_order_within_the_token_cap():
    batch = _batch([300, 200, 150, 60])
    chunks = token_chunks(batch, 384)
    assert [tuple(c["input_ids"].shape) for c in chunks] == [(1, 300), (1, 200), (2, 150)]
    assert sum(int(c["attention_mask"].sum()) for c in chunks) == 710  # no real token lost
    assert torch.equal(chunks[2]["labels"][1, :60], batch["labels"][3, :60])
    assert token_chunks(batch, 2000) == [batch]  # fits: one pass, untouched


def _lora_model(targets: list[str], dtype: str = "float32"):
    from peft import LoraConfig, get_peft_model

    from backend.models import load_model

    model, _tok = load_model("embedded", for_training=True, dtype=dtype)
    return get_peft_model(model, LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM",
                                            target_modules=targets))


def _step(model, batch: dict, tmp_path, chunk_tokens: int, lean: bool = False):
    """(loss, LoRA gradients) of one CountingTrainer.training_step on ``batch``."""
    from transformers import TrainingArguments

    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    n_items = torch.tensor(int((batch["labels"][:, 1:] != IGNORE).sum()))
    model.zero_grad()
    trainer = counting_trainer(TokenCount(), chunk_tokens, lean)(model=model, args=args)
    loss = float(trainer.training_step(model, dict(batch), num_items_in_batch=n_items))
    return loss, [p.grad.clone() for p in model.parameters() if p.requires_grad]


def test_a_chunked_step_gives_the_whole_batch_gradient(tmp_path):
    model = _lora_model(["q_proj", "v_proj"])
    batch = _batch([40, 30, 24, 10], seed=1)
    # 48 tokens: three chunks
    losses, grads = zip(*(_step(model, batch, tmp_path, cap) for cap in (0, 48)))
    assert len(token_chunks(batch, 48)) == 3
    assert abs(losses[0] - losses[1]) < 1e-4 * abs(losses[0])
    for whole, chunked in zip(*grads):
        assert torch.allclose(whole, chunked, rtol=1e-3, atol=1e-6)


def test_loss_on_label_positions_equals_the_full_loss(tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import Trainer, TrainingArguments

    from backend.models import load_model

    model, _tok = load_model("embedded", for_training=True, dtype="float32")
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


def test_silu_mul_has_the_gradient_of_silu_times_up():
    g = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    u = torch.randn(5, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lean_ops.SiluMul.apply, (g, u))
    assert torch.allclose(lean_ops.SiluMul.apply(g, u), torch.nn.functional.silu(g) * u)


def test_swiglu_down_has_the_gradient_of_a_lora_down_projection():
    d = dict(dtype=torch.float64)
    g, u = (torch.randn(2, 3, 6, **d, requires_grad=True) for _ in range(2))
    w = torch.randn(4, 6, **d)  # frozen
    a_w = torch.randn(2, 6, **d, requires_grad=True)
    b_w = torch.randn(4, 2, **d, requires_grad=True)
    assert torch.autograd.gradcheck(lambda *t: lean_ops.SwiGLUDown.apply(*t[:2], w, *t[2:], 0.5),
                                    (g, u, a_w, b_w))
    p = torch.nn.functional.silu(g) * u
    assert torch.allclose(lean_ops.SwiGLUDown.apply(g, u, w, a_w, b_w, 0.5),
                          p @ w.t() + 0.5 * (p @ a_w.t()) @ b_w.t())


def test_linear_cross_entropy_equals_cross_entropy_of_the_whole_logits():
    n = lean_ops.CE_CHUNK * 2 + 5  # three slices, the last one short
    h = torch.randn(n, 16, dtype=torch.float64, requires_grad=True)
    w = torch.randn(50, 16, dtype=torch.float64)
    t = torch.randint(0, 50, (n,))
    ours = lean_ops.LinearCrossEntropy.apply(h, w, t)
    (3 * ours).backward()
    ref = torch.nn.functional.cross_entropy(h.detach() @ w.t(), t, reduction="sum")
    h_ref = h.detach().clone().requires_grad_(True)
    (3 * torch.nn.functional.cross_entropy(h_ref @ w.t(), t, reduction="sum")).backward()
    assert torch.allclose(ours, ref)
    assert torch.allclose(h.grad, h_ref.grad)


@pytest.mark.parametrize("targets", [["q_proj", "up_proj", "down_proj"],  # SwiGLUDown
                                     ["q_proj", "gate_proj"]])  # SiluMul, a plain down_proj
def test_lean_training_step_gives_the_plain_loss_and_gradient(tmp_path, targets):
    model = _lora_model(targets)
    assert lean_ops.lean_parts(model) is not None
    batch = _batch([40, 30, 24, 10], seed=2)
    plain = _step(model, batch, tmp_path, 48)
    assert lean_ops.lean_mlp(model) == 30  # every decoder layer's MLP
    down = model.get_base_model().model.layers[0].mlp.down_proj
    assert (lean_ops._lora_parts(down) is not None) == ("down_proj" in targets)
    losses, grads = zip(plain, _step(model, batch, tmp_path, 48, lean=True))
    assert abs(losses[0] - losses[1]) < 1e-5 * abs(losses[0]), losses
    for plain, lean in zip(*grads):
        assert torch.allclose(plain, lean, rtol=1e-3, atol=1e-6)
    with torch.no_grad():  # generation keeps the model's own MLP forward
        assert model(input_ids=batch["input_ids"][:1, :8]).logits.shape == (1, 8, 49152)


def test_lean_step_over_a_bf16_base_follows_the_plain_one(tmp_path):
    # dtype = "bfloat16" on a CPU: LoRA over a bf16 base, the adapter kept in fp32 by peft (this
    # crashed in SwiGLUDown before: bf16 activations met the fp32 adapter)
    model = _lora_model(["q_proj", "up_proj", "down_proj"], dtype="bfloat16")
    down = model.get_base_model().model.layers[0].mlp.down_proj
    assert down.base_layer.weight.dtype == torch.bfloat16
    assert down.lora_A["default"].weight.dtype == torch.float32
    batch = _batch([40, 30, 24, 10], seed=3)
    for p in model.parameters():  # a trained adapter: B = 0 would hide A's gradient
        if p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)
    plain = _step(model, batch, tmp_path, 48)
    assert lean_ops.lean_mlp(model) == 30
    lean = _step(model, batch, tmp_path, 48, lean=True)
    assert abs(plain[0] - lean[0]) < 1e-2 * abs(plain[0]), (plain[0], lean[0])
    for a, b in zip(plain[1], lean[1]):  # bf16 rounding in a different order: close, not equal
        assert a.dtype == b.dtype == torch.float32
        cos = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)
        assert cos > 0.98, float(cos)


@pytest.mark.slow  # one real worker, ~45 s on 2 cores
def test_worker_peak_rss_on_a_demo_sized_train_step():
    cfg = load_preset("reset_demo")
    st = cfg.stages[0]
    cfg.stages = [st]
    st.max_steps, st.batch_size, st.max_length = 1, 4, 384
    st.save_steps, st.probe_size = 1000, 0
    home = tempfile.mkdtemp(prefix="test-mem-")
    run_id = Studio(home).create_run(cfg)
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
    with Studio(home).open_log(readonly=True) as log:
        assert log.get_run(run_id)["status"] == "succeeded"
        events = [e["message"] for e in log.query("SELECT message FROM events WHERE run_id = ?",
                                                   (run_id,))]
    assert any("run as chunks" in m for m in events), events
    assert any("activation-lean ops" in m for m in events), events
    # the worker re-executes itself under jemalloc where the system has it, keeping its pid
    allocator = "jemalloc" if ctypes.util.find_library("jemalloc") else "glibc malloc"
    assert f"worker started (pid {worker.pid}, {allocator})" in events, events
    assert 0 < peak < PEAK_BOUND, f"peak RSS {peak / 2**20:.0f} MiB"
