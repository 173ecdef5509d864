"""Training stage: SFT on a data mixture or on a selection, with the transformers Trainer + peft.

Loss is computed on response tokens only; batches are grouped by length so little compute goes
to padding. A Trainer callback streams metrics and checkpoints into the run log, probes
generation length (the paper's Fig. 4) every ``eval_steps``, and turns a cancel request into a
save-and-stop at the next step boundary. Re-running the stage resumes from its last checkpoint
(optimizer, scheduler and RNG state included); metric rows are keyed by step, so none repeat.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from .. import queries, trackers
from ..config import TrainStage
from ..data import build_mixture, chat_messages, data_notes, encode_examples, eval_sets
from ..records import Record, record_from_prompt
from .context import StageContext, StopRequested, inject_fault

IGNORE = -100
# On CPU a batch runs as chunks of at most this many padded tokens (neighbouring rows, each chunk
# trimmed to its longest row): activations scale with the chunk, so the peak stays that of one
# max-length row, while short rows still share a forward pass. Same examples per step and, with
# the Trainer's token-count loss normalisation, the same gradient. 4 x 384 tokens of the embedded
# 135M model in one pass peaked at 4.4 GB RSS.
CHUNK_TOKENS = 384


# ---- data -------------------------------------------------------------------------------------
def selected_examples(ctx: StageContext, ref: str, idx: int) -> list[tuple[Record, str]]:
    """(prompt record, accepted response) pairs of a selection: a select stage of this run, or
    ``sel:<run_id>:<name>`` for a selection saved from the GUI."""
    if ref.startswith("sel:"):
        _, run_id, name = ref.split(":", 2)
    else:
        j = ctx.cfg.resolve_ref(idx, ref, "select")
        if j is None:
            raise ValueError(f"stage {idx}: no select stage {ref!r} before this one")
        run_id, name = ctx.run_id, ctx.cfg.stages[j].name
    sel = queries.selection(ctx.log, run_id, name)
    rows = queries.selected_samples(ctx.log, sel["id"]) if sel else []
    if not rows:
        raise ValueError(f"selection {name!r} of run {run_id} is empty or does not exist")
    return [(record_from_prompt(r), r["text"]) for r in rows]


def training_examples(ctx: StageContext, idx: int, stage: TrainStage) -> list[tuple[Record, str]]:
    if stage.selection:
        pairs = selected_examples(ctx, stage.selection, idx)
        if stage.targets == "reference":  # the control: same prompts, their original references
            pairs = [(r, r.reference) for r, _text in pairs if r.reference]
    else:
        recs = build_mixture(ctx.cfg.data, ctx.seed_for(idx), names=stage.data or None)
        pairs = [(r, r.reference) for r in recs if r.reference]
    if stage.max_examples:
        pairs = pairs[: stage.max_examples]
    if not pairs:
        raise ValueError(f"stage {stage.name}: no training examples with a response")
    return pairs


def probe_records(ctx: StageContext, stage: TrainStage) -> list[Record]:
    """A small fixed probe set, one data set after another, for the generation-length curve."""
    if stage.probe_size <= 0:
        return []
    sets = list(eval_sets(ctx.cfg.data, stage.data or None).values())
    out: list[Record] = []
    i = 0
    while len(out) < stage.probe_size and any(i < len(s) for s in sets):
        out.extend(s[i] for s in sets if i < len(s))
        i += 1
    return out[: stage.probe_size]


def inherited_probe(ctx: StageContext, idx: int, stage: TrainStage,
                    probes: list[Record]) -> tuple[str, float] | None:
    """(stage name, length) when this stage starts from an earlier train stage's final checkpoint
    of this run whose last probe ran on it with the same prompts and settings: step 0 would
    measure the same weights again (greedy, so the same length)."""
    if not probes or stage.init.startswith("run:"):
        return None
    j = ctx.cfg.resolve_ref(idx, stage.init, "train")
    if j is None:
        return None
    prev = ctx.cfg.stages[j]
    if (prev.type != "train" or prev.probe_max_new_tokens != stage.probe_max_new_tokens
            or prev.probe_dtype != stage.probe_dtype
            or [r.id for r in probe_records(ctx, prev)] != [r.id for r in probes]):
        return None
    final = ctx.log.find_checkpoint(ctx.run_id, prev.name)
    last = queries.last_metric(ctx.log, ctx.run_id, j, "gen_length")
    if final is None or last is None or last[0] != final["step"]:  # e.g. stopped before its end
        return None
    return prev.name, last[1]


# ---- callback ---------------------------------------------------------------------------------
class TokenCount:
    """Real and padded tokens of the batches the optimizer actually trained on."""

    def __init__(self):
        self.real = 0
        self.total = 0


def counting_trainer(counter: TokenCount, chunk_tokens: int = 0, lean: bool = False):
    """A Trainer that counts tokens in training_step (counting in the collator is off on resume:
    accelerate prefetches a batch, and the Trainer collates the batches it skips to catch up),
    with ``chunk_tokens`` runs each batch as chunks of at most that many padded tokens, and with
    ``lean`` computes the loss of a plain causal LM without whole logits (backend.lean_ops)."""
    import torch
    from transformers import Trainer

    from .. import lean_ops

    class CountingTrainer(Trainer):
        def training_step(self, model, inputs, *args, **kwargs):
            mask = inputs.get("attention_mask")
            if mask is not None:
                counter.real += int(mask.sum())
                counter.total += int(mask.numel())
            chunks = token_chunks(inputs, chunk_tokens) if chunk_tokens else [inputs]
            if len(chunks) == 1:
                return super().training_step(model, inputs, *args, **kwargs)
            # Losses are sums over tokens divided by the step's token count (num_items_in_batch),
            # so chunk losses add up to the batch's loss and their gradients to its gradient.
            # DDP syncs once, on the last chunk's backward.
            loss = 0
            for chunk in chunks[:-1]:
                with self.accelerator.no_sync(model):
                    loss = loss + super().training_step(model, chunk, *args, **kwargs)
            return loss + super().training_step(model, chunks[-1], *args, **kwargs)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if lean and not return_outputs and self._lean_applies(model):
                lean_loss = lean_ops.summed_loss(model, inputs, IGNORE)
                if lean_loss is not None:
                    total, n = lean_loss
                    # what the model's loss function divides by: the step's token count when
                    # the Trainer passes it, else this batch's own
                    if self.model_accepts_loss_kwargs and num_items_in_batch is not None:
                        return total / num_items_in_batch
                    return total / max(n, 1)
            # Logits only where a label is (the responses): the prompt positions' 49k-wide logits
            # were the largest activations and a fifth of the compute. Same loss: the model's own
            # loss function, given the shifted labels of the kept positions.
            labels = inputs.get("labels")
            if labels is not None and _takes_logits_to_keep(model):
                shifted = torch.nn.functional.pad(labels, (0, 1), value=IGNORE)[:, 1:]
                keep = (shifted != IGNORE).any(0).nonzero().squeeze(-1)
                if 0 < len(keep) < labels.shape[1]:
                    inputs = {**inputs, "logits_to_keep": keep,
                              "shift_labels": shifted[:, keep].contiguous()}
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)

        def _lean_applies(self, model) -> bool:
            # one process, the model called directly (DDP must see its own forward), the
            # Trainer's default loss
            return (self.accelerator.num_processes == 1 and self.label_smoother is None
                    and self.compute_loss_func is None and model is self.model)

    return CountingTrainer


def token_chunks(inputs: dict, max_tokens: int) -> list[dict]:
    """Split a right-padded batch into runs of neighbouring rows of at most ``max_tokens``
    padded tokens each, every run trimmed to its own longest row (the sampler groups rows by
    length, so neighbours are alike)."""
    mask = inputs.get("attention_mask")
    if mask is None or len(mask) < 2:
        return [inputs]
    runs, start, width = [], 0, 0
    for i, n in enumerate(mask.sum(1).tolist()):
        if i > start and max(width, n) * (i - start + 1) > max_tokens:
            runs.append((start, i, width))
            start, width = i, 0
        width = max(width, n)
    runs.append((start, len(mask), width))
    if len(runs) == 1:
        return [inputs]
    rows = len(mask)
    return [{k: v[a:b, :w] if v.dim() == 2 else v[a:b]
             for k, v in inputs.items() if hasattr(v, "dim") and len(v) == rows}
            for a, b, w in runs]


def _takes_logits_to_keep(model) -> bool:
    import inspect

    inner = getattr(model, "module", model)  # DDP
    inner = inner.get_base_model() if hasattr(inner, "get_base_model") else inner
    return "logits_to_keep" in inspect.signature(inner.forward).parameters


class PaddingCounter:
    """Wraps a collator to count real and padded tokens of every batch it builds (benchmarks:
    padding share over whole epochs)."""

    def __init__(self, collator):
        self.collator = collator
        self.real = 0
        self.total = 0

    def __call__(self, features):
        batch = self.collator(features)
        mask = batch["attention_mask"]
        self.real += int(mask.sum())
        self.total += int(mask.numel())
        return batch


# Probe snapshots generated together at most: long stages still draw their curve as they go.
PROBE_BATCH = 4


def batched_probes(model, stage: TrainStage) -> bool:
    """Probes can be snapshots of a LoRA adapter generated in one batch: plain LoRA Linear
    layers (backend/stacked_lora.py) in one process (not DDP/FSDP, whose ranks would each
    generate)."""
    import torch.distributed as dist

    from ..stacked_lora import lora_layers

    return (stage.method == "lora" and len(getattr(model, "peft_config", {})) == 1
            and lora_layers(model) is not None
            and not (dist.is_available() and dist.is_initialized()))


def adapter_is_zero(model) -> bool:
    """A fresh LoRA adapter (B = 0) adds nothing: the model is its base."""
    return all(not p.any() for n, p in model.named_parameters() if "lora_B" in n)


def resolve_probe_dtype(setting: str, model):
    """``auto``: bf16 when the base weights are fp32 on a device with native bf16 (a CPU with
    AVX512-BF16 or AMX, a bf16 GPU), else the weights' own dtype."""
    import torch

    from ..models import has_native_bf16

    weights = next(model.parameters())
    if setting == "auto":
        fast = weights.dtype == torch.float32 and has_native_bf16(weights.device)
        return torch.bfloat16 if fast else weights.dtype
    return getattr(torch, setting)


