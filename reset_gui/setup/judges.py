"""The judges box: category weights, the faithfulness judge and its NLI model, the task and
instruction judges, and an optional OpenAI-compatible LLM judge."""
from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QHBoxLayout,
                               QLabel, QLineEdit)

from backend.config import CATEGORIES, FAITHFULNESS_JUDGES, JudgeSpec, Loc

from ..base import boxed, browse_button
from .forms import DEFAULTS_NOTE, flag_widget

FAITH_JUDGES = list(FAITHFULNESS_JUDGES)
# what each faithfulness judge sees and misses; pairwise accuracies (faithful answer ranked above
# its hallucinated twin) from backend/judges/README.md: 48 hand-written pairs on contexts no judge
# trained on (36 swap/negation/number/date/pronoun, 12 new-word) and 984 held-out transformed pairs
FAITH_NOTES = {
    "auto": "SummaC-ZS when an NLI model is on disk, else the embedded LM's likelihood (faith_lm), "
            "else the MiniLM sentence judge, else lexical support (the choice is recorded with "
            "every score).",
    "faith_summac": "SummaC-ZS over your NLI model folder: as good as that model; sentence-level "
                    "NLI misses claims that need two context sentences together.",
    "faith_lm": "Likelihood of each response token under the embedded SmolLM2 after reading the "
                "context (no training). Catches swapped names, numbers, pronouns and negations "
                "that keep the context's words. ~20 samples/s on a 2-core CPU with 4 candidates "
                "per prompt, 11 with one (MiniLM 24); a 135M model misses subtle pronoun swaps, "
                "and one wrong word is averaged with its sentence (ranks candidates better than it "
                "thresholds them). Pairs ranked right: "
                "hand-written swaps 97 %, new words 100 %; tuning-set swaps 79 %, new words 100 %.",
    "faith_minilm": "Sentence similarity + word coverage. Blind spot: swapped names, numbers, "
                    "negations barely move an embedding. Pairs ranked right: hand-written swaps "
                    "69 %, new words 100 %; held-out swaps 40 %, new words 100 %.",
    "faith_factcc": "FactCC-style cross-encoder trained once on corruptions of the demo data "
                    "(~4 CPU-minutes, cached; reset-gui judge --prepare). Reads each sentence "
                    "against the 2 closest context sentences only; precision only; English; "
                    "uncalibrated. Pairs ranked right: hand-written swaps 64 %, new words 100 %; "
                    "held-out swaps 76 %, new words 96 %.",
    "faith_lexical": "Counts context words. Blind to hallucinations built from the context's own "
                     "words (below chance on swaps). Pairs ranked right: hand-written swaps 42 %, "
                     "new words 100 %; held-out swaps 21 %, new words 99 %.",
}
WEIGHT_LABELS = {"task": "task weight", "faithfulness": "faithfulness weight",
                 "instruction_following": "instruction weight"}


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


