"""Generation-length probes as adapter snapshots generated in one batch (stacked LoRA): the same
greedy lengths and texts as probing each state on its own, and the training adapter untouched."""
from __future__ import annotations

import torch

from backend.generation import generate_batch
from backend.stacked_lora import stacked_snapshots
from backend.stages.train import adapter_is_zero

PROMPTS = [[{"role": "user", "content": "Name three colours."}],
           [{"role": "user", "content": "Context: Ana founded the bakery in 2019.\n"
                                        "Question: Who founded the bakery?"}]]


def _set_b(model, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name and ".default." in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def _model_and_snapshots():
    from peft import LoraConfig, get_peft_model, get_peft_model_state_dict

    from backend.models import load_model

    model, tok = load_model("embedded", for_training=True, dtype="float32")
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, task_type="CAUSAL_LM",
                                             target_modules=["q_proj", "v_proj", "down_proj"]))
    assert adapter_is_zero(model)  # a fresh adapter: step 0 is the base model
    snapshots = []
    for seed in (1, 2):
        _set_b(model, seed)
        weights = get_peft_model_state_dict(model, save_embedding_layers=False)
        snapshots.append({k: v.clone() for k, v in weights.items()})
    model.eval()
    return model, tok, snapshots


def test_a_batch_of_stacked_snapshots_generates_what_each_state_generates_alone():
    from peft import set_peft_model_state_dict

    model, tok, snapshots = _model_and_snapshots()
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    live = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}

    with model.disable_adapter():
        alone = [generate_batch(model, tok, PROMPTS, max_new_tokens=12)]
    for weights in snapshots:
        set_peft_model_state_dict(model, weights)
        alone.append(generate_batch(model, tok, PROMPTS, max_new_tokens=12))

    with stacked_snapshots(model, [None, *snapshots], len(PROMPTS)):  # fp32: bf16 rounds by batch
        together = generate_batch(model, tok, PROMPTS * 3, max_new_tokens=12)

    for k, outs in enumerate(alone):
        rows = together[k * 2:(k + 1) * 2]
        assert [(o.text, o.n_tokens) for o in rows] == [(o.text, o.n_tokens) for o in outs], k
    assert alone[1][0].text != alone[0][0].text or alone[2][0].text != alone[0][0].text
    # the adapter being trained is as it was: the only one, active, the same parameters trainable
    assert list(model.peft_config) == ["default"] and model.active_adapter == "default"
    assert {n for n, p in model.named_parameters() if p.requires_grad} == trained
    assert all(torch.equal(p, live[n]) for n, p in model.named_parameters() if n in live)
    assert all("forward" not in vars(m) for m in model.modules())  # the class forwards again


def test_bf16_snapshots_read_a_copy_and_put_the_fp32_weights_back():
    model, tok, snapshots = _model_and_snapshots()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with stacked_snapshots(model, [None, snapshots[0]], len(PROMPTS), torch.bfloat16):
        frozen = [p for p in model.parameters() if not p.requires_grad]
        assert {p.dtype for p in frozen} == {torch.bfloat16}
        outs = generate_batch(model, tok, PROMPTS * 2, max_new_tokens=12)
    assert len(outs) == 4 and all(0 < o.n_tokens <= 12 for o in outs)
    assert all(o.text for o in outs)
    after = dict(model.named_parameters())
    assert all(after[n].dtype == torch.float32 and torch.equal(after[n], p)
               for n, p in before.items())


def test_pending_snapshots_round_trip_through_a_file(tmp_path):
    from backend.stages.train import load_pending, pending_probes_path, save_pending

    a = {"base_model.model.layers.0.q_proj.lora_B.weight": torch.randn(6, 2)}
    b = {"base_model.model.layers.0.q_proj.lora_B.weight": torch.randn(6, 2)}
    path = pending_probes_path(tmp_path, 4)
    assert load_pending(path) == []  # nothing was pending at that checkpoint
    save_pending(path, [(0, None), (2, a), (4, b)])
    back = load_pending(path)
    assert [step for step, _ in back] == [0, 2, 4] and back[0][1] is None
    for (_, want), (_, got) in zip([(2, a), (4, b)], back[1:]):
        assert want.keys() == got.keys()
        assert all(torch.equal(want[k], got[k]) for k in want)


def test_probe_dtype_auto_is_bf16_only_over_fp32_weights_on_native_bf16_hardware():
    from backend.models import has_native_bf16
    from backend.stages.train import precision_note, resolve_probe_dtype

    fp32, bf16 = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4).to(torch.bfloat16)
    assert resolve_probe_dtype("float32", fp32) == torch.float32
    assert resolve_probe_dtype("bfloat16", fp32) == torch.bfloat16
    assert resolve_probe_dtype("auto", bf16) == torch.bfloat16  # the weights' own dtype
    want = torch.bfloat16 if has_native_bf16("cpu") else torch.float32
    assert resolve_probe_dtype("auto", fp32) == want
    assert precision_note(torch.float32, torch.float32) == ""  # the fp32 lengths: nothing to say
    assert precision_note(torch.bfloat16, torch.bfloat16) == ""  # bf16 weights: nothing rounded
    assert "bfloat16-rounded" in precision_note(torch.bfloat16, torch.float32)
