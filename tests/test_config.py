import pytest
from hypothesis import given, settings, strategies as st

from backend.config import (ConfigError, RunConfig, config_from_dict, list_presets, load,
                            load_preset, loads)


def test_presets_exist_and_round_trip(tmp_path):
    presets = list_presets()
    for name in ("mtl_demo", "reset_demo", "reset_s_demo",
                 "two_stage_grounded_then_instructions_demo",
                 "two_stage_instructions_then_grounded_demo"):
        assert name in presets
        cfg = load_preset(name)
        out = cfg.save(tmp_path / f"{name}.toml")
        again = load(out)
        assert again.to_toml() == cfg.to_toml()
        assert again == cfg


def test_reset_s_is_stricter_and_smaller():
    r, s = load_preset("reset_demo"), load_preset("reset_s_demo")
    sel_r = next(x for x in r.stages if x.type == "select")
    sel_s = next(x for x in s.stages if x.type == "select")
    assert sel_s.threshold > sel_r.threshold
    assert sel_s.budget is not None


@pytest.mark.parametrize("text, field", [
    ('[[stages]]\ntype = "train"\nlearning_rate = -1', "stages.0.learning_rate"),
    ('[[stages]]\ntype = "train"\nbatch_size = 0', "stages.0.batch_size"),
    ('[[stages]]\ntype = "bogus"', "stages.0.type"),
    ('[[stages]]\ntype = "select"\nthreshold = 1.5', "stages.0.threshold"),
    ('[judges]\nweights = { task = 0.0, faithfulness = 0.0 }\n[[stages]]\ntype = "train"',
     "judges.weights"),
    ('[judges]\nweights = { task = -1.0 }\n[[stages]]\ntype = "train"', "judges.weights"),
    ('[[data]]\nname = "a"\nsource = "x.jsonl"\nweight = -2\n[[stages]]\ntype = "train"',
     "data.0.weight"),
    ('[[data]]\nname = "a"\nsource = "x.jsonl"\nweight = 0\n[[stages]]\ntype = "train"',
     "weights sum to zero"),
    ('[[stages]]\ntype = "train"\ndata = ["nope"]', "stages.0.data"),
    ('[[stages]]\ntype = "train"\ninit = "later"', "stages.0.init"),
    ('[[stages]]\ntype = "train"\nbogus_field = 1', "stages.0.bogus_field"),
    ('seed = "x"\n[[stages]]\ntype = "train"', "seed"),
    ('', "stage plan is empty"),
    ('[[stages]\ntype=', "not valid TOML"),
])
def test_validation_names_field(text, field):
    with pytest.raises(ConfigError) as err:
        loads(text)
    assert field in str(err.value)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown preset 'nope'"):
        load_preset("nope")


def test_default_stage_names():
    cfg = config_from_dict({"stages": [{"type": "train"}, {"type": "evaluate"}]})
    assert [s.name for s in cfg.stages] == ["train0", "evaluate1"]


names = st.text(alphabet="abcdefghij-_", min_size=1, max_size=12)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), lr=st.floats(1e-6, 0.5), epochs=st.floats(0.1, 10),
       threshold=st.floats(0, 1), name=names,
       weights=st.dictionaries(st.sampled_from(["task", "faithfulness", "instruction_following"]),
                               st.floats(0.01, 5), min_size=1))
def test_round_trip_property(seed, lr, epochs, threshold, name, weights):
    cfg = RunConfig(name=name, seed=seed, judges={"weights": weights}, stages=[
        {"type": "train", "name": "mtl", "learning_rate": lr, "epochs": epochs},
        {"type": "sample"}, {"type": "judge"}, {"type": "select", "threshold": threshold},
        {"type": "train", "init": "mtl", "selection": "previous"}])
    again = loads(cfg.to_toml())
    assert again == cfg
    assert again.to_toml() == cfg.to_toml()


@settings(max_examples=80, deadline=None)
@given(st.text(max_size=200))
def test_parser_never_crashes_on_garbage(text):
    try:
        loads(text)
    except ConfigError:
        pass
