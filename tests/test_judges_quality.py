"""Quality bar for the offline judges, on invented pairs.

* faithfulness: a faithful answer must outscore a hallucinated one (wrong number, date, name,
  cause or detail) about the same context in >= 90 % of pairs, for faith_lexical and faith_minilm;
* ifeval: a response that obeys a verifiable instruction must outscore one that breaks it, always.
"""
from __future__ import annotations

import os

import pytest

from backend.judges import IFEvalJudge, LexicalFaithfulness, MiniLMFaithfulness
from backend.records import Record

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CONTEXTS = {
    "bridge": (
        "The Harlow Bridge over the river Tess was opened in 1958 by Mayor Edith Crane. It cost "
        "4.2 million pounds and took three years to build. Construction was delayed in 1956 "
        "because of a strike by steel workers. The bridge is 640 metres long and carries about "
        "18,000 vehicles a day."
    ),
    "snail": (
        "In March 2011, biologist Tomas Varga at the University of Lund described a new species "
        "of freshwater snail, Radix lundensis. The snail was found in only two lakes in southern "
        "Sweden. Varga estimated the total population at fewer than 5,000 individuals. The "
        "species is threatened mainly by agricultural runoff, which lowers the oxygen level of "
        "the lakes."
    ),
    "pies": (
        "Brightwell Foods was founded in 1987 by the siblings Nora and Felix Abbot in Leeds. The "
        "company sells frozen vegetable pies. In 2019 it had 320 employees and revenue of 48 "
        "million pounds. The company moved its factory to Hull in 2015 because the Leeds site "
        "was too small."
    ),
    "marathon": (
        "The 2014 Coastal Marathon was won by Kenyan runner Ruth Chebet in 2 hours 24 minutes. "
        "The race was moved from April to October that year because of roadworks on the "
        "seafront. About 9,500 runners finished the course. The men's race was won by Daniel "
        "Osei of Ghana."
    ),
    "school": (
        "The village school in Aldmere closed in 1974 after the number of pupils fell to eleven. "
        "It had been built in 1881 with money from the landowner Henry Fairfax. The building was "
        "later turned into a library, which opened in 1979."
    ),
    "trial": (
        "A trial at Westbrook Hospital tested the drug Corvalin on 240 patients with high blood "
        "pressure. After twelve weeks, average systolic pressure fell by 14 mmHg in the drug "
        "group and by 3 mmHg in the placebo group. Six patients stopped taking the drug because "
        "of headaches. The trial was led by Dr. Priya Nair."
    ),
    "editor": (
        "Version 3.0 of the Quillon text editor was released on 14 June 2022. The update added a "
        "plugin system and dark mode. The lead developer, Sara Lind, said the release had been "
        "postponed by two months because of a security audit."
    ),
    "ferry": (
        "The ferry service between Port Elin and the island of Marra was suspended for nine days "
        "in January 2020 because the only ferry, the MV Gannet, needed engine repairs. Islanders "
        "received food supplies by helicopter. The council later bought a second vessel for 2.8 "
        "million euros."
    ),
}

