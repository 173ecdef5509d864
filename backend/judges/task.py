"""Task-performance judges: ROUGE-L and SQuAD token F1 against the reference."""
from __future__ import annotations

import functools
import importlib.util
from collections import Counter

from backend.records import Record

from .base import Judge, JudgeResult, clamp01
from .text import squad_normalize


class _ReferenceJudge(Judge):
    """A task judge: scores (``_score``) the items that have a reference."""

    category = "task"

    def applies(self, record: Record) -> bool:
        return bool(record.reference and record.reference.strip())

    def score_batch(self, records: list[Record], responses: list[str]) -> list[JudgeResult]:
        self._check_lengths(records, responses)
        return [self._score(rec, resp) if self.applies(rec)
                else JudgeResult(None, {"reason": "no reference"})
                for rec, resp in zip(records, responses)]


@functools.lru_cache(maxsize=2)
def _rouge_scorer(use_stemmer: bool):
    from rouge_score import rouge_scorer  # stemmer is NLTK code only, no data

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=use_stemmer)


class RougeL(_ReferenceJudge):
    """ROUGE-L F-measure (rouge-score, Porter stemming) of the response against the reference."""

    name = "rouge_l"

    def available(self) -> tuple[bool, str]:
        if importlib.util.find_spec("rouge_score") is None:
            return False, "rouge-score not installed"
        return True, "rouge-score"

    def _score(self, record: Record, response: str) -> JudgeResult:
        scorer = _rouge_scorer(bool(self.options.get("use_stemmer", True)))
        s = scorer.score(record.reference, response or "")["rougeL"]
        return JudgeResult(clamp01(s.fmeasure), {"precision": round(s.precision, 4),
                                                 "recall": round(s.recall, 4),
                                                 "fmeasure": round(s.fmeasure, 4)})


def token_f1(prediction: str, reference: str) -> tuple[float, dict]:
    """SQuAD token F1 of one prediction against one gold answer (official evaluate-v2.0 compute_f1)."""
    pred = squad_normalize(prediction or "").split()
    ref = squad_normalize(reference or "").split()
    if not pred or not ref:
        f1 = float(pred == ref)
        return f1, {"precision": f1, "recall": f1, "common": 0}
    common = Counter(pred) & Counter(ref)
    same = sum(common.values())
    if same == 0:
        return 0.0, {"precision": 0.0, "recall": 0.0, "common": 0}
    p, r = same / len(pred), same / len(ref)
    return 2 * p * r / (p + r), {"precision": round(p, 4), "recall": round(r, 4), "common": same}


def gold_answers(record: Record) -> list[str]:
    """Every gold answer of a record: its `references` when the loader kept several (SQuAD has
    several per question; they survive the run log in the prompt's constraints JSON), else the
    single `reference`."""
    return [g for g in record.references if isinstance(g, str)] or [record.reference or ""]


def squad_scores(prediction: str, golds: list[str]) -> dict:
    """Official SQuAD metrics: F1 and exact match, each the max over all gold answers; golds that
    normalise to nothing are dropped (evaluate-v2.0), and if none is left the gold is ''."""
    golds = [g for g in golds if squad_normalize(g or "")] or [""]
    norm_pred = squad_normalize(prediction or "")
    em = max(float(norm_pred == squad_normalize(g)) for g in golds)
    best_f1, best, best_i = -1.0, {}, 0
    for i, g in enumerate(golds):
        f1, det = token_f1(prediction, g)
        if f1 > best_f1:
            best_f1, best, best_i = f1, det, i
    return {"f1": best_f1, "em": em, "best_gold": best_i, "n_gold": len(golds), **best}


class TokenF1(_ReferenceJudge):
    """SQuAD token F1 (lowercase, strip punctuation and articles, bag of tokens), max over all gold
    answers; exact match (also max over golds) is in details["em"]."""

    name = "token_f1"

    def _score(self, record: Record, response: str) -> JudgeResult:
        det = squad_scores(response, gold_answers(record))
        det["f1"] = round(det["f1"], 4)
        return JudgeResult(clamp01(det["f1"]), det)
