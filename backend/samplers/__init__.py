"""Samplers: one interface over the ways of generating candidate responses.

``Sampler.generate(conversations, decoding, seeds) -> list[Generation]`` draws one response per
conversation with one decoding setting; row ``i`` uses ``seeds[i]`` (ignored when greedy), so a
sample depends on its own seed only. Backends:

``hf`` (default)
    transformers ``generate`` through :func:`backend.generation.generate_batch`, in batches of
    ``batch_size`` rows, on CPU or CUDA.
``vllm`` (optional extra, CUDA only)
    one ``vllm.LLM`` engine; a LoRA checkpoint is served as a ``LoRARequest`` on its base.
``openai``
    any OpenAI-compatible chat/completions endpoint (a ``vllm serve``, a hosted API).

Heavy libraries are imported only when a backend is built.
"""
from __future__ import annotations

from typing import Any, Sequence

from ..config import DecodingSpec, EndpointSpec
from ..errors import StudioError
from ..generation import Generation

BACKENDS = ("hf", "vllm", "openai")


class SamplerError(StudioError, RuntimeError):
    """A sampler that cannot be built or a generation request that failed; one clear line."""


class Sampler:
    """Base class. Subclasses implement ``_generate`` for one chunk of rows."""

    name = ""

    def __init__(self, *, max_new_tokens: int, batch_size: int = 8):
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = max(1, int(batch_size))

    def generate(self, conversations: list[list[dict[str, str]]], decoding: DecodingSpec,
                 seeds: Sequence[int] | None = None) -> list[Generation]:
        """One response per conversation, drawn with ``decoding`` (its ``n`` is ignored here: the
        caller asks once per candidate, each with its own seed)."""
        seeds = [0] * len(conversations) if seeds is None else [int(s) for s in seeds]
        if len(seeds) != len(conversations):
            raise ValueError(f"{len(conversations)} conversations but {len(seeds)} seeds")
        out: list[Generation] = []
        for k in range(0, len(conversations), self.chunk_size):
            out.extend(self._generate(conversations[k:k + self.chunk_size], decoding,
                                      seeds[k:k + self.chunk_size]))
        return out

    @property
    def chunk_size(self) -> int:
        return self.batch_size

    def _generate(self, conversations, decoding: DecodingSpec, seeds: list[int]) -> list[Generation]:
        raise NotImplementedError

    def params(self, decoding: DecodingSpec) -> dict[str, Any]:
        """What is stored with each sample (``samples.params``)."""
        return {"backend": self.name, "temperature": decoding.temperature,
                "top_p": 1.0 if decoding.greedy else decoding.top_p,
                "max_new_tokens": self.max_new_tokens}

    def close(self) -> None:
        pass


def make_sampler(backend: str, *, max_new_tokens: int, batch_size: int = 8, model=None,
                 tokenizer=None, load=None, resolved=None, endpoint: EndpointSpec | None = None,
                 dtype: str = "auto", tensor_parallel_size: int = 1) -> Sampler:
    """Build a sampler.

    hf: pass ``model`` and ``tokenizer``, or ``load`` (a no-argument callable returning them).
    vllm: pass ``resolved`` (a :class:`backend.models.ResolvedModel`); ``tensor_parallel_size``
    GPUs hold one engine (compute.gpus_per_process).
    openai: pass ``endpoint``.
    """
    if backend == "hf":
        from .hf import HFSampler

        if model is None:
            if load is None:
                raise ValueError("the hf sampler needs a model and tokenizer (or a loader)")
            model, tokenizer = load()
        return HFSampler(model, tokenizer, max_new_tokens=max_new_tokens, batch_size=batch_size)
    if backend == "vllm":
        from .vllm_backend import VLLMSampler

        return VLLMSampler(resolved, max_new_tokens=max_new_tokens, batch_size=batch_size,
                           dtype=dtype, tensor_parallel_size=tensor_parallel_size)
    if backend == "openai":
        from .openai_backend import OpenAISampler

        if endpoint is None or not endpoint.base_url:
            raise SamplerError("the openai backend needs an endpoint with a base_url "
                               "(stage.endpoint.base_url)")
        return OpenAISampler(endpoint, max_new_tokens=max_new_tokens, batch_size=batch_size)
    raise ValueError(f"unknown sampler backend {backend!r}; use one of {list(BACKENDS)}")


__all__ = ["BACKENDS", "Generation", "Sampler", "SamplerError", "make_sampler"]
