#!/usr/bin/env bash
# One-command GPU check for a CUDA machine: trains the demo on CUDA (bf16 where supported),
# samples with HF and (if installed) vLLM, runs 2-process DDP (LoRA) and FSDP (full fine-tuning)
# where 2 GPUs exist, and prints
# tokens/s for each. Usage: scripts/gpu_check.sh [--steps N]   (needs a CUDA build of torch in .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
exec "$PY" - "$@" <<'PYEOF'
import argparse, importlib.util, os, statistics, sys, tempfile, time
sys.path.insert(0, os.getcwd())
ap = argparse.ArgumentParser(prog="scripts/gpu_check.sh")
ap.add_argument("--steps", type=int, default=30)
args = ap.parse_args()

import torch
if not torch.cuda.is_available():
    sys.exit(f"gpu_check: no CUDA device (torch {torch.__version__}, cuda build: {torch.version.cuda})")
n_gpu = torch.cuda.device_count()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {n_gpu} x {torch.cuda.get_device_name(0)}, "
      f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")

from backend import launcher
from backend.config import DecodingSpec, SampleStage, load_preset

home = tempfile.mkdtemp(prefix="reset-gpu-check-")
results = []

def run(cfg, what):
    t0 = time.time()
    rid = launcher.launch(cfg, home)
    r = launcher.wait(rid, home, timeout=3600, poll=0.5)
    if r["status"] != "succeeded":
        print(f"{what}: {r['status']}: {r['error']}\n{r.get('error_tail') or r.get('stderr_tail') or ''}")
        results.append((what, None, time.time() - t0))
        return None
    return rid

def train(processes, strategy="ddp"):
    cfg = load_preset("mtl_demo")
    cfg.name = f"gpu-train-{processes}"
    cfg.model.device = "cuda"
    st = cfg.stages[0]
    cfg.stages = [st]
    st.max_steps, st.save_steps, st.probe_size, st.batch_size = args.steps, 10_000, 0, 8
    cfg.compute.processes = processes
    cfg.compute.gpus_per_process = 1 if processes > 1 else 0
    cfg.compute.strategy = strategy
    if strategy == "fsdp":
        st.method = "full"
    what = f"train demo, {processes} process{f'es ({strategy.upper()}, nccl)' if processes > 1 else ''}"
    rid = run(cfg, what)
    if rid:
        with launcher.open_log(home) as log:
            tps = [m["value"] for m in log.query("SELECT value FROM metrics WHERE run_id=? AND "
                                                 "name='tokens_per_s' ORDER BY step", (rid,))][2:]
            st_row = log.get_stages(rid)[0]
        results.append((what, statistics.median(tps) if tps else None,
                        st_row["ended_at"] - st_row["started_at"]))

def sample(backend):
    cfg = load_preset("mtl_demo")
    cfg.name = f"gpu-sample-{backend}"
    cfg.model.device = "cuda"
    for d in cfg.data:
        d.budget = 32
    cfg.stages = [SampleStage(name="sample", source="base", backend=backend, max_new_tokens=96,
                              batch_size=32, decoding=[DecodingSpec(name="t1.0", temperature=1.0, n=4)])]
    rid = run(cfg, f"sample, {backend}")
    if rid:
        with launcher.open_log(home) as log:
            tps = [m["value"] for m in log.query("SELECT value FROM metrics WHERE run_id=? AND "
                                                 "name='tokens_per_s'", (rid,))]
            st_row = log.get_stages(rid)[0]
        results.append((f"sample, {backend}", statistics.median(tps) if tps else None,
                        st_row["ended_at"] - st_row["started_at"]))

train(1)
sample("hf")
if importlib.util.find_spec("vllm"):
    sample("vllm")
else:
    results.append(("sample, vllm", None, 0.0)); print("vllm not installed: skipped (pip install -e '.[vllm]')")
if n_gpu >= 2:
    train(2)
    train(2, "fsdp")
else:
    results.append(("train demo, 2 processes", None, 0.0)); print("one GPU: 2-process DDP and FSDP skipped")

print(f"\n{'check':<40} {'tokens/s':>10} {'stage s':>8}")
for what, tps, secs in results:
    print(f"{what:<40} {('-' if tps is None else f'{tps:,.0f}'):>10} {secs:8.1f}")
PYEOF
