"""Training: the train stage (backend/stages/train.py through a StageContext) vs a bare
transformers Trainer on the same model, LoRA settings, encoded data and arguments; plus the share
of padding tokens per batch with and without length grouping.

Each variant runs in its own process: the stage's as the worker runs it (its allocator and malloc
settings: ``python -m benchmarks.bench_training stage-probes``), the bare Trainer as a user's
script would (the system malloc), so neither inherits the other's heap."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .common import Options, Target, header, median, table


class _Clock:
    """Filled by TimedTrainer: wall time of train() and per-step end times with token counts."""

    def __init__(self):
        self.train_s = 0.0
        self.steps: list[tuple[float, int]] = []  # (time at step end, real tokens so far)
        self.real = 0
        self.total = 0
        self.peak_rss = 0  # sampled over the variant's whole process
        self.allocator = ""
        self.probe_s = 0.0  # the stage's own count of its probes' seconds inside train()


def _timed_trainer_class(clock: _Clock, base):
    from transformers import TrainerCallback

    class StepClock(TrainerCallback):
        def __init__(self, collator):
            self.collator = collator

        def on_step_end(self, args, state, control, **kw):
            # the Trainer's own count of non-padding tokens: the same for stage and bare runs
            clock.steps.append((time.perf_counter(), int(state.num_input_tokens_seen or 0)))

    class TimedTrainer(base):
        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.add_callback(StepClock(self.data_collator))

        def train(self, *a, **kw):
            t0 = time.perf_counter()
            clock.steps.append((t0, 0))
            try:
                return super().train(*a, **kw)
            finally:
                clock.train_s = time.perf_counter() - t0
                clock.real = int(self.state.num_input_tokens_seen or 0)
                clock.total = getattr(self.data_collator, "total", 0)

    return TimedTrainer


def _bench_config(opts: Options, probes: bool):
    from backend.config import load_preset

    cfg = load_preset("reset_demo")
    cfg.name = "bench-train"
    train = cfg.stages[0]  # the preset's MTL stage: --quick 4 steps, else the whole stage
    train.max_steps = 4 if opts.quick else None
    if opts.quick:
        train.max_length = 256
    if not probes:
        train.probe_size = 0
    train.save_steps = 1000  # no intermediate checkpoint inside the timed window
    cfg.stages = [train]
    return cfg


def _stage_run(opts: Options, probes: bool, tmp: Path) -> _Clock:
    from backend.runlog import RunLog
    from backend.stages import train as train_stage
    from backend.stages.context import StageContext

    cfg = _bench_config(opts, probes)
    run_id = f"bench-{'probes' if probes else 'noprobe'}-{time.time_ns()}"
    run_dir = tmp / run_id
    log = RunLog(tmp / "runlog.db")
    log.create_run(run_id, name=cfg.name, preset="bench", config_toml=cfg.to_toml(),
                   run_dir=str(run_dir))
    ctx = StageContext(run_id=run_id, home=tmp, run_dir=run_dir, cfg=cfg, log=log)
    clock = _Clock()
    # time the stage's own Trainer class (patching transformers.Trainer misses: transformers
    # swaps its module object on first import of a submodule)
    factory = train_stage.counting_trainer
    train_stage.counting_trainer = lambda *a: _timed_trainer_class(clock, factory(*a))
    try:
        log.stage_start(run_id, 0, cfg.stages[0].name, "train")
        train_stage.run(ctx, 0, cfg.stages[0])
        for event in log.read_since("events", 0, run_id=run_id):
            found = re.search(r"generation-length probes ([\d.]+) s of it", event["message"])
            clock.probe_s = float(found.group(1)) if found else clock.probe_s
    finally:
        train_stage.counting_trainer = factory
        log.close()
    return clock


def _bare_run(opts: Options, tmp: Path) -> _Clock:
    """Same model, LoRA, data, collator and hyper-parameters; no run log, callback or probes."""
    import datasets
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments, set_seed

    from backend.data import build_mixture, encode_examples
    from backend.models import load_model
    from backend.stages.train import IGNORE, PaddingCounter

    cfg = _bench_config(opts, probes=False)
    st = cfg.stages[0]
    seed = cfg.seed * 1000  # StageContext.seed_for(0)
    set_seed(seed)
    model, tok = load_model("embedded", for_training=True)
    model = get_peft_model(model, LoraConfig(r=st.lora_r, lora_alpha=st.lora_alpha,
                                             lora_dropout=st.lora_dropout,
                                             target_modules=st.target_modules, task_type="CAUSAL_LM"))
    model.enable_input_require_grads()
    recs = build_mixture(cfg.data, seed, names=st.data or None)
    encoded, _fit = encode_examples(tok, [(r, r.reference) for r in recs if r.reference],
                                    st.max_length)
    ds = datasets.Dataset.from_list(encoded)
    args = TrainingArguments(
        output_dir=str(tmp / f"bare-{time.time_ns()}"), per_device_train_batch_size=st.batch_size,
        gradient_accumulation_steps=st.grad_accum, learning_rate=st.learning_rate,
        num_train_epochs=st.epochs, max_steps=st.max_steps or -1, lr_scheduler_type="linear",
        logging_steps=st.logging_steps, save_strategy="no",
        train_sampling_strategy="group_by_length" if st.group_by_length else "random",
        seed=seed, data_seed=seed, use_cpu=True, report_to="none", disable_tqdm=True,
        dataloader_num_workers=0, remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding")
    # the counter only measures tokens (a sum per batch); the stage has the same one
    collator = PaddingCounter(DataCollatorForSeq2Seq(tok, padding=True, label_pad_token_id=IGNORE))
    clock = _Clock()
    trainer = _timed_trainer_class(clock, Trainer)(model=model, args=args, train_dataset=ds,
                                                   data_collator=collator, processing_class=tok)
    trainer.train()
    return clock


def padding_fractions(opts: Options) -> dict[str, float]:
    """Padding share over one epoch of the preset MTL stage's batches, grouped vs random order."""
    import datasets
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from backend.config import load_preset
    from backend.data import build_mixture, encode_examples
    from backend.stages.train import IGNORE, PaddingCounter

    from .bench_sampling import embedded_model

    cfg = load_preset("reset_demo")
    st = cfg.stages[0]
    model, tok = embedded_model(opts)
    tok_side = tok.padding_side
    tok.padding_side = "right"
    recs = build_mixture(cfg.data, cfg.seed * 1000, names=st.data or None)
    encoded, _fit = encode_examples(tok, [(r, r.reference) for r in recs if r.reference],
                                    st.max_length)
    ds = datasets.Dataset.from_list(encoded)
    out = {}
    tmp = tempfile.mkdtemp(prefix="bench-pad-")
    try:
        for strategy in ("group_by_length", "random"):
            args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=st.batch_size,
                                     train_sampling_strategy=strategy, use_cpu=True,
                                     report_to="none", remove_unused_columns=False, seed=1,
                                     data_seed=1)
            counter = PaddingCounter(DataCollatorForSeq2Seq(tok, padding=True,
                                                            label_pad_token_id=IGNORE))
            trainer = Trainer(model=model, args=args, train_dataset=ds, data_collator=counter,
                              processing_class=tok)
            for _ in trainer.get_train_dataloader():
                pass
            out[strategy] = 1.0 - counter.real / counter.total
    finally:
        tok.padding_side = tok_side
        shutil.rmtree(tmp, ignore_errors=True)
    out["examples"] = len(encoded)
    out["batch_size"] = st.batch_size
    return out