# (context, kind, faithful, hallucinated)
PAIRS = [
    ("bridge", "number", "The bridge is 640 metres long.", "The bridge is 460 metres long."),
    ("bridge", "date", "It was opened in 1958.", "It was opened in 1985."),
    ("bridge", "name", "Mayor Edith Crane opened the bridge.", "Mayor Edith Stone opened the bridge."),
    ("bridge", "cause", "Building work was held up in 1956 by a strike of steel workers.",
     "Building work was held up in 1956 because of heavy flooding."),
    ("bridge", "number", "The Harlow Bridge opened in 1958. It is 640 metres long and carries "
     "around 18,000 vehicles each day.", "The Harlow Bridge opened in 1958. It is 640 metres long "
     "and carries around 81,000 vehicles each day."),
    ("snail", "number", "The snail lives in just two lakes in southern Sweden.",
     "The snail lives in seven lakes in southern Sweden."),
    ("snail", "date", "The species was described in March 2011.",
     "The species was described in March 2001."),
    ("snail", "name", "It was described by Tomas Varga of the University of Lund.",
     "It was described by Peter Holm of the University of Lund."),
    ("snail", "cause", "Its main threat is agricultural runoff, which reduces the oxygen in the lakes.",
     "Its main threat is overfishing by local anglers."),
    ("snail", "number", "Varga thinks fewer than 5,000 of the snails exist.",
     "Varga thinks fewer than 50,000 of the snails exist."),
    ("pies", "date", "Brightwell Foods was founded by Nora and Felix Abbot in 1987.",
     "Brightwell Foods was founded by Nora and Felix Abbot in 1978."),
    ("pies", "number", "In 2019 the company employed 320 people.",
     "In 2019 the company employed 230 people."),
    ("pies", "cause", "The factory moved to Hull in 2015 because the Leeds site was too small.",
     "The factory moved to Hull in 2015 because taxes were lower there."),
    ("pies", "name", "The company was started in Leeds.", "The company was started in Manchester."),
    ("pies", "detail", "The company sells frozen vegetable pies.", "The company sells frozen fish pies."),
    ("pies", "cause", "Brightwell Foods, founded in Leeds in 1987, makes frozen vegetable pies. It "
     "relocated its factory to Hull in 2015 as the Leeds site had become too small.",
     "Brightwell Foods, founded in Leeds in 1987, makes frozen vegetable pies. It relocated its "
     "factory to Hull in 2015 after a fire destroyed the Leeds site."),
    ("marathon", "name", "Ruth Chebet won the 2014 race.", "Mary Keitany won the 2014 race."),
    ("marathon", "number", "Her winning time was 2 hours 24 minutes.",
     "Her winning time was 2 hours 42 minutes."),
    ("marathon", "cause", "The race was moved to October because of roadworks on the seafront.",
     "The race was moved to October because of a heat wave."),
    ("marathon", "name", "Daniel Osei of Ghana won the men's race.",
     "Daniel Osei of Nigeria won the men's race."),
    ("marathon", "number", "Roughly 9,500 runners completed the course.",
     "Roughly 12,000 runners completed the course."),
    ("school", "date", "The school closed in 1974.", "The school closed in 1947."),
    ("school", "cause", "It closed because the number of pupils dropped to eleven.",
     "It closed because the roof had collapsed."),
    ("school", "name", "The landowner Henry Fairfax paid for the building.",
     "The landowner Henry Morton paid for the building."),
    ("school", "date", "The library opened in 1979.", "The library opened in 1997."),
    ("school", "date", "The school was built in 1881 and closed in 1974, when only eleven pupils "
     "were left.", "The school was built in 1818 and closed in 1974, when only eleven pupils were left."),
    ("trial", "number", "The trial enrolled 240 patients.", "The trial enrolled 420 patients."),
    ("trial", "cause", "Six patients stopped the drug because of headaches.",
     "Six patients stopped the drug because of nausea."),
    ("trial", "name", "Dr. Priya Nair led the trial.", "Dr. Anil Mehta led the trial."),
    ("trial", "number", "With Corvalin, systolic pressure fell by 14 mmHg on average.",
     "With Corvalin, systolic pressure fell by 24 mmHg on average."),
    ("trial", "number", "The trial ran for twelve weeks.", "The trial ran for eight weeks."),
    ("editor", "date", "Quillon 3.0 came out on 14 June 2022.", "Quillon 3.0 came out on 14 July 2022."),
    ("editor", "cause", "The release was postponed because of a security audit.",
     "The release was postponed because the lead developer fell ill."),
    ("editor", "name", "Sara Lind is the lead developer.", "Anna Berg is the lead developer."),
    ("editor", "number", "It was delayed by two months.", "It was delayed by six months."),
    ("editor", "detail", "The update added a plugin system and dark mode.",
     "The update added a plugin system and cloud sync."),
    ("ferry", "number", "The ferry service was suspended for nine days.",
     "The ferry service was suspended for three weeks."),
    ("ferry", "cause", "The service stopped because the MV Gannet needed engine repairs.",
     "The service stopped because of a violent winter storm."),
    ("ferry", "name", "The ferry connects Port Elin with the island of Marra.",
     "The ferry connects Port Elin with the island of Skye."),
    ("ferry", "number", "The council paid 2.8 million euros for a second ship.",
     "The council paid 8.2 million euros for a second ship."),
    ("ferry", "detail", "During the suspension, food reached the islanders by helicopter.",
     "During the suspension, food reached the islanders by fishing boat."),
    # harder: the faithful answer paraphrases freely, the hallucinated one copies the context
    # except for one wrong fact
    ("school", "cause", "Too few children were left, just eleven, so the Aldmere school shut its "
     "doors in 1974.", "The village school in Aldmere closed in 1974 after the number of pupils "
     "fell because a new motorway cut the village in two."),
    ("bridge", "cause", "A steel workers' walkout held up construction in 1956.",
     "Construction was delayed in 1956 because of a shortage of steel."),
    ("marathon", "name", "A Kenyan woman, Ruth Chebet, took the 2014 title; the men's winner was "
     "Ghana's Daniel Osei.", "The 2014 Coastal Marathon was won by Kenyan runner Ruth Chebet in 2 "
     "hours 24 minutes, and the men's race by Daniel Osei of Kenya."),
    ("trial", "number", "Of the patients on Corvalin, six quit due to headaches.",
     "A trial at Westbrook Hospital tested the drug Corvalin on 240 patients, and sixteen stopped "
     "taking it because of headaches."),
    ("ferry", "cause", "Engine repairs on the MV Gannet, the island's only ferry, halted crossings "
     "for nine days in January 2020.", "The ferry service between Port Elin and Marra was "
     "suspended for nine days in January 2020 because the crew went on strike."),
    ("editor", "date", "Sara Lind's team shipped Quillon 3.0 in mid-June 2022, two months late "
     "after a security audit.", "Version 3.0 of the Quillon text editor was released on 14 June "
     "2021 with a plugin system and dark mode."),
    ("snail", "name", "Lund University's Tomas Varga named the snail Radix lundensis in 2011.",
     "In March 2011, biologist Tomas Varga at the University of Uppsala described a new species "
     "of freshwater snail."),
    ("pies", "number", "Brightwell had a staff of 320 and took in 48 million pounds in 2019.",
     "In 2019 it had 320 employees and revenue of 84 million pounds."),
]