class JudgesEditor(QGroupBox):
    edited = Signal()

    def __init__(self, parent=None):
        super().__init__("Judges && weights", parent)
        form = QFormLayout(self, fieldGrowthPolicy=QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.extras: dict[str, Any] = {}  # endpoint settings without an editor, kept as loaded
        self.weight_spins: dict[str, QDoubleSpinBox] = {}
        for cat in map(str, CATEGORIES):
            self.weight_spins[cat] = QDoubleSpinBox(
                self, maximum=100.0, decimals=2, singleStep=0.05, valueChanged=self._changed,
                toolTip=f"judges.weights.{cat}: weight of the {cat.replace('_', ' ')} score in the "
                        "combined score (ReSet Studio default; the paper does not publish it)")
            form.addRow(WEIGHT_LABELS[cat], self.weight_spins[cat])
        self.faith_combo = QComboBox(self, currentIndexChanged=self._faith_changed)
        for name in FAITH_JUDGES:  # the first one added sets the combo's tooltip
            self.faith_combo.addItem(name, name)
            self.faith_combo.setItemData(self.faith_combo.count() - 1, FAITH_NOTES[name],
                                         Qt.ItemDataRole.ToolTipRole)
        form.addRow("faithfulness judge", self.faith_combo)
        self.nli_edit = QLineEdit(self, placeholderText="local NLI model folder (optional)",
                                  textChanged=self._changed)
        nli_btn = browse_button(self.nli_edit, "Choose a local NLI model folder")
        form.addRow("NLI model", boxed(QHBoxLayout, [(self.nli_edit, 1), nli_btn]))
        self.task_edit, self.if_edit, self.llm_url_edit, self.llm_model_edit = (
            QLineEdit(self, placeholderText=placeholder, textChanged=self._changed)
            for placeholder in ("", "", "OpenAI-compatible base URL (optional)", ""))
        for label, edit in (("task judges", self.task_edit), ("instruction judges", self.if_edit),
                            ("LLM judge URL", self.llm_url_edit),
                            ("LLM judge model", self.llm_model_edit)):
            form.addRow(label, edit)
        # or the LLM judge on a local causal-LM folder (judges.llm_judge; rating probabilities)
        self.llm_local_edit = QLineEdit(
            self, placeholderText="or a local model folder (optional)", textChanged=self._changed,
            toolTip="judges.llm_judge.model_path: a local causal LM that rates instruction "
                    "following by the probabilities of the ratings 1..10 (no sampling); use it or "
                    "an endpoint URL, not both")
        llm_btn = browse_button(self.llm_local_edit,
                                "Choose a local causal-LM folder for the LLM judge")
        form.addRow("LLM judge folder", boxed(QHBoxLayout, [(self.llm_local_edit, 1), llm_btn]))
        self.local_extras: dict[str, Any] = {}  # scoring/device of judges.llm_judge, kept as loaded
        # which prompts an instruction-following judge covers (set_coverage; never silent), on top
        self.coverage_label = QLabel("", self, objectName="CoverageNote", wordWrap=True)
        form.insertRow(0, self.coverage_label)
        form.addRow(QLabel(DEFAULTS_NOTE, self, objectName="DefaultsNote", wordWrap=True))

    def set_values(self, j: dict[str, Any]) -> None:
        merged = {**JudgeSpec().model_dump(mode="json"), **j}
        weights = merged.get("weights") or {}
        for cat, sp in self.weight_spins.items():
            sp.setValue(float(weights.get(cat, 0.0)))
        faith = merged.get("faithfulness", "auto")
        if self.faith_combo.findData(faith) < 0:
            self.faith_combo.addItem(str(faith), faith)
        self.faith_combo.setCurrentIndex(self.faith_combo.findData(faith))
        self.nli_edit.setText(merged.get("nli_model") or "")
        self.task_edit.setText(", ".join(merged.get("task") or []))
        self.if_edit.setText(", ".join(merged.get("instruction_following") or []))
        ep = merged.get("llm_endpoint") or {}
        self.llm_url_edit.setText(ep.get("base_url", ""))
        self.llm_model_edit.setText(ep.get("model", ""))
        self.extras = {k: v for k, v in ep.items() if k not in ("base_url", "model")}
        local = merged.get("llm_judge") or {}
        self.llm_local_edit.setText(local.get("model_path") or "")
        self.local_extras = {k: v for k, v in local.items() if k != "model_path"}

    def values(self) -> dict[str, Any]:
        judges: dict[str, Any] = {
            "task": _names(self.task_edit.text()),
            "faithfulness": self.faith_combo.currentData(),
            "instruction_following": _names(self.if_edit.text()),
            "weights": {cat: sp.value() for cat, sp in self.weight_spins.items()},
        }
        if self.nli_edit.text().strip():
            judges["nli_model"] = self.nli_edit.text().strip()
        if self.llm_url_edit.text().strip():
            judges["llm_endpoint"] = {"base_url": self.llm_url_edit.text().strip(),
                                      "model": self.llm_model_edit.text().strip(), **self.extras}
        if self.llm_local_edit.text().strip():
            judges["llm_judge"] = {"model_path": self.llm_local_edit.text().strip(),
                                   **self.local_extras}
        return judges

    def set_coverage(self, text: str) -> None:
        """The IF coverage of the mixture (backend.stages.judge.if_coverage_note); a gap shows
        in the warning colour."""
        self.coverage_label.setText(text)
        gap = "unscored" in text or "no IF judge" in text
        self.coverage_label.setStyleSheet("color: #b42318;" if gap else "color: #555;")
        self.coverage_label.setToolTip("Instruction following is scored by IFEval checks on prompts "
                                       "that carry them, and by the LLM judge (when configured) on "
                                       "every prompt. A weighted category a prompt lacks drops out "
                                       "of its combined score (the other weights renormalise); set "
                                       "an LLM judge URL to score free-form instructions.")

    def mark(self, bad: list[Loc]) -> None:
        fields = {loc[0] for loc in bad if loc}
        for field, w in [*(("weights", sp) for sp in self.weight_spins.values()),
                         ("faithfulness", self.faith_combo), ("nli_model", self.nli_edit),
                         ("task", self.task_edit), ("instruction_following", self.if_edit),
                         ("llm_endpoint", self.llm_url_edit), ("llm_judge", self.llm_local_edit)]:
            flag_widget(w, field in fields)

    def _changed(self, *_) -> None:
        self.edited.emit()

    def _faith_changed(self, *_) -> None:
        """The chosen judge's blind spots and measured accuracy, as the combo's tooltip."""
        self.faith_combo.setToolTip(FAITH_NOTES.get(self.faith_combo.currentData(), ""))
        self.edited.emit()
