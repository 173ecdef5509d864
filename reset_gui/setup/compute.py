"""The compute box: data-parallel processes, nodes, GPUs per process and the executor, generated
from backend.config's ComputeSpec, with the Slurm job's fields (SlurmSpec) shown only while the
executor is slurm (kept, not dropped, while it is hidden)."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QGroupBox, QVBoxLayout

from backend.config import ComputeSpec, Loc, SlurmSpec

from ..base import boxed
from .forms import ModelForm

# ComputeSpec's one model-level check (nodes > 1 needs slurm) is reported at the section itself
SECTION_FIELDS = {"nodes", "executor"}


class ComputeEditor(QGroupBox):
    edited = Signal()

    def __init__(self, parent=None):
        super().__init__("Compute", parent)
        self.form = ModelForm(ComputeSpec, skip=("slurm",), parent=self)
        self.slurm = QGroupBox("Slurm job", self)
        self.slurm_form = ModelForm(SlurmSpec, parent=self.slurm, multiline=("setup",))
        self.slurm_form.editors["setup"].widget.setPlaceholderText("e.g. module load cuda/12.4")
        self.slurm_form.editors["extra_sbatch"].widget.setPlaceholderText("e.g. --qos=high")
        boxed(QVBoxLayout, [self.slurm_form], self.slurm, margins=2)
        boxed(QVBoxLayout, [self.form, self.slurm], self, margins=4)
        self.form.changed.connect(self._changed)
        self.slurm_form.changed.connect(self.edited)

    def executor(self) -> str:
        return str(self.form.editors["executor"].get())

    def set_values(self, compute: dict[str, Any]) -> None:
        self.form.set_values(compute)
        self.slurm_form.set_values(compute.get("slurm") or {})
        self.slurm.setVisible(self.executor() == "slurm")

    def values(self) -> tuple[dict[str, Any], dict[Loc, str]]:
        """(the section's non-default values, {location in it: why its text did not parse})."""
        compute, errors = self.form.values()
        slurm, slurm_errors = self.slurm_form.values()
        if slurm:
            compute["slurm"] = slurm
        return compute, {**{(k,): v for k, v in errors.items()},
                         **{("slurm", k): v for k, v in slurm_errors.items()}}

    def mark(self, bad: list[Loc]) -> None:
        self.form.mark({str(loc[0]) for loc in bad if loc and loc[0] != "slurm"}
                       | (SECTION_FIELDS if () in bad else set()))
        slurm_bad = {str(loc[1]) for loc in bad if loc[:1] == ("slurm",) and len(loc) > 1}
        self.slurm_form.mark(slurm_bad)
        # a bad Slurm field shows even under the local executor: its problem must be findable
        self.slurm.setVisible(self.executor() == "slurm" or bool(slurm_bad))

    def _changed(self) -> None:
        self.slurm.setVisible(self.executor() == "slurm")
        self.edited.emit()
