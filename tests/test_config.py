import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from backend.config import (ConfigError, JudgeSpec, RunConfig, absolutize, config_from_dict,
                            list_presets, load, load_preset, loads)
from backend.paths import PRESETS
from backend.presets import resolve_file


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


BEFORE = Path(__file__).parent / "fixtures" / "presets_before"  # the presets before `extends`


@pytest.mark.parametrize("name", sorted(p.stem for p in BEFORE.glob("*.toml")))
def test_composed_presets_resolve_to_the_old_files(name):
    """Each shipped preset, composed with `extends` and `stage_defaults`, is the config its old
    stand-alone file gave: same resolved keys, same validated config, same stored TOML."""
    old = tomllib.loads((BEFORE / f"{name}.toml").read_text(encoding="utf-8"))
    new = resolve_file(list_presets()[name])
    # mtl and two-stage never stated [judges]; they now inherit the base's, equal to the defaults
    if "judges" not in old:
        assert new.pop("judges") == JudgeSpec().model_dump(exclude_none=True)
    assert new == old
    assert load_preset(name).to_toml() == absolutize(config_from_dict(old), PRESETS).to_toml()


def test_presets_are_short():
    """The point of composing: no preset restates the mixture or the stage settings. A preset with
    a mixture of its own (the study: other budgets and eval splits) states that mixture, which
    must then differ from the one it extends."""
    for name, path in list_presets().items():
        text = path.read_text(encoding="utf-8")
        assert "extends" in text, name
        if "[[data]]" in text:
            parent = tomllib.loads(text)["extends"]
            assert resolve_file(path)["data"] != resolve_file(PRESETS / f"{parent}.toml")["data"], name
            continue
        assert len(text.splitlines()) <= 30, name


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_merge_rule_tables_merge_arrays_replace(tmp_path):
    _write(tmp_path, "parent.toml", """
name = "parent"
seed = 1
[judges]
task = ["rouge_l"]
weights = { task = 0.5, faithfulness = 0.5 }
[stage_defaults.train]
epochs = 3
lora_r = 4
[[data]]
name = "a"
source = "a.jsonl"
[[data]]
name = "b"
source = "b.jsonl"
[[stages]]
type = "train"
name = "parent_stage"
""")
    child = _write(tmp_path, "child.toml", """
extends = "parent.toml"
name = "child"
[judges.weights]
task = 1.0
[stage_defaults.train]
lora_r = 16
[[data]]
name = "c"
source = "c.jsonl"
[[stages]]
type = "train"
name = "mine"
epochs = 1
""")
    data = resolve_file(child)
    assert data["name"] == "child" and data["seed"] == 1  # scalars: child wins, else inherited
    # tables merge key by key, nested ones too
    assert data["judges"] == {"task": ["rouge_l"], "weights": {"task": 1.0, "faithfulness": 0.5}}
    # arrays replace whole: the mixture and the stage plan come from the child only
    assert [d["name"] for d in data["data"]] == ["c"]
    # the merged stage defaults fill each train stage; the stage's own value wins
    assert data["stages"] == [{"type": "train", "name": "mine", "epochs": 1, "lora_r": 16}]
    assert "extends" not in data and "stage_defaults" not in data


def test_extends_a_preset_from_a_user_file(tmp_path):
    path = _write(tmp_path, "mine.toml", 'extends = "reset_demo"\nname = "mine"\n'
                                         '[stage_defaults.train]\nlearning_rate = 0.001\n')
    cfg = load(path)
    demo = load_preset("reset_demo")
    assert cfg.name == "mine" and [s.name for s in cfg.stages] == [s.name for s in demo.stages]
    assert {s.learning_rate for s in cfg.stages if s.type == "train"} == {0.001}
    assert cfg.data == demo.data  # the demo's relative data paths still resolve
    assert loads('extends = "mtl_demo"\nseed = 7').seed == 7


def test_extends_cycle_is_named(tmp_path):
    _write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    _write(tmp_path, "b.toml", 'extends = "c.toml"\n')
    _write(tmp_path, "c.toml", 'extends = "a.toml"\n')
    with pytest.raises(ConfigError, match=r"cycle: a → b → c → a"):
        load(tmp_path / "a.toml")
    _write(tmp_path, "self.toml", 'extends = "self.toml"\n')
    with pytest.raises(ConfigError, match=r"cycle: self → self"):
        load(tmp_path / "self.toml")


def test_extends_missing_parent_is_named(tmp_path):
    path = _write(tmp_path, "orphan.toml", 'extends = "no_such_preset"\n')
    with pytest.raises(ConfigError, match=r"extends 'no_such_preset', but there is no such "
                                          r"preset; available: .*reset_demo"):
        load(path)
    path = _write(tmp_path, "orphan2.toml", 'extends = "gone/base.toml"\n')
    with pytest.raises(ConfigError, match=r"extends 'gone/base.toml', but there is no such file"):
        load(path)
    with pytest.raises(ConfigError, match=r"extends: expected a preset name"):
        loads("extends = 3")


def test_stage_defaults_must_name_stage_types():
    with pytest.raises(ConfigError, match=r"stage_defaults: unknown stage type\(s\) \['trian'\]"):
        loads('[stage_defaults.trian]\nepochs = 1\n[[stages]]\ntype = "train"')
    with pytest.raises(ConfigError, match=r"one table per stage type"):
        loads('stage_defaults = { train = 1 }\n[[stages]]\ntype = "train"')
    # a bad value from the defaults is reported at the stage it lands in
    with pytest.raises(ConfigError, match=r"stages.0.epochs"):
        loads('[stage_defaults.train]\nepochs = -1\n[[stages]]\ntype = "train"')


def test_reset_quick_is_the_demo_cut_down():
    quick, demo = load_preset("reset_quick"), load_preset("reset_demo")
    assert [s.type for s in quick.stages] == [s.type for s in demo.stages]
    assert quick.data == demo.data
    assert all(s.max_examples == 24 and s.eval_steps < s.max_examples // s.batch_size
               for s in quick.stages if s.type == "train")  # several probe points per stage


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
