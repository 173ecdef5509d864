"""Offline text helpers shared by the judges: sentence spans, tokens, content words, key tokens.

Nothing here downloads anything. NLTK's *code* is used (Punkt algorithm, Porter stemmer), never
its data packages (punkt / punkt_tab / stopwords are not on disk and must not be fetched).
"""
from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass

# --- sentence splitting --------------------------------------------------------------------------

# Punkt normally learns its abbreviation list from the downloadable "punkt" model. Untrained Punkt
# (same algorithm, empty parameters) plus this hand-written list of common English abbreviations
# behaves close enough for judging, with no data file.
ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof st jr sr co inc ltd corp vs etc e.g i.e cf al fig no vol approx dept est "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri sat sun "
    "a.m p.m u.s u.k u.n e.u ph.d b.a m.a gen col lt sgt capt gov sen rep rev mt ft".split()
)


@functools.lru_cache(maxsize=1)
def punkt_tokenizer():
    """An untrained Punkt sentence tokenizer with our abbreviation list (no NLTK data needed)."""
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    params = PunktParameters()
    params.abbrev_types = set(ABBREVIATIONS)
    return PunktSentenceTokenizer(params)


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


def word_tokenize(text: str) -> list[str]:
    """Treebank word tokens after offline Punkt sentence splitting (what nltk.word_tokenize does,
    minus its punkt_tab data lookup)."""
    from nltk.tokenize import NLTKWordTokenizer

    wt = NLTKWordTokenizer()
    return [t for s, e in punkt_tokenizer().span_tokenize(text) for t in wt.tokenize(text[s:e])]


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

MONTHS = frozenset(
    "january february march april may june july august september october november december".split()
)

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
    sent_start = True
    last_end = 0
    for m in _TOKEN_RE.finditer(text):
        surface = m.group(0)
        gap = text[last_end:m.start()]
        if re.search(r"[!?:;\n\u2022]|^\s*[-*]", gap) or (
                "." in gap and not (out and out[-1].text.lower() in ABBREVIATIONS)):
            sent_start = True
        last_end = m.end()
        low = surface.lower().replace("\u2019", "'")
        if low.endswith("'s"):
            low = low[:-2]
        if surface[0].isdigit():
            norm, kind = _norm_number(surface), "number"
        elif low in NUMBER_WORDS:
            norm, kind = NUMBER_WORDS[low], "number"
        elif low in MONTHS and surface[0].isupper():  # "march"/"may" lowercase are not dates
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


def norm_set(text: str) -> set[str]:
    return {t.norm for t in tokenize(text)}


# --- SQuAD-style normalisation (for token F1) --------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCT = set(string.punctuation)


def squad_normalize(s: str) -> str:
    s = s.lower()
    s = "".join(ch for ch in s if ch not in _PUNCT)
    s = _ARTICLES.sub(" ", s)
    return " ".join(s.split())