def precision_note(dtype, weights_dtype) -> str:
    """What the probes' lengths are of, when they read the weights in another dtype."""
    if dtype == weights_dtype:
        return ""
    name = str(dtype).removeprefix("torch.")
    return (f", base weights read as {name} (greedy lengths of the {name}-rounded weights; "
            "probe_dtype = \"float32\" for the fp32 ones)")


def pending_probes_path(out_dir: str | Path, step: int) -> Path:
    """Snapshots not generated yet when checkpoint-<step> was saved (written before it)."""
    return Path(out_dir) / f"probe-snapshots-{step}.safetensors"


def save_pending(path: Path, pending: list[tuple[int, dict | None]]) -> None:
    from safetensors.torch import save_file

    tensors = {f"{step}/{k}": v.contiguous() for step, w in pending if w for k, v in w.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"steps": json.dumps([step for step, _ in pending])})
    tmp.replace(path)


def load_pending(path: Path) -> list[tuple[int, dict | None]]:
    """The snapshots save_pending wrote (None: the base model), [] where there is no file."""
    from safetensors import safe_open

    if not path.is_file():
        return []
    with safe_open(str(path), framework="pt") as f:
        steps = json.loads(f.metadata()["steps"])
        weights: dict[int, dict] = {}
        for key in f.keys():
            step, name = key.split("/", 1)
            weights.setdefault(int(step), {})[name] = f.get_tensor(key)
    return [(step, weights.get(step)) for step in steps]