def _pair_records():
    recs, faithful, halluc = [], [], []
    for n, (ctx, _kind, f, h) in enumerate(PAIRS):
        recs.append(Record(id=f"p{n}", kind="qa_abstractive", prompt="Answer from the passage.",
                           context=CONTEXTS[ctx]))
        faithful.append(f)
        halluc.append(h)
    return recs, faithful, halluc


def _pair_accuracy(judge):
    recs, faithful, halluc = _pair_records()
    fs = judge.score_batch(recs, faithful)
    hs = judge.score_batch(recs, halluc)
    wins = [f.value > h.value for f, h in zip(fs, hs)]
    failed = [(PAIRS[i][1], PAIRS[i][2], round(fs[i].value, 3), round(hs[i].value, 3))
              for i, w in enumerate(wins) if not w]
    return sum(wins) / len(wins), failed, fs, hs


def test_enough_pairs():
    assert len(PAIRS) >= 30
    assert {k for _, k, _, _ in PAIRS} >= {"number", "date", "name", "cause"}


@pytest.mark.parametrize("cls", [LexicalFaithfulness, MiniLMFaithfulness])
def test_faithful_beats_hallucinated(cls, minilm_warm):
    judge = cls({})
    acc, failed, fs, hs = _pair_accuracy(judge)
    mean_f = sum(r.value for r in fs) / len(fs)
    mean_h = sum(r.value for r in hs) / len(hs)
    print(f"\n{judge.name}: faithful > hallucinated in {acc:.1%} of {len(PAIRS)} pairs "
          f"(mean faithful {mean_f:.3f}, hallucinated {mean_h:.3f}); failures: {failed}")
    assert acc >= 0.9, failed
    # the hallucinated sentence is flagged as unsupported in most pairs
    flagged = sum(bool(h.details["unsupported"]) for h in hs) / len(hs)
    assert flagged >= 0.8, flagged


@pytest.fixture(scope="module")
def minilm_warm():
    # load the encoder once for the module (cached per process by the judge)
    MiniLMFaithfulness({}).score_batch(
        [Record(id="w", kind="qa_abstractive", prompt="q", context="A warm-up sentence.")], ["Warm up."])


# ---------------------------------------------------------------------------------------------------
# IFEval: (instruction id, kwargs, obeys, breaks)

