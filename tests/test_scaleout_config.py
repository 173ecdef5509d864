"""The compute section: validated like the rest of the config, overridable from the CLI, shown
in `status`."""
import pytest

from backend import cli
from backend.config import ConfigError, config_from_dict, load_preset, loads


def _with(compute):
    data = load_preset("mtl_demo").to_dict()
    data["compute"] = compute
    return config_from_dict(data, "test")


def test_defaults_are_one_local_process():
    c = load_preset("mtl_demo").compute
    assert (c.executor, c.processes, c.nodes, c.gpus_per_process, c.world_size) == ("local", 1, 1, 0, 1)


def test_slurm_section_round_trips_through_toml():
    cfg = _with({"executor": "slurm", "processes": 2, "nodes": 2, "slurm": {
        "partition": "gpu", "account": "lab", "time_limit": "1-02:00:00", "mem": "32G",
        "extra_sbatch": ["#SBATCH --qos=high", "--constraint=a100"], "setup": "module load cuda"}})
    again = loads(cfg.to_toml())
    assert again.compute == cfg.compute
    assert again.compute.world_size == 4
    assert again.compute.slurm.extra_sbatch == ["--qos=high", "--constraint=a100"]


@pytest.mark.parametrize("compute, message", [
    ({"processes": 0}, "compute.processes"),
    ({"nodes": 2}, "needs executor"),
    ({"executor": "kubernetes"}, "compute.executor"),
    ({"executor": "slurm", "slurm": {"time_limit": "two hours"}}, "compute.slurm.time_limit"),
    ({"executor": "slurm", "slurm": {"mem": "lots"}}, "compute.slurm.mem"),
    ({"executor": "slurm", "slurm": {"extra_sbatch": ["rm -rf /"]}}, "compute.slurm.extra_sbatch"),
    ({"executor": "slurm", "slurm": {"partition": "a b"}}, "compute.slurm.partition"),
    ({"executor": "slurm", "slurm": {"queue": "x"}}, "compute.slurm.queue"),
])
def test_bad_compute_is_refused_naming_the_field(compute, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        _with(compute)


def test_gpus_on_a_cpu_model_refused():
    data = load_preset("mtl_demo").to_dict()
    data["model"]["device"] = "cpu"
    data["compute"] = {"gpus_per_process": 1}
    with pytest.raises(ConfigError, match="gpus_per_process"):
        config_from_dict(data)


def test_cli_overrides_and_status_line(home, studio, capsys):
    args = cli.build_parser().parse_args(["run", "mtl_demo", "--processes", "2", "--executor", "slurm"])
    cfg = cli._with_compute_overrides(cli._load_config(args.config, None, None), args)
    assert (cfg.compute.processes, cfg.compute.executor) == (2, "slurm")
    bad = cli.build_parser().parse_args(["run", "mtl_demo", "--processes", "0"])
    with pytest.raises(ConfigError, match="compute.processes"):
        cli._with_compute_overrides(cli._load_config(bad.config, None, None), bad)
    run_id = studio.create_run(cfg, check=False)
    assert cli.main(["--home", str(home), "status", run_id]) == 0
    out = capsys.readouterr().out
    assert "compute  slurm, 2 processes x 1 node, partition default, time 01:00:00" in out


def _fsdp(method="full", gpus=1, device="auto"):
    data = load_preset("mtl_demo").to_dict()
    data["model"]["device"] = device
    for st in data["stages"]:
        if st["type"] == "train":
            st["method"] = method
    data["compute"] = {"processes": 2, "gpus_per_process": gpus, "strategy": "fsdp"}
    return config_from_dict(data, "test")


def test_fsdp_is_for_full_fine_tuning_on_gpus():
    assert _fsdp().compute.strategy == "fsdp"
    # accelerate runs CPU processes as plain DDP: asking for FSDP there is refused, not ignored
    with pytest.raises(ConfigError, match=r"compute\.strategy.*CUDA GPUs"):
        _fsdp(gpus=0)
    with pytest.raises(ConfigError, match=r"compute\.strategy.*uses LoRA"):
        _fsdp(method="lora")


def test_fsdp_training_arguments_only_under_torchrun(monkeypatch):
    from types import SimpleNamespace

    from transformers import LlamaConfig, LlamaForCausalLM

    from backend.stages.train import sharding_args

    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2))
    ctx = SimpleNamespace(cfg=_fsdp())
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert sharding_args(ctx, model) == {}  # one process: nothing to shard
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    args = sharding_args(ctx, model)
    assert args["fsdp"] is True
    assert args["fsdp_config"]["transformer_layer_cls_to_wrap"] == ["LlamaDecoderLayer"]
    assert args["fsdp_config"]["state_dict_type"] == "FULL_STATE_DICT"
    ctx.cfg.compute.strategy = "ddp"
    assert sharding_args(ctx, model) == {}