VARIANTS = {"bare Trainer": "bare", "stage (no probes)": "stage-noprobes",
            "stage (preset probes)": "stage-probes"}


def _in_own_process(variant: str, opts: Options, tmp: Path) -> _Clock:
    """One variant in a fresh process (see the module docstring); its clock comes back as JSON."""
    cmd = [sys.executable, "-m", "benchmarks.bench_training", variant, str(tmp)]
    proc = subprocess.run(cmd + (["--quick"] if opts.quick else []), capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{proc.stderr[-3000:]}")
    clock = _Clock()
    clock.__dict__.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    return clock


def _variant_main(argv: list[str]) -> int:
    import psutil

    from backend import worker

    variant, tmp = argv[0], Path(argv[1])
    opts = Options(quick="--quick" in argv)
    if variant != "bare":  # the worker's process: its allocator and malloc settings
        worker.use_jemalloc(argv, module="benchmarks.bench_training")
        worker.tune_malloc()
    peak, done = [0], threading.Event()

    def sample():
        me = psutil.Process()
        while not done.wait(0.01):
            peak[0] = max(peak[0], me.memory_info().rss)

    threading.Thread(target=sample, daemon=True).start()
    clock = (_bare_run(opts, tmp) if variant == "bare" else
             _stage_run(opts, variant == "stage-probes", tmp))
    done.set()
    clock.peak_rss, clock.allocator = peak[0], worker.allocator()
    print(json.dumps(clock.__dict__))
    return 0


def _steady(clock: _Clock) -> float:
    """Tokens/s over steps 2..N (the first step carries one-off set-up)."""
    if len(clock.steps) < 3:
        return float("nan")
    (t1, r1), (tn, rn) = clock.steps[1], clock.steps[-1]
    return (rn - r1) / max(tn - t1, 1e-9)


def run(opts: Options) -> list[Target]:
    header("training: train stage vs a bare transformers Trainer (same model, data, settings)")
    reps = opts.reps or opts.n(1, 3)
    tmp = Path(tempfile.mkdtemp(prefix="bench-train-"))
    st = _bench_config(opts, probes=True).stages[0]
    print(f"  preset reset_demo MTL stage: LoRA r={st.lora_r}, batch {st.batch_size}, max_length "
          f"{st.max_length}, {st.max_steps or 'all'} steps ({st.epochs:g} epochs), {reps} interleaved "
          f"reps; probes every {st.eval_steps} steps ({st.probe_size} x {st.probe_max_new_tokens} "
          "tokens)", flush=True)
    runs: dict[str, list[_Clock]] = {name: [] for name in VARIANTS}
    try:
        for rep in range(reps):
            names = list(VARIANTS)
            for name in names[rep % 3:] + names[:rep % 3]:
                runs[name].append(_in_own_process(VARIANTS[name], opts, tmp))
                c = runs[name][-1]
                probes = f", probes {c.probe_s:.1f} s of it" if c.probe_s else ""
                print(f"    rep {rep + 1}: {name:<22} train() {c.train_s:6.2f} s{probes}, {c.real} "
                      f"tokens, {c.real / c.train_s:6.1f} tok/s (steady {_steady(c):6.1f}), peak "
                      f"RSS {c.peak_rss / 2**20:.0f} MiB, {c.allocator}", flush=True)
    finally:
        if not opts.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    tps = {k: median([c.real / c.train_s for c in v]) for k, v in runs.items()}
    steady = {k: median([_steady(c) for c in v]) for k, v in runs.items()}
    rows = [[k, f"{tps[k]:.1f}", f"{steady[k]:.1f}", f"{tps[k] / tps['bare Trainer']:.2f}x",
             f"{steady[k] / steady['bare Trainer']:.2f}x",
             f"{max(c.peak_rss for c in runs[k]) / 2**20:.0f} MiB", runs[k][0].allocator]
            for k in runs]
    table(rows, ["variant", "tok/s train()", "tok/s steps 2..N", "vs bare", "vs bare (steady)",
                 "peak RSS", "allocator"])
    pad = padding_fractions(opts)
    print(f"  padding share over one epoch ({pad['examples']} examples, batch {pad['batch_size']}): "
          f"grouped by length {pad['group_by_length'] * 100:.1f} %, random order "
          f"{pad['random'] * 100:.1f} %", flush=True)
    return [
        Target("training", "stage (no probes) vs bare Trainer", steady["stage (no probes)"] /
               steady["bare Trainer"], ">=", 0.95, "x",
               f"steady {steady['stage (no probes)']:.0f} vs {steady['bare Trainer']:.0f} tok/s"),
        Target("training", "stage (preset probes) vs bare Trainer, whole train()",
               tps["stage (preset probes)"] / tps["bare Trainer"], ">=", 0.95, "x",
               f"{tps['stage (preset probes)']:.0f} vs {tps['bare Trainer']:.0f} tok/s"),
        # the stage's own clock, immune to the machine's drift between processes
        Target("training", "probes' share of the stage's train()", median(
            [c.probe_s / c.train_s for c in runs["stage (preset probes)"]]) * 100, "info", None,
            "%", "the stage's own count of its probe seconds"),
        Target("training", "padding share, grouped by length", pad["group_by_length"] * 100, "info",
               None, "%", f"random order: {pad['random'] * 100:.1f} %"),
    ]


if __name__ == "__main__":
    sys.exit(_variant_main(sys.argv[1:]))
