"""Faithfulness from a causal LM's conditional likelihood (the embedded SmolLM2 by default).

A response is scored by how likely the LM finds its tokens after reading the context: per token,
log p(token | context, instruction, earlier response tokens), optionally minus ``null_weight`` x
log p(token | instruction, earlier response tokens) (a partial PMI; 0 by default, as 0.25 ranked the
tuning pairs no better). A swapped name, number or pronoun, a reversed outcome or a new claim is a
token the context makes less likely, while a faithful paraphrase keeps the context's facts. This is
the "source -> hypothesis" direction of BARTScore (Yuan et al., 2021) with a causal LM.

The context is read once per distinct context (its key/value cache is shared by all the candidate
responses of a prompt), so scoring n candidates costs one context pass plus n short ones. Contexts
with a single response (evaluation) are scored together as padded whole sequences instead.

Per response sentence: mean token score -> sigmoid((x - center) / scale). ``center`` and ``scale``
were fitted by logistic regression on the tuning pairs (assets/judge_eval/dev_pairs.jsonl;
``python -m backend.judges.likelihood --calibrate``); the hand-written pairs were never used.
"""
from __future__ import annotations

import copy
import inspect
import math
import threading
from typing import Any

from backend.records import Record

from .base import JudgeResult
from .faithfulness import _aggregate, _FaithJudge, int8_linear
from .text import split_sentences

# prompt chosen on the tuning pairs (4 system lines tried, within 1 pair of each other)
INSTRUCTION = "Restate one fact from the text above."
SYSTEM = "Answer using only facts stated in the user's text."
# center / scale: fitted on the tuning pairs (see module docstring), in nats per token
DEFAULTS = {"system": SYSTEM, "null_weight": 0.0, "center": -2.074, "scale": 1.042, "threshold": 0.5,
            "batch_size": 16, "batch_tokens": 1024, "max_response_tokens": 256, "dtype": "auto",
            "device": "auto", "quantize": False}

_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}


def _prompt(tok, context: str, system: str | None = None) -> str:
    msgs = [{"role": "user", "content": f"{context}\n\n{INSTRUCTION}" if context else INSTRUCTION}]
    if system:
        msgs.insert(0, {"role": "system", "content": system})
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def _cache_arg(model) -> str:
    """transformers 5 renamed past_key_values to cache (the argument and the output field)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def token_gain(lp_ctx: list[float], lp_null: list[float], null_weight: float) -> list[float]:
    """Per token: log p with the context minus null_weight x log p without it."""
    return [a - null_weight * b for a, b in zip(lp_ctx, lp_null)]


def _padded_chunks(lengths: list[int], budget: int) -> list[list[int]]:
    """Indices grouped into padded batches: shortest first, a batch grows while its rows x its
    longest row stays within ``budget`` tokens (a longer row always gets at least a batch alone)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    chunks: list[list[int]] = []
    for i in order:
        if chunks and (len(chunks[-1]) + 1) * lengths[i] <= budget:
            chunks[-1].append(i)
        else:
            chunks.append([i])
    return chunks


def _answer_logprobs(head, hidden, answer: list[int]) -> list[float]:
    """log p of each answer token from the hidden states that predict it: the vocabulary-wide
    logits of one answer at a time (a batch's would be tens of MB)."""
    import torch

    logits = head(hidden).float()
    got = logits.gather(1, torch.tensor(answer, device=logits.device).unsqueeze(-1)).squeeze(-1)
    return (got - torch.logsumexp(logits, dim=-1)).cpu().tolist()


def release() -> None:
    """Drop the loaded LM (a worker frees judge models between stages)."""
    with _LOCK:
        _LOADED.clear()


