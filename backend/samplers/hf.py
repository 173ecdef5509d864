"""The default sampler: transformers ``generate`` with per-row seeded sampling (CPU or CUDA)."""
from __future__ import annotations

from ..config import DecodingSpec
from ..generation import Generation, generate_batch
from . import Sampler


class HFSampler(Sampler):
    name = "hf"

    def __init__(self, model, tokenizer, *, max_new_tokens: int, batch_size: int = 8):
        super().__init__(max_new_tokens=max_new_tokens, batch_size=batch_size)
        self.model = model
        self.tokenizer = tokenizer

    def _generate(self, conversations, decoding: DecodingSpec, seeds: list[int]) -> list[Generation]:
        if decoding.greedy:
            return generate_batch(self.model, self.tokenizer, conversations,
                                  max_new_tokens=self.max_new_tokens, temperature=0.0)
        return generate_batch(self.model, self.tokenizer, conversations,
                              max_new_tokens=self.max_new_tokens, temperature=decoding.temperature,
                              top_p=decoding.top_p, seeds=seeds)

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
