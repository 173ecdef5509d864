"""Resume picks the newest checkpoint that a kill did not cut short."""
from types import SimpleNamespace

from backend.stages.train import last_complete_checkpoint


def test_interrupted_checkpoint_is_skipped(tmp_path):
    for step in (2, 4, 6, 10):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text('{"global_step": 4}')
    (tmp_path / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # cut mid-write
    # checkpoint-10: killed before trainer_state.json was written at all
    events = []
    ctx = SimpleNamespace(event=lambda idx, msg, level="info": events.append((level, msg)))
    assert last_complete_checkpoint(ctx, 0, tmp_path) == str(tmp_path / "checkpoint-4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2", "checkpoint-4"]
    assert [lvl for lvl, _ in events] == ["warning", "warning"]


def test_no_checkpoint(tmp_path):
    ctx = SimpleNamespace(event=lambda *a, **k: None)
    assert last_complete_checkpoint(ctx, 0, tmp_path) is None