def make_callback(ctx: StageContext, idx: int, stage: TrainStage, tokenizer, probes: list[Record],
                  counter: TokenCount, base_ref: str, kind: str):
    from transformers import TrainerCallback

    # prompt and generated tokens of one probe: the first guess at a snapshot's cost
    probe_tokens = sum(len(tokenizer.apply_chat_template(
        chat_messages(r), tokenize=True, add_generation_prompt=True, return_dict=True)["input_ids"])
        for r in probes) + len(probes) * stage.probe_max_new_tokens

    class RunLogCallback(TrainerCallback):
        def __init__(self):
            self.t_last = time.time()
            self.real_last = 0
            self.total_last = 0
            self.seen_last = 0
            self.t_begin = time.time()
            self.probe_s = 0.0  # time the probes took since train() began
            self.due = False  # a probe is due but waits for the budget
            self.pending: list[tuple[int, dict | None]] = []  # (step, adapter snapshot)
            self.batched = False  # snapshots generated together (decided when training begins)
            self.probe_dtype = None  # what a batch of snapshots reads the base weights as
            self.snapshot_s: float | None = None  # measured cost of one snapshot in a batch
            self.seen_begin = 0
            self.late = self.skipped = 0  # probes run after their step / never run

        def _within_budget(self) -> bool:
            if stage.probe_budget >= 1.0:  # every probe on its step: a schedule that is not timed
                return True
            trained = time.time() - self.t_begin - self.probe_s
            # snapshots not generated yet count at their estimated cost
            waiting = len(self.pending) * self._per_snapshot(trained)
            return self.probe_s + waiting <= stage.probe_budget * trained

        def _per_snapshot(self, trained: float) -> float:
            """Seconds one snapshot adds to a batched probe: measured at the last flush, else
            its tokens at the training's own time per token (a conservative guess)."""
            if self.snapshot_s is not None:
                return self.snapshot_s
            seen = self.seen_last - self.seen_begin
            return probe_tokens * trained / seen if seen > 0 else 0.0

        def _probe(self, model, step: int, *, flush: bool = False) -> None:
            """Probe the generation length at this step: at once, or (LoRA, one process) as a
            snapshot of the adapter, a few MB, generated later with the other snapshots in one
            batch (stacked LoRA): decode reads the base weights once for all of them."""
            if not probes:
                return
            if not self.batched:
                self.pending.append((step, None))
                self._flush(model)
                return
            weights = None
            if step > 0 or not adapter_is_zero(model):  # a fresh adapter at step 0 is the base
                from peft import get_peft_model_state_dict

                weights = {k: v.detach().clone() for k, v in get_peft_model_state_dict(
                    model, save_embedding_layers=False).items()}
            self.pending.append((step, weights))
            self.due = False
            if flush or len(self.pending) >= PROBE_BATCH:
                self._flush(model)

        def _flush(self, model) -> None:
            if not self.pending:
                return
            from contextlib import nullcontext

            from ..generation import generate_batch
            from ..stacked_lora import stacked_snapshots

            t_probe = time.time()
            convs = [chat_messages(r) for r in probes]
            was_training = model.training
            model.eval()
            try:
                with (stacked_snapshots(model, [w for _step, w in self.pending], len(convs),
                                        self.probe_dtype) if self.batched else nullcontext()):
                    outs = generate_batch(model, tokenizer, convs * len(self.pending),
                                          max_new_tokens=stage.probe_max_new_tokens,
                                          temperature=0.0)
            finally:
                if was_training:
                    model.train()
            for k, (step, _weights) in enumerate(self.pending):
                rows = outs[k * len(convs):(k + 1) * len(convs)]
                ctx.log.log_metrics(ctx.run_id, idx, step,
                                    {"gen_length": sum(o.n_tokens for o in rows) / len(rows)})
            took = time.time() - t_probe
            self.snapshot_s = took / len(self.pending)
            self.pending = []
            self.t_last += took  # probe time is not training time (tokens/s)
            self.probe_s += took
            self.due = False

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.t_last = self.t_begin = time.time()
            self.seen_last = int(getattr(state, "num_input_tokens_seen", 0) or 0)  # resumed runs
            self.seen_begin = self.seen_last
            ctx.progress(idx, state.global_step, state.max_steps, "training", force=True)
            self.batched = bool(probes) and batched_probes(model, stage)
            self.probe_dtype = resolve_probe_dtype(stage.probe_dtype, model)
            if self.batched:
                ctx.event(idx, f"generation-length probes: adapter snapshots, up to {PROBE_BATCH} "
                               "generated together in one batch, each row through its own "
                               "snapshot" + precision_note(self.probe_dtype,
                                                           next(model.parameters()).dtype))
            if state.global_step == 0:
                inherited = inherited_probe(ctx, idx, stage, probes)
                if inherited:
                    ctx.log.log_metrics(ctx.run_id, idx, 0, {"gen_length": inherited[1]})
                    ctx.event(idx, f"step-0 generation length {inherited[1]:.1f} from stage "
                                   f"{inherited[0]}'s last probe (the same weights and prompts)")
                else:
                    self._probe(model, 0)
            elif self.batched:  # what the checkpoint we resume from had not generated yet
                self.pending = load_pending(pending_probes_path(args.output_dir, state.global_step))

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            now = time.time()
            values: dict[str, Any] = {k: logs[k] for k in ("loss", "learning_rate", "grad_norm",
                                                          "epoch") if k in logs}
            if "loss" in logs:
                dt = max(now - self.t_last, 1e-6)
                # tokens the optimizer saw, as the Trainer counts them (non-padding)
                seen = int(getattr(state, "num_input_tokens_seen", 0) or 0)
                values["tokens_per_s"] = (seen - self.seen_last) / dt
                real = counter.real - self.real_last
                total = counter.total - self.total_last
                if total:
                    values["padding_fraction"] = 1.0 - real / total
                self.t_last, self.real_last, self.total_last = now, counter.real, counter.total
                self.seen_last = seen
                ctx.log.log_metrics(ctx.run_id, idx, state.global_step, values)
            elif "train_loss" in logs:
                runtime = logs.get("train_runtime", 0)
                probed = (f", generation-length probes {self.probe_s:.1f} s of it"
                          if self.probe_s else "")
                ctx.event(idx, f"training done: mean loss {logs['train_loss']:.4f} in "
                               f"{runtime:.1f} s{probed}")
                if self.late or self.skipped:
                    ctx.event(idx, f"generation-length probes kept to {stage.probe_budget:.0%} of "
                                   f"the stage's time (probe_budget): {self.late} ran a few steps "
                                   f"late, {self.skipped} skipped")

        def on_step_end(self, args, state, control, model=None, **kw):
            inject_fault("train_step", state.global_step)
            ctx.progress(idx, state.global_step, state.max_steps,
                         f"step {state.global_step}/{state.max_steps}")
            step = state.global_step
            if step % stage.eval_steps == 0:
                self.skipped += self.due  # the one due before never found room
                self.due = True
            if step == state.max_steps:
                self._probe(model, step, flush=True)
            elif self.due and self._within_budget():
                self.late += step % stage.eval_steps != 0
                self._probe(model, step)
            if ctx.stopping:
                self._flush(model)  # the snapshots taken so far still reach the curve
                control.should_save = True
                control.should_training_stop = True
            elif control.should_save and self.pending:
                # before the checkpoint: a kill after it must not lose the probes of its steps
                save_pending(pending_probes_path(args.output_dir, step), self.pending)

        def on_save(self, args, state, control, **kw):
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            ctx.log.add_checkpoint(ctx.run_id, idx, state.global_step,
                                   f"{stage.name}@{state.global_step}", str(path), kind, base_ref)

    return RunLogCallback()


