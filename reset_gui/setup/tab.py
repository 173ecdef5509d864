"""Setup tab: build a run config from five editors (base checkpoint, compute, data mixture, judges,
stage plan), validate it on every edit, save/load it as TOML and launch it.

The editors write into a Qt-free ``ConfigDraft``; its problems come back as (location, message)
and each editor marks its own fields by location.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import QSignalBlocker, Qt, Signal
from PySide6.QtWidgets import (QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QScrollArea,
                               QSizePolicy, QSpinBox, QSplitter, QVBoxLayout, QWidget)

from backend import config as config_mod
from backend.config import ConfigError, RunConfig
from backend.errors import StudioError
from backend.experiments import parse_seeds
from backend.launcher import Studio
from backend.paths import PRESETS
from backend.stages.judge import if_coverage_note

from ..base import ask_path, boxed, open_warning
from ..poller import Background
from .checkpoint import CheckpointEditor
from .compute import ComputeEditor
from .draft import ConfigDraft, Problem, within
from .forms import flag_widget
from .judges import JudgesEditor
from .mixture import MixtureEditor
from .stages import StagePlanEditor

DEFAULT_PRESET = "reset_quick"  # every stage and plot in minutes; reset_demo is fuller
LEFT_WIDTH = 292
TOML = "TOML (*.toml)"


class SetupTab(QWidget):
    validity_changed = Signal(bool)
    launched = Signal(str)           # new run id
    launch_failed = Signal(str)      # message

    def __init__(self, studio: Studio, parent=None, background: Background | None = None):
        super().__init__(parent)
        self.studio = studio
        self.bg = background or Background(self)
        self.draft = ConfigDraft()
        self.parent_run_id: str | None = None
        self.valid = False
        self.problems: list[Problem] = []
        self.last_errors: list[str] = []
        self.last_message: str | None = None
        self.last_config: RunConfig | None = None
        self.last_experiment: str | None = None  # the experiment id of the last seeds launch
        self._loading = False
        self._launching = False
        self.checkpoint = CheckpointEditor(self)
        self.compute = ComputeEditor(self)
        self.mixture = MixtureEditor(self.bg, lambda: self.draft.config_dir, self)
        self.judges = JudgesEditor(self)
        self.plan = StagePlanEditor(self)
        for editor in (self.checkpoint, self.compute, self.mixture, self.judges, self.plan):
            editor.edited.connect(self._edited)
        # the editors' parts that the tests reach for (and the tab itself: stages, mix, base_ref)
        c, m, p = self.checkpoint, self.mixture, self.plan
        self.base_combo, self.set_base, self.base_ref = c.combo, c.set_base, c.base_ref
        self.mix, self.preview_table = m.table, m.preview_table
        self.set_cell, self.dataset_row, self.remove_dataset_row = m.set_cell, m.row, m.remove_row
        self.stages, self.add_stage, self.remove_stage = p.stages, p.add_stage, p.remove_stage
        m.train_window = lambda: min((int(s.get("max_length") or 256) for s in p.stages
                                      if s.get("type") == "train"), default=None)
        self.move_stage, self.select_stage, self.set_stage_field = (p.move_stage, p.select_stage,
                                                                    p.set_stage_field)
        self._build()
        self.load_preset(DEFAULT_PRESET if DEFAULT_PRESET in config_mod.list_presets() else None)

    # ---- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.hint = QLabel(self, objectName="HintLabel", wordWrap=True, visible=False)
        # top bar: preset, name, seed, save/load
        self.preset_combo = QComboBox(self, minimumContentsLength=16, sizeAdjustPolicy=QComboBox
                                      .SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        for name in [*config_mod.list_presets(), None]:
            self.preset_combo.addItem(name or "custom", name)
        self.preset_combo.currentIndexChanged.connect(self._on_preset)
        self.name_edit = QLineEdit(self, placeholderText="run name", minimumWidth=150,
                                   textChanged=self._edited)
        self.seed_spin = QSpinBox(self, maximum=2**31 - 2, valueChanged=self._edited)
        # several seeds: one run each, launched together as one experiment (backend.experiments)
        self.seeds_edit = QLineEdit(self, placeholderText="e.g. 1,2,3", maximumWidth=110,
                                    textChanged=self._edited,
                                    toolTip="seeds: one run per seed, grouped as one experiment "
                                            "(Compare pools them); empty: one run with Seed")
        top = boxed(QHBoxLayout, [QLabel("Preset", self), (self.preset_combo, 1), 8,
                                  QLabel("Name", self), (self.name_edit, 1), 8,
                                  QLabel("Seed", self), self.seed_spin, 8,
                                  QLabel("Seeds", self), self.seeds_edit, 8,
                                  QPushButton("Save TOML…", self, clicked=lambda: ask_path(
                                      self, "Save run config", self.save_toml,
                                      f"{self.name_edit.text() or 'run'}.toml", TOML, "save")),
                                  QPushButton("Load TOML…", self, clicked=lambda: ask_path(
                                      self, "Load run config", self.load_toml, str(PRESETS), TOML))])
        self.clone_label = QLabel(self, objectName="DefaultsNote", visible=False)

        # two rows: [base checkpoint, compute | data mixture] over [judges | stage plan]
        body = QSplitter(Qt.Orientation.Vertical, self, childrenCollapsible=False)
        machine = QWidget(self)  # what runs and where: scrolls with its box, never pushes the rest
        boxed(QVBoxLayout, [self.checkpoint, self.compute], machine, margins=0).addStretch(1)
        for left, right in ((machine, self.mixture), (self.judges, self.plan)):
            area = QScrollArea(self, widgetResizable=True, fixedWidth=LEFT_WIDTH,
                               frameShape=QScrollArea.Shape.NoFrame)
            area.setWidget(left)
            row = QWidget(self)
            boxed(QHBoxLayout, [area, (right, 1)], row, margins=0)
            body.addWidget(row)
            body.setStretchFactor(body.count() - 1, 1)

        # bottom: validation + launch
        self.error_label = QLabel(self, objectName="ErrorLabel", wordWrap=True,
                                  textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error_label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.ok_label = QLabel(self, styleSheet="color: #1e8a3a;")
        self.launch_btn = QPushButton("Launch", self, minimumWidth=110, clicked=self.launch,
                                      styleSheet="QPushButton:enabled { font-weight: 600; }")
        msgs = boxed(QVBoxLayout, [self.error_label, self.ok_label])
        bottom = boxed(QHBoxLayout, [(msgs, 1)])
        bottom.addWidget(self.launch_btn, 0, Qt.AlignmentFlag.AlignTop)
        boxed(QVBoxLayout, [self.hint, top, self.clone_label, (body, 1), bottom], self, margins=6)

    # ---- populating --------------------------------------------------------------------------
    def load_preset(self, name: str | None) -> None:
        if name is None:
            self.set_config_dict({"name": "run", "preset": "custom",
                                  "stages": [{"type": "train", "name": "train"}]})
            return
        try:
            cfg = config_mod.load_preset(name)
        except ConfigError as exc:
            self._show([Problem((), str(exc))])
            return
        self.parent_run_id = None
        self.clone_label.hide()
        self._load(ConfigDraft(cfg.model_dump(mode="json", exclude_none=True), PRESETS))

    def set_config(self, cfg: RunConfig) -> None:
        self.set_config_dict(cfg.model_dump(mode="json", exclude_none=True))

    def set_config_dict(self, data: dict[str, Any]) -> None:
        self._load(ConfigDraft(copy.deepcopy(data), self.draft.config_dir))

    def _load(self, draft: ConfigDraft) -> None:
        data = draft.data
        self.draft = draft
        self._loading = True
        try:
            with QSignalBlocker(self.preset_combo):
                i = self.preset_combo.findData(data.get("preset"))
                self.preset_combo.setCurrentIndex(i if i >= 0 else self.preset_combo.count() - 1)
            self.name_edit.setText(str(data.get("name", "run")))
            self.seed_spin.setValue(int(data.get("seed", 42)))
            self.seeds_edit.setText(",".join(str(s) for s in data.get("seeds") or []))
            self.checkpoint.set_values(data.get("model") or {})
            self.compute.set_values(data.get("compute") or {})
            self.judges.set_values(data.get("judges") or {})
            self.mixture.set_rows(data.get("data") or [])
            self.plan.set_stages(data.get("stages") or [])
        finally:
            self._loading = False
        self.validate()

    # ---- building and validating -------------------------------------------------------------
    def raw_config(self) -> tuple[dict[str, Any], list[Problem]]:
        """The editors' values written into the draft, and the editor text that did not parse."""
        model, model_errors = self.checkpoint.values()
        compute, compute_errors = self.compute.values()
        data, data_problems = self.mixture.rows()
        d = self.draft
        d.parse_problems = ([Problem(("model", k), v) for k, v in model_errors.items()]
                            + [Problem(("compute", *k), v) for k, v in compute_errors.items()]
                            + data_problems + self.plan.problems())
        d.base_mode = self.checkpoint.mode()
        seeds: list[int] = []
        if self.seeds_edit.text().strip():
            try:
                seeds = parse_seeds(self.seeds_edit.text())
            except ValueError as exc:
                d.parse_problems.append(Problem(("seeds",), str(exc).replace("--seeds", "seeds")))
        d.data.update(name=self.name_edit.text().strip(),
                      preset=self.preset_combo.currentData() or "custom",
                      seed=self.seed_spin.value(), seeds=seeds, model=model, compute=compute,
                      data=data,
                      judges=self.judges.values(), stages=[dict(s) for s in self.plan.stages])
        return d.data, d.parse_problems

    def build_config(self) -> RunConfig:
        """The validated RunConfig (data paths made absolute); raises ConfigError."""
        self.raw_config()
        return self.draft.build()

    def validate(self) -> bool:
        """Check everything and show every problem at once; True when Launch may proceed."""
        data, _ = self.raw_config()
        self.judges.set_coverage(if_coverage_note(data.get("judges") or {}, data.get("data") or []))
        cfg, problems = self.draft.check()
        # launchable by the launcher (which re-checks files) when the config itself is sound
        self.last_config = None if self.draft.parse_problems else cfg
        self._show(problems)
        return not problems

    def _show(self, problems: list[Problem]) -> None:
        self.problems = problems
        lines = self.last_errors = [p.line(self.stages) for p in problems]
        valid = not lines
        shown = lines[:6] + ([f"… and {len(lines) - 6} more"] if len(lines) > 6 else [])
        self.error_label.setText("⚠ " + "\n⚠ ".join(shown) if lines else "")
        self.error_label.setVisible(not valid)
        self.ok_label.setVisible(valid)
        if valid:
            n = len(self.stages)
            seeds = self.draft.data.get("seeds") or []
            self.ok_label.setText(f"✓ Config is valid: {n} stage{'s' if n != 1 else ''}, "
                                  f"{self.mix.rowCount()} data set(s), base {self.base_ref()}"
                                  + (f"; {len(seeds)} seeds, launched as one experiment of "
                                     f"{len(seeds)} runs." if len(seeds) > 1 else "."))
        self.launch_btn.setEnabled(valid and not self._launching)
        for editor, section in ((self.checkpoint, "model"), (self.compute, "compute"),
                                (self.judges, "judges"), (self.mixture, "data"), (self.plan, "stages")):
            editor.mark(within(problems, section))
        flag_widget(self.name_edit, any(p.loc == ("name",) for p in problems))
        flag_widget(self.seeds_edit, any(p.loc[:1] == ("seeds",) for p in problems))
        if valid != self.valid:
            self.valid = valid
            self.validity_changed.emit(valid)

    def _edited(self, *_) -> None:
        if not self._loading:
            self.validate()

    # ---- launch ------------------------------------------------------------------------------
    def launch(self) -> None:
        if self._launching:
            return
        if not self.validate() and self.last_config is None:
            self._fail("Launch refused: the config is invalid.\n" + "\n".join(self.last_errors))
            return
        cfg, studio, parent = self.last_config, self.studio, self.parent_run_id
        self._launching = True
        self.launch_btn.setEnabled(False)
        self.ok_label.setText("Launching… (checking the checkpoint and data files)")
        self.ok_label.show()

        def work():
            if len(cfg.seeds) > 1:  # one run per seed, grouped as one experiment
                return studio.launch_seeds(cfg)
            return None, [studio.launch(cfg, parent_run_id=parent)]

        self.bg.submit(work, self._launched, self._launch_error)

    def _launched(self, result: tuple[str | None, list[str]]) -> None:
        experiment, run_ids = result
        self._launching = False
        self.validate()
        self.last_experiment = experiment
        self.ok_label.setText(f"✓ Launched experiment {experiment}: {len(run_ids)} runs, one per "
                              f"seed ({', '.join(run_ids)})" if experiment
                              else f"✓ Launched run {run_ids[0]}")
        self.ok_label.show()
        self.launched.emit(run_ids[0])

    def _launch_error(self, exc: BaseException) -> None:
        self._launching = False
        self.validate()
        self._fail(str(exc) if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}")

    def _fail(self, msg: str) -> None:
        lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
        self.error_label.setText("⚠ " + "\n⚠ ".join(lines[:8]))
        self.error_label.show()
        self.ok_label.hide()
        self.last_message = msg
        self.launch_failed.emit(msg)
        self.message_box = open_warning(self, "Launch refused", msg.splitlines()[0],
                                        styleSheet="QLabel { min-width: 560px; }",
                                        informativeText="\n".join(f"• {ln}" for ln in lines[1:]))

    # ---- save / load -------------------------------------------------------------------------
    def save_toml(self, path: str | os.PathLike) -> Path:
        """The validated config, or the work in progress as it is when it is not valid."""
        self.raw_config()
        return self.draft.save(path)

    def load_toml(self, path: str | os.PathLike) -> None:
        self._open(lambda: ConfigDraft.read(path))

    def clone_run(self, run: dict[str, Any]) -> None:
        self._open(lambda: ConfigDraft.clone_of(run), run["id"],
                   f"Cloned from run {run.get('name')} ({run['id']}): it will be recorded as the "
                   "new run's parent.")

    def _open(self, make: Callable[[], ConfigDraft], parent: str | None = None, note: str = ""):
        try:
            self._load(make())
        except ConfigError as exc:
            self._fail(str(exc))
            return
        self.parent_run_id = parent
        self.clone_label.setText(note)
        self.clone_label.setVisible(bool(note))

    def _on_preset(self, _=None) -> None:
        if name := self.preset_combo.currentData():
            self.load_preset(name)

    def show_hint(self, text: str | None) -> None:
        self.hint.setText(text or "")
        self.hint.setVisible(bool(text))