IF_PAIRS = [
    ("punctuation:no_comma", {}, "I like apples and pears.", "I like apples, pears and plums."),
    ("change_case:english_lowercase", {}, "this answer is written in lower case letters only.",
     "This answer is written in Mixed Case letters."),
    ("change_case:english_capital", {}, "THIS ANSWER IS WRITTEN IN CAPITAL LETTERS ONLY.",
     "This answer is written in normal letters."),
    ("startend:quotation", {}, '"The bridge opened in 1958."', "The bridge opened in 1958."),
    ("startend:end_checker", {"end_phrase": "Is there anything else I can help with?"},
     "The bridge opened in 1958. Is there anything else I can help with?",
     "The bridge opened in 1958. Anything else?"),
    ("detectable_format:title", {}, "<<The Harlow Bridge>>\nIt opened in 1958.",
     "The Harlow Bridge\nIt opened in 1958."),
    ("detectable_format:number_bullet_lists", {"num_bullets": 3},
     "* first point\n* second point\n* third point", "* first point\n* second point"),
    ("detectable_format:json_format", {}, '{"opened": 1958, "length_m": 640}',
     "opened: 1958, length: 640 m"),
    ("length_constraints:number_words", {"relation": "less than", "num_words": 10},
     "The bridge opened in 1958.",
     "The bridge over the river Tess was opened in 1958 by the mayor of the town."),
    ("length_constraints:number_sentences", {"relation": "at least", "num_sentences": 3},
     "The bridge opened in 1958. Mr. Crane was not there. It is 640 m long.",
     "The bridge opened in 1958. It is long."),
    ("change_case:capital_word_frequency", {"capital_frequency": 2, "capital_relation": "at least"},
     "The BRIDGE opened in 1958 and is VERY long.", "The bridge opened in 1958 and is very long."),
    ("keywords:existence", {"keywords": ["river", "bridge"]},
     "The bridge crosses the river Tess.", "It crosses the Tess."),
    ("keywords:forbidden_words", {"forbidden_words": ["storm"]},
     "Work was delayed by a strike.", "Work was delayed by a storm."),
    ("keywords:frequency", {"keyword": "data", "frequency": 3, "relation": "at least"},
     "Data beats opinion; data is cheap; data is everywhere.", "Data beats opinion."),
    ("keywords:letter_frequency", {"letter": "z", "let_frequency": 2, "let_relation": "at least"},
     "The zebra dozed.", "The horse slept."),
    ("detectable_content:postscript", {"postscript_marker": "P.S."},
     "The bridge opened in 1958.\n\nP.S. It is 640 m long.", "The bridge opened in 1958."),
    ("detectable_content:number_placeholders", {"num_placeholders": 2},
     "Dear [name], your parcel goes to [address].", "Dear customer, your parcel is on its way."),
    ("detectable_format:number_highlighted_sections", {"num_highlights": 2},
     "The *opening* was in 1958 and the *length* is 640 m.", "The opening was in 1958."),
    ("detectable_format:multiple_sections", {"section_spliter": "Section", "num_sections": 2},
     "Section 1\nHistory of the bridge.\nSection 2\nIts size.", "History of the bridge and its size."),
    ("length_constraints:number_paragraphs", {"num_paragraphs": 2},
     "The bridge opened in 1958.\n***\nIt is 640 metres long.", "The bridge opened in 1958. It is long."),
    ("language:response_language", {"language": "de"},
     "Die Brücke wurde im Jahr 1958 eröffnet und ist sechshundertvierzig Meter lang.",
     "The bridge was opened in 1958 and is six hundred and forty metres long."),
    ("combination:two_responses", {},
     "The bridge opened in 1958.\n******\nIt was opened in 1958 by the mayor.",
     "The bridge opened in 1958."),
    ("combination:repeat_prompt", {"prompt_to_repeat": "When did the bridge open?"},
     "When did the bridge open? It opened in 1958.", "It opened in 1958."),
    ("detectable_format:constrained_response", {}, "My answer is yes.", "Probably, I think so."),
    ("length_constraints:nth_paragraph_first_word",
     {"num_paragraphs": 2, "nth_paragraph": 2, "first_word": "however"},
     "The bridge opened in 1958.\n\nHowever, work had been delayed.",
     "The bridge opened in 1958.\n\nWork had been delayed."),
]


def _if_records():
    return [Record(id=f"if{n}", kind="instruction", prompt="When did the bridge open?",
                   instruction_id_list=[iid], kwargs=[kw])
            for n, (iid, kw, _o, _b) in enumerate(IF_PAIRS)]


def test_ifeval_obey_beats_break_every_pair():
    assert len(IF_PAIRS) >= 15 and len({p[0] for p in IF_PAIRS}) >= 15
    judge = IFEvalJudge({})
    recs = _if_records()
    obey = judge.score_batch(recs, [p[2] for p in IF_PAIRS])
    brk = judge.score_batch(recs, [p[3] for p in IF_PAIRS])
    bad = [(p[0], o.details, b.details) for p, o, b in zip(IF_PAIRS, obey, brk)
           if not (o.value is not None and b.value is not None and o.value > b.value)]
    acc = 1 - len(bad) / len(IF_PAIRS)
    print(f"\nifeval: obey > break in {acc:.0%} of {len(IF_PAIRS)} pairs")
    assert not bad
    assert all(o.value == 1.0 and b.value == 0.0 for o, b in zip(obey, brk))