def last_complete_checkpoint(ctx: StageContext, idx: int, out_dir: Path) -> str | None:
    """The newest checkpoint a kill did not cut short. The Trainer writes trainer_state.json last,
    so a folder without a readable one was interrupted mid-save: it is removed, and the one
    before it is used."""
    import shutil

    folders = sorted((p for p in out_dir.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                     key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for folder in folders:
        try:
            json.loads((folder / "trainer_state.json").read_text())
            return str(folder)
        except (OSError, ValueError):
            ctx.event(idx, f"{folder.name} was cut short by an interruption; removed", level="warning")
            shutil.rmtree(folder, ignore_errors=True)
    return None


def sharding_args(ctx: StageContext, model) -> dict[str, Any]:
    """TrainingArguments for FSDP2 under torchrun (weights, gradients and optimizer state sharded
    per decoder layer; full state dict gathered on save); empty for DDP or one process."""
    from ..compute import in_torchrun

    if ctx.cfg.compute.strategy != "fsdp" or not in_torchrun():
        return {}
    layers = list(getattr(model, "_no_split_modules", None) or [])
    return {"fsdp": True, "fsdp_config": {
        "version": 2, "auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
        "transformer_layer_cls_to_wrap": layers, "state_dict_type": "FULL_STATE_DICT"}}


# ---- stage ------------------------------------------------------------------------------------
def run(ctx: StageContext, idx: int, stage: TrainStage) -> None:
    import torch
    from transformers import DataCollatorForSeq2Seq, TrainingArguments, set_seed

    seed = ctx.seed_for(idx)
    set_seed(seed)
    out_dir = ctx.stage_dir(idx)
    init_ref = ctx.model_ref_for(idx, stage.init)
    ctx.progress(idx, 0, None, f"loading {init_ref}", force=True)
    model, tokenizer = ctx.load_model(init_ref, for_training=True)
    from peft import LoraConfig, PeftModel, get_peft_model

    if stage.method == "lora":
        if isinstance(model, PeftModel):
            base_ref = ctx.base_ref_of(init_ref)  # continue training the same adapter
        else:
            model = get_peft_model(model, LoraConfig(
                r=stage.lora_r, lora_alpha=stage.lora_alpha, lora_dropout=stage.lora_dropout,
                target_modules=stage.target_modules, task_type="CAUSAL_LM"))
            base_ref = init_ref
        kind = "adapter"
    else:
        if isinstance(model, PeftModel):
            model = model.merge_and_unload()
        base_ref, kind = None, "full"
    if hasattr(model, "enable_input_require_grads") and stage.method == "lora":
        model.enable_input_require_grads()

    pairs = training_examples(ctx, idx, stage)
    if not stage.selection:  # load notes: encoding, unanswerable, records without a reference
        for note in data_notes(ctx.cfg.data, stage.data or None):
            ctx.event(idx, note)
    encoded, fit = encode_examples(tokenizer, pairs, stage.max_length)
    for level, message in fit.events():  # truncation is never silent
        ctx.event(idx, message, level=level)
    if not encoded:
        raise ValueError(f"stage {stage.name}: every example was longer than max_length="
                         f"{stage.max_length}")
    import datasets

    train_ds = datasets.Dataset.from_list(encoded)
    weights = str(next(model.parameters()).dtype).removeprefix("torch.")
    ctx.event(idx, f"training on {len(encoded)} examples ({stage.method}, init {init_ref}, "
                   f"{weights} weights)")
    n_tokens = sum(len(e["input_ids"]) for e in encoded)
    ctx.log.log_metrics(ctx.run_id, idx, 0, {"train_examples": len(encoded),
                                             "train_tokens": n_tokens})

    device = ctx.device()
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    steps_per_epoch = math.ceil(len(encoded) / (stage.batch_size * stage.grad_accum))
    args = TrainingArguments(
        output_dir=str(out_dir),
        per_device_train_batch_size=stage.batch_size,
        gradient_accumulation_steps=stage.grad_accum,
        learning_rate=stage.learning_rate,
        num_train_epochs=stage.epochs,
        max_steps=stage.max_steps or -1,
        warmup_steps=int(stage.warmup_ratio * (stage.max_steps or steps_per_epoch * stage.epochs)),
        weight_decay=stage.weight_decay,
        lr_scheduler_type="linear",
        logging_steps=stage.logging_steps,
        save_strategy="steps",
        save_steps=stage.save_steps,
        train_sampling_strategy="group_by_length" if stage.group_by_length else "random",
        seed=seed,
        data_seed=seed,
        use_cpu=device == "cpu",
        bf16=bf16,
        report_to=trackers.report_to(ctx, idx, stage),  # [tracking]; "none" by default
        disable_tqdm=True,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        include_num_input_tokens_seen="non_padding",
        **sharding_args(ctx, model),
    )
    counter = TokenCount()
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE)
    callback = make_callback(ctx, idx, stage, tokenizer, probe_records(ctx, stage), counter,
                             base_ref, kind)
    chunk_tokens = CHUNK_TOKENS if device == "cpu" else 0
    if chunk_tokens and stage.batch_size > 1:
        ctx.event(idx, f"batches longer than {chunk_tokens} padded tokens run as chunks of "
                       "neighbouring rows (same gradient, less memory)")
    from .. import lean_ops

    lean = device == "cpu" and lean_ops.lean_parts(model) is not None
    if lean:
        lean_ops.lean_mlp(model)
        ctx.event(idx, "activation-lean ops: SwiGLU recomputed in backward, loss without whole "
                       "logits (same gradient, less memory)")
    trainer = counting_trainer(counter, chunk_tokens, lean)(
        model=model, args=args, train_dataset=train_ds, data_collator=collator,
        processing_class=tokenizer, callbacks=[callback])
    if args.fsdp and not trainer.is_fsdp_enabled:  # accelerate falls back to DDP off GPUs
        raise RuntimeError("compute.strategy = \"fsdp\" but accelerate did not enable FSDP here "
                           f"(device {device}); FSDP needs CUDA GPUs — use strategy = \"ddp\"")
    last = last_complete_checkpoint(ctx, idx, out_dir)
    if last:
        ctx.event(idx, f"resuming training from {Path(last).name}")
    trainer.train(resume_from_checkpoint=last)
    for done in out_dir.glob("probe-snapshots-*.safetensors"):
        done.unlink()  # every snapshot is generated by the last step

    final = out_dir / "final"
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():  # under torchrun only rank 0 writes files
        tokenizer.save_pretrained(str(final))
    ctx.log.add_checkpoint(ctx.run_id, idx, trainer.state.global_step, stage.name, str(final),
                           kind, base_ref)
    ctx.progress(idx, trainer.state.global_step, trainer.state.max_steps, "saved", force=True)
    if ctx.stopping:
        raise StopRequested(f"cancelled at step {trainer.state.global_step}; checkpoint kept")
