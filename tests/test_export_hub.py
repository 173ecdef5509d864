"""Hub-ready exports: the model card's YAML loads with huggingface_hub, the folder holds safetensors
only plus the tokenizer's chat template, a merged folder loads with AutoModelForCausalLM and gives
the adapter's own outputs, and a selection folder reads as chat ``messages`` (TRL) and through
LLaMA-Factory's dataset_info.json (sharegpt formatting, OpenAI tags)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import DatasetCard, ModelCard
from safetensors.numpy import save_file

from backend.export import EMBEDDED_HUB_ID, ExportError, export_adapter, export_merged, export_selection_dataset
from backend.runlog import RunLog

sys.path.insert(0, str(Path(__file__).parent))
from test_gui_tabs_data import build_runlog  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    return build_runlog(home, n_prompts=200)


def _fake_adapter(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 8, "base_model_name_or_path": "embedded"}))
    save_file({"w": np.zeros((2, 2), dtype=np.float32)}, str(folder / "adapter_model.safetensors"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    (folder / "adapter_model.bin").write_bytes(b"pickle")  # an old pickled copy: never exported
    (folder / "optimizer.pt").write_bytes(b"pickle")
    (folder / "training_args.bin").write_bytes(b"pickle")


def test_adapter_folder_is_hub_ready(demo, tmp_path):
    with RunLog(demo["path"]) as log:
        ck = log.find_checkpoint(demo["reset"], "reset")
        _fake_adapter(Path(ck["path"]))
        out = export_adapter(log, demo["reset"], "reset", tmp_path / "adapter")
        sel = log.query("SELECT * FROM selections WHERE run_id = ?", (demo["reset"],))[0]
        per_kind = {r["kind"]: r["n"] for r in log.query(
            "SELECT p.kind, COUNT(*) AS n FROM selection_items it JOIN prompts p ON p.id = it.prompt_id "
            "WHERE it.selection_id = ? GROUP BY p.kind", (sel["id"],))}
        rates = {r["name"].split("/")[1]: r["value"] for r in log.query(
            "SELECT name, value FROM metrics WHERE run_id = ? AND name LIKE 'accept_rate/%'",
            (demo["reset"],))}
        n_evals = log.count("evals", run_id=demo["reset"])
    names = sorted(p.name for p in out.iterdir())
    assert names == ["README.md", "adapter_config.json", "adapter_model.safetensors",
                     "reset_studio_export.json", "tokenizer_config.json"]
    # peft fetches the base from the Hub id, not the app's own name for the embedded model
    assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == EMBEDDED_HUB_ID
    card = ModelCard.load(out / "README.md")
    meta = card.data.to_dict()
    assert meta["base_model"] == EMBEDDED_HUB_ID
    assert meta["library_name"] == "peft" and meta["pipeline_tag"] == "text-generation"
    assert {"reset-studio", "reset", "lora"} <= set(meta["tags"])
    rs = meta["reset_studio"]
    assert rs["method"].startswith("ReSet") and [s["type"] for s in rs["stages"]][:2] == ["train", "sample"]
    (s,) = rs["selections"]
    assert s["name"] == "select" and s["size"] == sel["n_selected"] > 0
    assert {k: v["selected"] for k, v in s["per_kind"].items() if v["selected"]} == per_kind
    assert {k: v["acceptance"] for k, v in s["per_kind"].items()} == {k: round(v, 4) for k, v in rates.items()}
    assert len(rs["evaluation"]) == n_evals == 8
    alls = [r for r in rs["evaluation"] if r["dataset"] == "_all"]
    assert {r["checkpoint"] for r in alls} == {"mtl", "reset"}
    for r in alls:  # the interval brackets its mean
        lo, hi = r["faithfulness_ci95"]
        assert lo <= r["faithfulness"] <= hi
    assert "| reset | _all |" in card.text and "## Selection" in card.text and "[" in card.text
    assert "Q4_1 GGUF" in card.text
    assert "| squad_qa | `squad_qa.jsonl` | squad |" in card.text and "/assets/" not in card.text


def test_adapter_with_only_pickled_weights_is_refused(demo, tmp_path):
    with RunLog(demo["path"]) as log:
        ck = log.find_checkpoint(demo["mtl"], "mtl@20")
        src = Path(ck["path"])
        src.mkdir(parents=True, exist_ok=True)
        (src / "adapter_config.json").write_text('{"peft_type": "LORA"}')
        (src / "adapter_model.bin").write_bytes(b"pickle")
        with pytest.raises(ExportError, match=r"no safetensors weights \(only pickled adapter_model\.bin\)"):
            export_adapter(log, demo["mtl"], "mtl@20", tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_selection_dataset_reads_as_chat_messages(demo, tmp_path):
    import datasets
    from transformers import AutoTokenizer

    from backend.config import DatasetSpec
    from backend.data import load_dataset_records
    from backend.models import materialize_embedded

    with RunLog(demo["path"]) as log:
        out = export_selection_dataset(log, demo["reset"], "select", tmp_path / "sel")
        n = log.query("SELECT n_selected FROM selections WHERE run_id = ?", (demo["reset"],))[0]["n_selected"]
    # TRL's SFTTrainer: a conversational data set is a "messages" column of role/content turns
    ds = datasets.load_dataset(str(out), split="train")  # the card's configs point at train.jsonl
    assert ds.column_names == ["messages"] and len(ds) == n
    assert ds.features["messages"].feature["role"].dtype == "string"
    tok = AutoTokenizer.from_pretrained(str(materialize_embedded()))
    text = tok.apply_chat_template(ds[0]["messages"], tokenize=False)
    assert ds[0]["messages"][1]["content"] in text and "<|im_start|>assistant" in text
    # LLaMA-Factory: dataset_info.json names the file and maps sharegpt tags onto OpenAI's
    info = json.loads((out / "dataset_info.json").read_text())
    entry = info["select"]
    assert entry["file_name"] == "train.jsonl" and entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "messages"}
    tags = entry["tags"]
    row = json.loads((out / entry["file_name"]).read_text().splitlines()[0])
    turns = row[entry["columns"]["messages"]]
    assert [t[tags["role_tag"]] for t in turns] == [tags["user_tag"], tags["assistant_tag"]]
    assert all(t[tags["content_tag"]] for t in turns)
    assert DatasetCard.load(out / "README.md").data.to_dict()["task_categories"] == ["text-generation"]
    # and ReSet Studio reads its own export back (OpenAI messages detected as chat)
    recs = load_dataset_records(DatasetSpec(name="again", source=str(out / "train.jsonl")))
    assert len(recs) == n and recs[0].reference == turns[1]["content"]


@pytest.mark.slow
def test_merged_folder_loads_and_matches_the_adapter(tmp_path):
    """A real LoRA adapter (random, non-zero weights) on the embedded model, merged and reloaded
    with AutoModelForCausalLM: same logits as base + adapter, safetensors only, card parses."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from backend.models import load_model

    model, tok = load_model("embedded", device="cpu", dtype="float32")
    torch.manual_seed(0)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"],
                                                  init_lora_weights=False, task_type="CAUSAL_LM"))
    ck_dir = tmp_path / "runs" / "r1" / "stage0" / "final"
    peft_model.save_pretrained(str(ck_dir))
    tok.save_pretrained(str(ck_dir))
    ids = tok.apply_chat_template([{"role": "user", "content": "Name a river."}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        want = peft_model(**ids).logits
    del peft_model, model

    log = RunLog(tmp_path / "runlog.db")
    log.create_run("r1", name="tiny", preset="mtl_demo", config_toml='[[stages]]\ntype = "train"\nname = "mtl"\n',
                   run_dir=str(tmp_path / "runs" / "r1"), status="succeeded")
    log.add_checkpoint("r1", 0, 5, "mtl", str(ck_dir), "adapter", "embedded")
    out = export_merged(log, "r1", "mtl", tmp_path / "merged")
    log.close()

    files = sorted(p.name for p in out.iterdir())
    assert "model.safetensors" in files and "config.json" in files and "README.md" in files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))], files
    assert "chat_template.jinja" in files or json.loads(
        (out / "tokenizer_config.json").read_text()).get("chat_template")
    merged = AutoModelForCausalLM.from_pretrained(str(out), use_safetensors=True)
    tok2 = AutoTokenizer.from_pretrained(str(out))
    assert not hasattr(merged, "peft_config")
    ids2 = tok2.apply_chat_template([{"role": "user", "content": "Name a river."}],
                                    add_generation_prompt=True, return_tensors="pt", return_dict=True)
    assert torch.equal(ids["input_ids"], ids2["input_ids"])
    with torch.no_grad():
        got = merged(**ids2).logits
    assert torch.allclose(got, want, atol=1e-3), (got - want).abs().max()
    meta = ModelCard.load(out / "README.md").data.to_dict()
    assert meta["base_model"] == EMBEDDED_HUB_ID and meta["library_name"] == "transformers"
    assert "merged" in meta["tags"] and meta["reset_studio"]["checkpoint"] == "mtl"