class LikelihoodFaithfulness(_FaithJudge):
    """Options: model_path (a local causal-LM folder or any model reference backend.models resolves;
    default "embedded"), null_weight (0), center / scale (the sigmoid over the mean token score),
    threshold (0.5), batch_size (16 answers per pass over shared contexts), batch_tokens (1024:
    padded tokens per pass when several contexts are read together), max_response_tokens (256;
    later tokens are not scored),
    dtype ("auto": bf16 where the hardware has it, else fp32), device ("auto": a GPU if there is
    one), quantize (int8 Linear weights on CPU; off: it ranked 1 tuning pair worse), system."""

    name = "faith_lm"

    def _o(self, key: str):
        return self._opt(key, DEFAULTS.get(key))

    def _ref(self) -> str:
        return str(self._opt("model_path", None) or "embedded")

    def available(self) -> tuple[bool, str]:
        from backend import models

        try:
            r = models.resolve_model(self._ref())
        except Exception as exc:  # ModelError and friends: say why, do not raise
            return False, str(exc)
        return True, f"likelihood under {r.ref if r.kind == 'embedded' else self._ref()}"

    def _load(self):
        from backend import models

        key = f"{self._ref()}|{self._o('dtype')}|{self._o('device')}|q={bool(self._o('quantize'))}"
        with _LOCK:
            hit = _LOADED.get(key)
            if hit is None:
                device, dtype = str(self._o("device")), str(self._o("dtype"))
                where = models.pick_device(device)
                quantize = bool(self._o("quantize")) and where == "cpu"
                if quantize:  # int8 dynamic Linear layers take float32 activations only
                    dtype = "float32"
                elif dtype == "auto":  # bf16 where the hardware has it: same ranking, ~3x faster
                    dtype = "bfloat16" if models.has_native_bf16(where) else "float32"
                model, tok = models.load_model(self._ref(), device=device, dtype=dtype,
                                               padding_side="right")
                if quantize:
                    model = int8_linear(model)
                hit = _LOADED[key] = (model, tok)
            return hit

    # -- token scores -------------------------------------------------------------------------
    def _prompt_ids(self, tok, context: str) -> list[int]:
        return tok(_prompt(tok, context, self._o("system")), add_special_tokens=False).input_ids

    def _shared_logprobs(self, model, tok, groups: list[tuple[list[int], list[list[int]]]]
                         ) -> list[list[list[float]]]:
        """log p of each answer token for (prompt ids, [answer ids]) groups: the prompts of several
        groups are read in one right-padded pass (minus their last token), and each group's cache
        is shared by its answers, batched across groups. Per group, per answer, per token."""
        import torch

        bs, budget = max(1, int(self._o("batch_size"))), max(1, int(self._o("batch_tokens")))
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        dev = model.device
        decoder, head = model.get_decoder(), model.get_output_embeddings()
        out: list[list[list[float]]] = [[[] for _ in answers] for _, answers in groups]
        for chunk in _padded_chunks([len(p) for p, _ in groups], budget):
            n_prev = [len(groups[g][0]) - 1 for g in chunk]
            width0 = max(n_prev)
            ids0 = torch.full((len(chunk), width0), pad, dtype=torch.long)
            att0 = torch.zeros((len(chunk), width0), dtype=torch.long)
            for r, g in enumerate(chunk):  # right padding: the pads are masked out below
                ids0[r, :n_prev[r]] = torch.tensor(groups[g][0][:-1])
                att0[r, :n_prev[r]] = 1
            with torch.inference_mode():  # the decoder alone: no logits are needed for the context
                cache0 = getattr(decoder(input_ids=ids0.to(dev), attention_mask=att0.to(dev),
                                         use_cache=True), _cache_arg(decoder))
            rows = [(r, j) for r, g in enumerate(chunk) for j in range(len(groups[g][1]))]
            for m in range(0, len(rows), bs):
                sub = rows[m:m + bs]
                answers = [groups[chunk[r]][1][j] for r, j in sub]
                width = 1 + max(len(a) for a in answers)
                ids = torch.full((len(sub), width), pad, dtype=torch.long)
                att = torch.zeros((len(sub), width0 + width), dtype=torch.long)
                pos = torch.zeros((len(sub), width), dtype=torch.long)
                for i, ((r, _), a) in enumerate(zip(sub, answers)):
                    ids[i, :1 + len(a)] = torch.tensor([groups[chunk[r]][0][-1], *a])
                    att[i, :n_prev[r]] = 1
                    att[i, width0:width0 + 1 + len(a)] = 1
                    pos[i] = torch.arange(n_prev[r], n_prev[r] + width)
                cache = copy.deepcopy(cache0)
                cache.reorder_cache(torch.tensor([r for r, _ in sub], device=dev))
                with torch.inference_mode():
                    hidden = decoder(input_ids=ids.to(dev), attention_mask=att.to(dev),
                                     position_ids=pos.to(dev),
                                     **{_cache_arg(decoder): cache}).last_hidden_state
                    for i, ((r, j), a) in enumerate(zip(sub, answers)):
                        out[chunk[r]][j] = _answer_logprobs(head, hidden[i, :len(a)], a)
        return out

    def _whole_logprobs(self, model, tok, seqs: list[tuple[list[int], list[int]]]
                        ) -> list[list[float]]:
        """log p of each answer token for (prompt ids, answer ids) pairs that share nothing: whole
        sequences of several contexts in one padded forward (one candidate per context, as in
        evaluation, where a pass per context would leave the CPU waiting on small matrices)."""
        import torch

        budget = max(1, int(self._o("batch_tokens")))
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        decoder, head = model.get_decoder(), model.get_output_embeddings()
        out: list[list[float]] = [[] for _ in seqs]
        for chunk in _padded_chunks([len(p) + len(a) for p, a in seqs], budget):
            width = max(sum(map(len, seqs[i])) for i in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            att = torch.zeros((len(chunk), width), dtype=torch.long)
            for r, i in enumerate(chunk):  # right padding: real tokens never see a pad
                p, a = seqs[i]
                ids[r, :len(p) + len(a)] = torch.tensor(p + a)
                att[r, :len(p) + len(a)] = 1
            with torch.inference_mode():
                hidden = decoder(input_ids=ids.to(model.device),
                                 attention_mask=att.to(model.device)).last_hidden_state
                for r, i in enumerate(chunk):  # logits only where an answer token is predicted
                    p, a = seqs[i]
                    out[i] = _answer_logprobs(head, hidden[r, len(p) - 1:len(p) - 1 + len(a)], a)
        return out

    def _plan(self, tok, contexts: list[str], responses: list[str]):
        """(answer ids cut at max_response_tokens, their character spans, {context: indices of its
        non-empty answers}): what token_scores reads, and what work() counts."""
        cap = int(self._o("max_response_tokens"))
        enc = [tok(r or "", add_special_tokens=False, return_offsets_mapping=True) for r in responses]
        ids = [e.input_ids[:cap] for e in enc]
        spans = [list(map(tuple, e.offset_mapping[:cap])) for e in enc]
        groups: dict[str, list[int]] = {}
        for i, c in enumerate(contexts):
            if ids[i]:
                groups.setdefault(c, []).append(i)
        return ids, spans, groups

    def token_scores(self, contexts: list[str], responses: list[str]):
        """Per response: (tokens [(start, end)], log p with context, log p without)."""
        model, tok = self._load()
        ids, spans, groups = self._plan(tok, contexts, responses)
        with_ctx: list[list[float] | None] = [None] * len(responses)
        singles = [idx[0] for idx in groups.values() if len(idx) == 1]
        seqs = [(self._prompt_ids(tok, contexts[i]), ids[i]) for i in singles]
        for i, v in zip(singles, self._whole_logprobs(model, tok, seqs)):
            with_ctx[i] = v
        multi = [idx for idx in groups.values() if len(idx) > 1]  # read once, cache shared
        shared = [(self._prompt_ids(tok, contexts[idx[0]]), [ids[i] for i in idx]) for idx in multi]
        for idx, got in zip(multi, self._shared_logprobs(model, tok, shared)):
            for i, v in zip(idx, got):
                with_ctx[i] = v
        live = [i for i in range(len(responses)) if ids[i]]
        without: list[list[float] | None] = [None] * len(responses)
        if live and float(self._o("null_weight")):
            null = (self._prompt_ids(tok, ""), [ids[i] for i in live])
            for i, v in zip(live, self._shared_logprobs(model, tok, [null])[0]):
                without[i] = v
        return [(spans[i], with_ctx[i] or [], without[i] or [0.0] * len(ids[i]))
                for i in range(len(responses))]

    def work(self, contexts: list[str], responses: list[str]) -> dict[str, int]:
        """The arithmetic token_scores does for these inputs, counted without padding: each
        distinct context's prompt read once, every answer token through the decoder and the vocabulary
        head. Multiply-accumulates of the linear layers only (attention scores, norms and pads come
        on top), so a lower bound: the benchmark divides a machine's matmul rate by it."""
        model, tok = self._load()
        ids, _, groups = self._plan(tok, contexts, responses)
        answer = sum(map(len, ids))
        prompt = sum(len(self._prompt_ids(tok, c)) for c in groups)
        if answer and float(self._o("null_weight")):
            prompt += len(self._prompt_ids(tok, ""))
            answer *= 2

        def numel(m) -> int:  # an int8 dynamic Linear keeps its weight behind a method
            w = m.weight() if callable(m.weight) else m.weight
            return w.numel()

        layer = sum(numel(m) for m in model.get_decoder().modules() if type(m).__name__ == "Linear")
        head = numel(model.get_output_embeddings())
        return {"prompt_tokens": prompt, "answer_tokens": answer, "macs_per_token": layer,
                "head_macs_per_answer_token": head,
                "macs": (prompt + answer) * layer + answer * head}

    # -- judge --------------------------------------------------------------------------------
    def score_batch(self, records: list[Record], responses: list[str]) -> list[JudgeResult]:
        self._check_lengths(records, responses)
        live = [i for i, r in enumerate(records) if self.applies(r)]
        scored = self.token_scores([records[i].context for i in live], [responses[i] or "" for i in live])
        lam, center = float(self._o("null_weight")), float(self._o("center"))
        scale, thr = max(1e-6, float(self._o("scale"))), float(self._o("threshold"))
        by_item = dict(zip(live, scored))
        out = []
        for i, resp in enumerate(responses):
            if i not in by_item:
                out.append(self._not_applicable())
                continue
            spans, lp_ctx, lp_null = by_item[i]
            gain = token_gain(lp_ctx, lp_null, lam)
            sents = []
            for j, s in enumerate(split_sentences(resp or "")):
                toks = [t for t, (a, b) in enumerate(spans[:len(gain)]) if b > s.start and a < s.end]
                if not toks:  # past max_response_tokens
                    sents.append({"index": j, "start": s.start, "end": s.end, "text": s.text,
                                  "checked": False, "missing": [], "support": []})
                    continue
                x = sum(gain[t] for t in toks) / len(toks)
                score = 1.0 / (1.0 + math.exp(-(x - center) / scale))
                sents.append({"index": j, "start": s.start, "end": s.end, "text": s.text,
                              "checked": True, "score": round(score, 6),
                              "mean_logprob_gain": round(x, 4), "support": [],
                              "missing": [] if score >= thr else
                              _surprising(resp, spans, toks, gain, lp_ctx)})
            res = _aggregate(sents, thr, self.name, {"model": self._ref(), "null_weight": lam})
            if len(spans) >= int(self._o("max_response_tokens")):
                res.details["note"] = f"only the first {len(spans)} tokens were scored"
            out.append(self._finish(res))
        return out


def _surprising(text: str, spans, toks: list[int], gain: list[float], lp_ctx: list[float],
                k: int = 2) -> list[dict[str, Any]]:
    """The k words whose tokens the context made least likely (what a reader should check)."""
    words = []
    for t in sorted(toks, key=lambda t: gain[t])[:k]:
        a, b = spans[t]
        while a < b and text[a].isspace():  # byte-level BPE tokens carry their leading space
            a += 1
        while a > 0 and not text[a - 1].isspace():
            a -= 1
        while b < len(text) and (text[b].isalnum() or text[b] in "'-"):
            b += 1
        w = text[a:b].strip(" .,;:!?\"()")
        if w and all(w != x["text"] for x in words):
            start = text.index(w, a)
            words.append({"start": start, "end": start + len(w), "text": w,
                          "p": round(math.exp(lp_ctx[t]), 4), "why": "unlikely given the context"})
    return words


def calibrate(pairs: list[dict[str, Any]], settings: dict[str, Any] | None = None) -> dict[str, float]:
    """Fit center / scale (logistic regression of faithful vs hallucinated on the mean token
    score of whole answers). Use the tuning pairs only."""
    from sklearn.linear_model import LogisticRegression

    judge = LikelihoodFaithfulness(settings or {})
    lam = float(judge._o("null_weight"))
    xs, ys = [], []
    for side, label in (("faithful", 1), ("hallucinated", 0)):
        for _, a, b in judge.token_scores([p["context"] for p in pairs], [p[side] for p in pairs]):
            xs.append([sum(token_gain(a, b, lam)) / max(1, len(a))])
            ys.append(label)
    lr = LogisticRegression(C=1e6).fit(xs, ys)
    w, b0 = float(lr.coef_[0][0]), float(lr.intercept_[0])
    return {"center": round(-b0 / w, 3), "scale": round(1.0 / w, 3)}


def _main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    from .factcc import REPO, load_pairs

    ap = argparse.ArgumentParser(prog="python -m backend.judges.likelihood")
    ap.add_argument("--calibrate", nargs="?", const=str(REPO / "assets/judge_eval/dev_pairs.jsonl"),
                    metavar="PAIRS", help="fit center/scale on tuning pairs (default: dev_pairs)")
    a = ap.parse_args(argv)
    if a.calibrate:
        print(json.dumps(calibrate(load_pairs(a.calibrate))))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
