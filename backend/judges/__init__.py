"""Judges: score a response to a Record in [0, 1] with details for the sample inspector.

Categories: "task" (rouge_l, token_f1), "faithfulness" (faith_summac, faith_lm, faith_minilm,
faith_factcc, faith_lexical), "instruction_following" (ifeval, llm_judge). Heavy libraries (torch,
transformers, sentence-transformers, openai, if-verifiable) are imported only when a judge runs.
"""
from backend.scoring import combine

from .base import CATEGORIES, Judge, JudgeResult
from .faithfulness import (
    ENV_NLI_MODEL,
    LexicalFaithfulness,
    MiniLMFaithfulness,
    SummaCZS,
    pick_faithfulness_judge,
)
from .instruction import IFEvalJudge, LLMJudge, parse_rating
from .registry import JUDGES, build_judges, list_judges, score_records
from .task import RougeL, TokenF1

__all__ = [
    "CATEGORIES", "Judge", "JudgeResult", "JUDGES",
    "build_judges", "list_judges", "score_records", "combine", "pick_faithfulness_judge",
    "RougeL", "TokenF1", "LexicalFaithfulness", "MiniLMFaithfulness", "SummaCZS",
    "IFEvalJudge", "LLMJudge", "parse_rating", "ENV_NLI_MODEL",
]
