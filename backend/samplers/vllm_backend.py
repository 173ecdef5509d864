"""vLLM sampler (optional extra, CUDA only): one engine, LoRA checkpoints as ``LoRARequest``.

Each request carries its own seed (``SamplingParams(n=1, seed=...)``), so as with the hf sampler a
sample depends on its own seed only, and a resumed stage redraws exactly the missing candidates.
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from ..config import DecodingSpec
from ..generation import Generation
from . import Sampler, SamplerError

VLLM_MISSING = ('vLLM needs a CUDA GPU and `pip install reset-studio[vllm]`; use backend = "hf"')
_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def vllm_unavailable_reason() -> str | None:
    """None when vLLM can run here, else the reason (one line)."""
    if importlib.util.find_spec("vllm") is None:
        return f"{VLLM_MISSING} (vllm is not installed)"
    try:
        import torch

        if not torch.cuda.is_available():
            return f"{VLLM_MISSING} (no CUDA GPU visible)"
    except Exception as exc:  # noqa: BLE001 - a broken torch install is reported, not raised
        return f"{VLLM_MISSING} (torch: {type(exc).__name__}: {exc})"
    return None


def _lora_rank(adapter_dir: Path) -> int:
    try:
        r = int(json.loads((adapter_dir / "adapter_config.json").read_text()).get("r", 16))
    except (OSError, ValueError):
        r = 16
    return next((x for x in _LORA_RANKS if x >= r), r)


class VLLMSampler(Sampler):
    name = "vllm"

    def __init__(self, resolved, *, max_new_tokens: int, batch_size: int = 256,
                 dtype: str = "auto", tensor_parallel_size: int = 1):
        super().__init__(max_new_tokens=max_new_tokens, batch_size=batch_size)
        why = vllm_unavailable_reason()
        if why:
            raise SamplerError(why)
        if resolved is None:
            raise SamplerError("the vllm sampler needs a resolved model")
        from vllm import LLM
        from vllm.lora.request import LoRARequest

        from ..models import CHATML_TEMPLATE, materialize

        resolved = materialize(resolved)
        self.lora = None
        kwargs = {"dtype": dtype, "seed": 0, "tensor_parallel_size": tensor_parallel_size,
                  "trust_remote_code": bool(resolved.trust_remote_code)}
        if resolved.is_adapter:
            base = resolved.base
            if base is None or base.is_adapter or base.model_dir is None:
                raise SamplerError(f"vLLM serves one LoRA adapter on a plain base model; "
                                   f"{resolved.ref!r} sits on another adapter — merge it first "
                                   "(reset-gui export merged) or use backend = \"hf\"")
            model_dir = base.model_dir
            kwargs.update(enable_lora=True, max_loras=1,
                          max_lora_rank=_lora_rank(Path(resolved.adapter_dir)))
            self.lora = LoRARequest("reset-adapter", 1, str(resolved.adapter_dir))
        else:
            model_dir = resolved.model_dir
        try:
            self.llm = LLM(model=str(model_dir), **kwargs)
        except Exception as exc:  # noqa: BLE001 - engine start failures become one line
            raise SamplerError(f"vLLM could not start on {model_dir}: {type(exc).__name__}: "
                               f"{str(exc)[:300]}") from exc
        self.tokenizer = self.llm.get_tokenizer()
        if not getattr(self.tokenizer, "chat_template", None):
            self.tokenizer.chat_template = CHATML_TEMPLATE

    @property
    def chunk_size(self) -> int:
        # vLLM schedules continuously; larger chunks only delay the next run-log write
        return max(self.batch_size, 64)

    def _generate(self, conversations, decoding: DecodingSpec, seeds: list[int]) -> list[Generation]:
        from vllm import SamplingParams

        prompts = [self.tokenizer.apply_chat_template(c, add_generation_prompt=True, tokenize=False)
                   for c in conversations]
        if decoding.greedy:
            params = [SamplingParams(n=1, temperature=0.0, max_tokens=self.max_new_tokens)
                      for _ in prompts]
        else:
            params = [SamplingParams(n=1, temperature=decoding.temperature, top_p=decoding.top_p,
                                     seed=int(s), max_tokens=self.max_new_tokens) for s in seeds]
        outs = self.llm.generate(prompts, params, lora_request=self.lora, use_tqdm=False)
        return [Generation(text=c.text.strip(), n_tokens=len(c.token_ids),
                           finish_reason="length" if c.finish_reason == "length" else "stop")
                for c in (o.outputs[0] for o in outs)]

    def close(self) -> None:
        self.llm = None
