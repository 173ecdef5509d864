#!/usr/bin/env python3
"""Deterministic generator for the ReSet Studio demo data sets.

Every fact in these files is FICTIONAL and was written for this project: the towns,
companies, people, ships, festivals, bridges, species and laboratories do not exist.
The tables below are hand-authored; incidental numbers and minor names are drawn from
``random.Random`` instances seeded with fixed strings, so every run writes the same bytes.

Run:  python assets/demo/build_demo_data.py      (pure standard library)

Writes, next to this script (train file + held-out eval file for each data set):
  squad_qa(.jsonl|_eval.jsonl)              extractive QA, SQuAD shape
  abstractive_qa(.jsonl|_eval.jsonl)        abstractive QA {id, passage, query, answer}
  news_summaries(.jsonl|_eval.jsonl)        summarization, CNN/DailyMail shape
  alpaca_instructions(.jsonl|_eval.jsonl)   open-ended instructions, Alpaca shape
  ifeval_instructions(.jsonl|_eval.jsonl)   verifiable-constraint instructions, IFEval shape

The script validates everything it writes (offsets, uniqueness, train/eval separation,
lengths, and every IFEval constraint of every reference response) and raises on failure.
"""
from __future__ import annotations

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent

MONTHS = ["January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
FIRST = ["Alva", "Bertil", "Clemence", "Dorian", "Elowen", "Fabian", "Greta", "Hollis",
         "Isolde", "Joren", "Kestrel", "Linnea", "Magnus", "Noor", "Oriel", "Perrin",
         "Quinta", "Rowan", "Saskia", "Tobiah", "Ulla", "Vesna", "Wendel", "Yara"]
LAST = ["Abernathy", "Brisco", "Coldridge", "Dunnock", "Eskildsen", "Farrant", "Gilroy",
        "Hartwell", "Ingleby", "Jessop", "Kindred", "Lamplugh", "Moravec", "Nettleford",
        "Ormsby", "Pinchbeck", "Quarrie", "Rushworth", "Stallard", "Tregarthen",
        "Underhill", "Vantongeren", "Whitlock", "Yardley"]


def person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def num(n: int) -> str:
    return f"{n:,}"


def nwords(text: str) -> int:
    return len(text.split())


class Domain:
    """One table of fictional entities plus the templates that turn a row into items."""

    def __init__(self, key, fields, rows, derive, contexts, questions, abstractive, news):
        self.key = key
        self.rows = [dict(zip(fields, r)) for r in rows]
        for i, row in enumerate(self.rows):
            rng = random.Random(f"reset-demo/{key}/{i}")
            derive(row, rng)
        self.contexts = contexts          # list of templates (at least 2)
        self.questions = questions        # list of (question template, answer field)
        self.abstractive = abstractive    # list of (query template, answer template)
        self.news = news                  # list of (article template, highlights template)


DOMAINS: list[Domain] = []
N_TRAIN_ROWS = 5   # rows 0..4 of every table feed train files; rows 5..6 only eval files


# ---------------------------------------------------------------- towns
def _towns(r, rng):
    r["founded"] = rng.randint(1180, 1640)
    r["rename_year"] = r["founded"] + rng.randint(70, 260)
    r["hall_year"] = min(r["rename_year"] + rng.randint(15, 120), 1936)
    r["population"] = num(rng.randrange(2400, 38000, 10))
    r["gap"] = r["rename_year"] - r["founded"]
    r["months"] = rng.randint(3, 14)
    r["cost"] = num(rng.randrange(18000, 95000, 500))
    r["restorer"] = person(rng)
    r["councillor"] = person(rng)
    r["curator"] = person(rng)
    r["weekday"] = rng.choice(WEEKDAYS)
    r["month"] = rng.choice(MONTHS)
    r["objects"] = num(rng.randrange(300, 4200, 10))
    r["museum_cost"] = num(rng.randrange(40000, 260000, 1000))
    r["volunteer_months"] = rng.randint(4, 20)


DOMAINS.append(Domain(
    "town",
    ["name", "region", "river", "founder", "old_name", "rename_cause", "industry", "clockmaker"],
    [
        ("Marrowick", "Tessel", "Ambry", "Odile Brannock", "Saltmere",
         "the salt springs had dried up and the old name no longer fitted", "boat building", "Ivo Penhale"),
        ("Quillhaven", "Dunmore", "Fenn", "Cassius Orlo", "Hollowford",
         "a flood destroyed the old ford and a stone crossing replaced it", "wool dyeing", "Berit Sallow"),
        ("Estervale", "Corrin", "Lathe", "Margit Voss", "Pell's Landing",
         "the Pell family sold the harbour to the town council", "cider pressing", "Tomas Ekwall"),
        ("Brindlecombe", "Harrow Moor", "Skell", "Ansel Trewin", "Nettle Cross",
         "merchants complained that the old name sounded like a roadside inn", "copper mining", "Juno Aldgate"),
        ("Vellinport", "Saros", "Orm", "Leda Fairhurst", "Gannet Bay",
         "sailors kept confusing it with another Gannet Bay further north", "herring fishing", "Osric Pellow"),
        ("Tamsworth Edge", "Rill", "Calder", "Hugo Menck", "Ashgrove",
         "a great fire burned the ash woods and left no grove to speak of", "glassmaking", "Petra Lund"),
        ("Oskarden", "Brume", "Weir", "Ilse Karrow", "Stonemill",
         "the old stone mill closed and the townspeople wanted a fresh start", "paper making", "Rafe Dunmore"),
    ],
    _towns,
    [
        "{name} is a market town in the {region} valley, on the east bank of the River {river}. "
        "It was founded in {founded} by {founder} and was called {old_name} until {rename_year}, "
        "when it was renamed because {rename_cause}. About {population} people live there today, "
        "and the main trade is {industry}. The town hall, finished in {hall_year}, carries a clock "
        "built by {clockmaker}.",
        "Until {rename_year} the town of {name} went by the name {old_name}. Records show that "
        "{founder} founded the settlement in {founded} beside the River {river}, in what is now the "
        "{region} district. The name changed because {rename_cause}. Most of its {population} "
        "residents earn a living from {industry}, and visitors come to see the town hall clock, "
        "which {clockmaker} built for the hall completed in {hall_year}.",
    ],
    [
        ("Who founded {name}?", "founder"),
        ("What was {name} called before {rename_year}?", "old_name"),
        ("How many people live in {name} today?", "population"),
        ("Who built the clock on the town hall of {name}?", "clockmaker"),
        ("On which river does {name} stand?", "river"),
        ("In which year was the town hall of {name} finished?", "hall_year"),
        ("What is the main trade of {name}?", "industry"),
    ],
    [
        ("How many years passed between the founding of {name} and its renaming, and why was it renamed?",
         "{gap} years passed: it was renamed in {rename_year} because {rename_cause}."),
        ("What was {name} originally called, and who founded it?",
         "It was first called {old_name}, and {founder} founded it in {founded}."),
        ("Was the town hall clock of {name} older or newer than the town's present name?",
         "Newer: the name dates from {rename_year}, while the hall with {clockmaker}'s clock was finished in {hall_year}."),
    ],
    [
        ("The clock on the town hall of {name} is running again after a repair that took {months} "
         "months and cost {cost} crowns. The clock was built by {clockmaker} for the hall, which was "
         "finished in {hall_year}. It stopped last winter when ice cracked one of its brass wheels. A "
         "workshop run by {restorer} made a new wheel by hand, using drawings kept in the town archive. "
         "Councillor {councillor} said the {population} residents had missed hearing the bell every hour. "
         "Volunteers will wind the clock every Sunday morning, and the tower will open to visitors on "
         "the first weekend of each month.",
         "The {name} town hall clock runs again after a {months}-month repair.\n"
         "Ice had cracked a brass wheel, and {restorer}'s workshop made a new one.\n"
         "The tower will open to visitors once a month."),
        ("A small museum telling how {old_name} became {name} opened on {weekday} in the old customs "
         "house by the River {river}. The town was founded in {founded} by {founder} and took its "
         "present name in {rename_year}, because {rename_cause}. The museum holds {objects} objects, "
         "including maps, tools used in {industry} and letters from the first town council. Curator "
         "{curator} said entry would be free for residents until the end of {month}. The project cost "
         "{museum_cost} crowns, most of it raised by a lottery run by local schools. Volunteers spent "
         "{volunteer_months} months cleaning and labelling the collection.",
         "A museum on how {old_name} became {name} has opened in the old customs house.\n"
         "It holds {objects} objects and cost {museum_cost} crowns, mostly raised by a school lottery.\n"
         "Entry is free for residents until the end of {month}."),
    ],
))


# ---------------------------------------------------------------- companies
def _companies(r, rng):
    r["founded"] = rng.randint(1852, 1994)
    r["move_year"] = r["founded"] + rng.randint(6, 28)
    r["factory_year"] = r["move_year"] + rng.randint(2, 20)
    r["employees"] = num(rng.randrange(60, 2400, 5))
    r["gap"] = r["move_year"] - r["founded"]
    r["weekday"] = rng.choice(WEEKDAYS)
    r["new_jobs"] = rng.randrange(40, 320, 5)
    r["growth"] = rng.randint(12, 48)
    r["month"] = rng.choice(MONTHS)
    r["build_months"] = rng.randint(8, 22)
    r["mayor"] = person(rng)
    r["units"] = num(rng.randrange(1200, 36000, 100))
    r["shifts"] = rng.choice(["two", "three"])


DOMAINS.append(Domain(
    "company",
    ["name", "city", "founder", "product", "moved_to", "move_cause", "ceo", "factory_town"],
    [
        ("Kettlewing Instruments", "Brennick", "Sefa Orlund", "brass barometers", "Ostrelle",
         "its old workshop flooded twice in one spring", "Dario Venn", "Lowmere"),
        ("Pallister Bright", "Carrow", "Agnes Pallister", "solar lanterns", "Hythe Marran",
         "the port at Carrow was too shallow for container ships", "Okon Ravel", "Sandle Cross"),
        ("Muirfield Oat Company", "Dunlaith", "Rory Muirfield", "oat biscuits", "Caskby",
         "a fire destroyed the bakery on Mill Lane", "Helka Strand", "Ferrow"),
        ("Tidewright Marine", "Solvik", "Ines Tidewright", "electric ferry engines", "Kessel Point",
         "the firm needed a deep-water basin to test its engines", "Jonah Aberle", "Varn"),
        ("Greyloom Textiles", "Ambleford", "Pieter Greyloom", "fire-resistant wool", "Nethercote",
         "rents in Ambleford tripled after the railway arrived", "Sunniva Lark", "Ochre Bay"),
        ("Corvane Optics", "Tallis", "Mireille Corvane", "lighthouse lenses", "Eastholm",
         "its glass furnaces needed cheaper gas", "Bram Okafor", "Silverdene"),
        ("Fennick Paper Works", "Rowanby", "Edmund Fennick", "recycled notebooks", "Larchmont Vale",
         "the river at Rowanby became too polluted for papermaking", "Yusra Bell", "Cloverdale"),
    ],
    _companies,
    [
        "{name} was founded in {founded} by {founder} in the city of {city}. The firm first became "
        "known for its {product}. In {move_year} it moved its headquarters to {moved_to} because "
        "{move_cause}. The company now employs {employees} people and is led by chief executive "
        "{ceo}. Its largest factory, opened in {factory_year}, is in the town of {factory_town}.",
        "Few people outside {city} knew the name {founder} in {founded}, the year the workshop that "
        "became {name} opened its doors. Today the company, headed by {ceo}, has {employees} staff and "
        "sells {product} in many countries. Its headquarters has been in {moved_to} since {move_year}; "
        "the move happened because {move_cause}. Most production takes place at a factory in "
        "{factory_town} that opened in {factory_year}.",
    ],
    [
        ("Who founded {name}?", "founder"),
        ("What product did {name} first become known for?", "product"),
        ("Where is the headquarters of {name}?", "moved_to"),
        ("How many people does {name} employ?", "employees"),
        ("Who is the chief executive of {name}?", "ceo"),
        ("In which town is the largest factory of {name}?", "factory_town"),
        ("In which year did the {factory_town} factory open?", "factory_year"),
    ],
    [
        ("Why did {name} move its headquarters, and how long after its founding did that happen?",
         "It moved to {moved_to} in {move_year}, {gap} years after its founding, because {move_cause}."),
        ("Who started {name}, and who runs it now?",
         "{founder} started it in {city} in {founded}; today chief executive {ceo} leads the company."),
        ("What came first, the move to {moved_to} or the factory in {factory_town}?",
         "The move came first, in {move_year}; the {factory_town} factory opened later, in {factory_year}."),
    ],
    [
        ("{name}, the {city}-born maker of {product}, said on {weekday} that it will add {new_jobs} "
         "jobs at its factory in {factory_town}. The factory opened in {factory_year} and now runs "
         "{shifts} shifts a day. Chief executive {ceo} said orders had risen by {growth} percent over "
         "the past year, mostly from schools and hospitals. Building work on a new hall will start in "
         "{month} and should take about {build_months} months. The mayor of {factory_town}, {mayor}, "
         "welcomed the news and noted that the company already employs {employees} people across all "
         "its sites. Unions asked that half of the new posts go to local apprentices.",
         "{name} will add {new_jobs} jobs at its factory in {factory_town}.\n"
         "Orders rose {growth} percent in a year, chief executive {ceo} said.\n"
         "Work on a new hall starts in {month} and should take about {build_months} months."),
        ("{name} has recalled {units} of its {product} after tests found a loose part in units from "
         "one batch. No injuries have been reported. The company, which is based in {moved_to} and "
         "employs {employees} people, said the faulty part came from an outside supplier. Customers can "
         "return the items to any shop for a full refund or a free repair. Chief executive {ceo} "
         "apologised and said every item would now be checked twice before leaving the factory in "
         "{factory_town}. It is the first recall in the history of the firm, which {founder} founded "
         "in {founded}.",
         "{name} has recalled {units} {product} after tests found a loose part in one batch.\n"
         "No injuries were reported, and customers can get a refund or a free repair.\n"
         "The faulty part came from an outside supplier."),
    ],
))


# ---------------------------------------------------------------- people
def _people(r, rng):
    r["surname"] = r["name"].split()[-1]
    r["born"] = rng.randint(1821, 1948)
    r["age"] = rng.randint(24, 41)
    r["discovery_year"] = r["born"] + r["age"]
    r["award_gap"] = rng.randint(3, 14)
    r["award_year"] = r["discovery_year"] + r["award_gap"]
    r["switch_year"] = r["award_year"] + rng.randint(1, 8)
    r["notebooks"] = rng.randint(14, 96)
    r["weekday"] = rng.choice(WEEKDAYS)
    r["visitors"] = num(rng.randrange(900, 6000, 50))
    r["curator"] = person(rng)
    r["pages"] = num(rng.randrange(1800, 9800, 20))
    r["scan_months"] = rng.randint(5, 26)
    r["archivist"] = person(rng)


DOMAINS.append(Domain(
    "person",
    ["name", "birthplace", "field", "discovery", "mentor", "award", "later_work", "switch_cause", "institution"],
    [
        ("Elspeth Marrow", "Kelby", "astronomy", "a faint comet that now bears her name", "Hollis Crane",
         "the Ardent Medal", "designing telescope lenses", "cold nights at the observatory had damaged her eyesight",
         "Westfell Observatory"),
        ("Tobias Quenell", "Arnhale", "botany", "a blue-flowered orchid on Mount Sable", "Rosalind Fay",
         "the Verdance Prize", "breeding drought-proof wheat", "three dry summers had ruined the harvests in his home valley",
         "Arnhale Botanic Garden"),
        ("Nadira Solveig", "Port Ember", "geology", "a seam of blue quartz beneath Lake Orrin", "Caspar Wilde",
         "the Hammerstone Award", "studying earthquakes", "a tremor had wrecked her field station",
         "the Ember Institute of Earth Science"),
        ("Jasper Ollerton", "Fairholme", "chemistry", "a dye that glows under moonlight", "Ida Brenner",
         "the Copperleaf Medal", "making safer paints for schools", "a pupil at his old school fell ill from lead paint",
         "the Fairholme Chemical Society"),
        ("Maren Astley", "Skerry Head", "marine biology", "a shrimp that lives inside sea sponges", "Lionel Pask",
         "the Tidemark Prize", "protecting kelp forests", "a heat wave killed most of the kelp near her station",
         "Skerry Marine Station"),
        ("Idris Calloway", "Lowther", "engineering", "a shortcut for calculating the loads on arched bridges",
         "Greta Haldane", "the Lodestar Medal", "designing flood barriers",
         "a storm surge flooded his home town of Lowther", "Lowther Polytechnic"),
        ("Vera Kestrin", "Alderholt", "medicine", "a blood test for marsh fever", "Anton Rusk",
         "the Sable Cross", "training village nurses", "most marsh villages had no doctor at all",
         "Alderholt Infirmary"),
    ],
    _people,
    [
        "{name} was born in {birthplace} in {born} and trained in {field} under {mentor}. In "
        "{discovery_year}, while working at {institution}, {surname} discovered {discovery}. The "
        "finding earned {surname} {award} in {award_year}. From {switch_year} onward {surname} turned to "
        "{later_work}, because {switch_cause}. Colleagues remember the careful notebooks, {notebooks} of "
        "which survive in the library of {institution}.",
        "Born in {born} in the town of {birthplace}, {name} studied {field} with {mentor} before "
        "joining {institution}. The discovery of {discovery} in {discovery_year} made {surname} famous, "
        "and {award} followed in {award_year}. Yet from {switch_year} {surname} spent most working hours "
        "on {later_work}; friends said the reason was simple: {switch_cause}. Today {notebooks} of "
        "{surname}'s notebooks are kept at {institution}.",
    ],
    [
        ("Where was {name} born?", "birthplace"),
        ("Under whom did {name} train?", "mentor"),
        ("What did {name} discover in {discovery_year}?", "discovery"),
        ("Which award did {name} receive in {award_year}?", "award"),
        ("How many of {surname}'s notebooks survive?", "notebooks"),
        ("What did {surname} turn to after {switch_year}?", "later_work"),
        ("In which year was {name} born?", "born"),
    ],
    [
        ("How old was {name} at the time of the famous discovery, and what was it?",
         "{surname} was about {age} years old when discovering {discovery} in {discovery_year}."),
        ("Why did {surname} change focus to {later_work}?",
         "{surname} changed focus in {switch_year} because {switch_cause}."),
        ("How long after the discovery did {surname} receive {award}?",
         "The award came in {award_year}, {award_gap} years after the discovery made in {discovery_year}."),
    ],
    [
        ("A museum dedicated to {name} opened on {weekday} in {birthplace}, the town where {surname} "
         "was born in {born}. The museum shows how {surname}, who trained in {field} under {mentor}, "
         "discovered {discovery} in {discovery_year}. A copy of {award}, awarded in {award_year}, sits "
         "beside letters that explain why {surname} later turned to {later_work}. Curator {curator} "
         "expects about {visitors} visitors in the first year. Entry is free for school groups, and the "
         "museum will lend a travelling exhibition to {institution} next spring.",
         "A museum about {name} has opened in {birthplace}, where {surname} was born in {born}.\n"
         "It tells how {surname} discovered {discovery} in {discovery_year}.\n"
         "About {visitors} visitors are expected in the first year."),
        ("{institution} has put all {notebooks} surviving notebooks of {name} online. Archivist "
         "{archivist} said the team scanned {pages} pages over {scan_months} months. The notebooks cover "
         "the years after {surname} trained with {mentor}, including the weeks in {discovery_year} that "
         "led to the discovery of {discovery}. They also record the reason for the later move into "
         "{later_work}: {switch_cause}. Readers can search the pages by date, and volunteers are "
         "typing out the handwriting so that the text can be read aloud by screen readers.",
         "{institution} has put {notebooks} notebooks of {name} online.\n"
         "Archivist {archivist} said {pages} pages were scanned over {scan_months} months.\n"
         "Volunteers are typing out the handwriting for screen readers."),
    ],
))

# ---------------------------------------------------------------- ships
def _ships(r, rng):
    r["launched"] = rng.randint(1862, 1988)
    r["age"] = rng.randint(4, 38)
    r["incident_year"] = r["launched"] + r["age"]
    r["length"] = rng.randint(18, 96)
    r["crew"] = rng.randint(4, 48)
    r["aboard"] = r["crew"] + rng.randint(0, 140)
    r["repair_months"] = rng.randint(2, 15)
    r["inspector"] = person(rng)
    r["weekday"] = rng.choice(WEEKDAYS)
    r["month"] = rng.choice(MONTHS)
    r["day"] = rng.randint(2, 28)
    r["service_years"] = rng.randint(30, 70)
    r["buyer"] = person(rng)
    r["price"] = num(rng.randrange(90000, 900000, 5000))


DOMAINS.append(Domain(
    "ship",
    ["name", "kind", "yard", "captain", "route_from", "route_to", "incident_place", "incident_cause", "rescuer"],
    [
        ("Merrow Queen", "passenger ferry", "Caldwick Yard", "Ines Albery", "Port Ember", "Skerry Head",
         "Gullstone Reef", "a compass failure in thick fog", "the lifeboat Gannet"),
        ("Alder Star", "cargo schooner", "Varn Shipworks", "Tobin Falk", "Ostrelle", "Dunlaith",
         "the Harl Sandbanks", "a broken rudder chain", "the fishing boat Kittiwake"),
        ("Silver Heron", "mail steamer", "Rowanby Docks", "Agathe Morrow", "Vellinport", "the Isle of Tarne",
         "Blackrock Point", "a boiler fire in the engine room", "the coastguard cutter Vigil"),
        ("Northern Lantern", "research vessel", "Solvik Marine Yard", "Henrik Daal", "Solvik", "the Frost Banks",
         "Cape Orrin", "pack ice that closed in overnight", "the icebreaker Ironhide"),
        ("Wren of Tallis", "river barge", "Tallis Boatworks", "Ruth Okonjo", "Tallis", "Eastholm",
         "Mill Weir Lock", "a sudden drop in the river level after a dry summer", "a team of lock keepers"),
        ("Coral Bell", "pilot cutter", "Marran Slipway", "Ezra Penhallow", "Hythe Marran", "Saltmere Roads",
         "the Whistling Shoal", "an anchor cable that snapped in a gale", "the tug Stalwart"),
        ("Morning Thistle", "fishing trawler", "Dunmore Yard", "Kaia Lindrell", "Quillhaven",
         "the Grey Deep fishing grounds", "Selkie Rocks", "nets that tangled in the propeller",
         "the trawler Brave Annie"),
    ],
    _ships,
    [
        "The {name} is a {kind} built at {yard} and launched in {launched}. She is {length} metres long "
        "and normally sails between {route_from} and {route_to} with a crew of {crew}. In {incident_year}, "
        "under Captain {captain}, she ran aground on {incident_place} after {incident_cause}. All {aboard} "
        "people on board were taken off safely by {rescuer}, and the ship returned to service "
        "{repair_months} months later.",
        "Captain {captain} was in command of the {name} on the night in {incident_year} when the ship "
        "struck {incident_place}. The cause was {incident_cause}. The {kind}, launched at {yard} in "
        "{launched} and {length} metres in length, carried {aboard} people that night, including a crew "
        "of {crew}. Everyone was rescued by {rescuer}. After {repair_months} months of repairs she went "
        "back to her usual route from {route_from} to {route_to}.",
    ],
    [
        ("Where was the {name} built?", "yard"),
        ("How long is the {name}?", "length"),
        ("Who was the captain of the {name} in {incident_year}?", "captain"),
        ("Where did the {name} run aground?", "incident_place"),
        ("Who rescued the people on board the {name}?", "rescuer"),
        ("What caused the {name} to run aground?", "incident_cause"),
        ("How many people were on board the {name} when she ran aground?", "aboard"),
    ],
    [
        ("Why did the {name} run aground, and was anyone lost?",
         "She hit {incident_place} because of {incident_cause}, but all {aboard} people aboard were rescued."),
        ("How old was the {name} when she ran aground?",
         "She was {age} years old: launched in {launched}, she ran aground in {incident_year}."),
        ("What happened to the {name} after the people on board were rescued?",
         "She was repaired for {repair_months} months and then returned to her route between {route_from} and {route_to}."),
    ],
    [
        ("An inquiry into the grounding of the {kind} {name} on {incident_place} in {incident_year} has "
         "found that {incident_cause} was the main cause. Inspector {inspector} said Captain {captain} "
         "acted correctly once the danger was clear and praised {rescuer} for taking all {aboard} people "
         "off the ship without injury. The report asks the owners to fit a second independent warning "
         "system on all ships on the {route_from} to {route_to} route. The {name}, built at {yard} in "
         "{launched}, spent {repair_months} months under repair before returning to service.",
         "An inquiry blames {incident_cause} for the grounding of the {name}.\n"
         "All {aboard} people aboard were rescued without injury."),
        ("The {name} has been sold to {buyer} for {price} crowns and will be turned into a floating "
         "classroom. The {length}-metre {kind} was launched at {yard} in {launched} and spent decades on "
         "the route between {route_from} and {route_to}. Older sailors still remember her grounding on "
         "{incident_place}, when {rescuer} brought everyone ashore safely. The new owner plans to keep her "
         "original wheelhouse and to open the ship to school groups from {month}. The sale was agreed on "
         "{weekday} after the previous owners said repair costs had become too high.",
         "The {name} has been sold to {buyer} for {price} crowns.\n"
         "The {kind} will become a floating classroom open to school groups from {month}.\n"
         "Her former owners said repair costs had become too high."),
    ],
))


# ---------------------------------------------------------------- festivals
def _festivals(r, rng):
    r["first_year"] = rng.randint(1891, 1996)
    r["gap"] = rng.randint(6, 26)
    r["cancel_year"] = r["first_year"] + r["gap"]
    r["month"] = rng.choice(MONTHS[3:10])
    r["attendance"] = num(rng.randrange(1200, 48000, 100))
    r["stalls"] = rng.randint(40, 260)
    r["organiser"] = person(rng)
    r["price"] = rng.randint(4, 18)
    r["old_price"] = r["price"] - rng.randint(1, 3)
    r["trains"] = rng.randint(2, 9)
    r["weekday"] = rng.choice(WEEKDAYS)


DOMAINS.append(Domain(
    "festival",
    ["name", "town", "founder", "celebrates", "cancel_cause", "venue", "highlight"],
    [
        ("Lantern Tide Festival", "Vellinport", "Maudie Crane", "the return of the herring boats",
         "a storm tore down the harbour stage", "the Old Quay", "a parade of paper lantern boats"),
        ("Festival of the Copper Bell", "Brindlecombe", "Osric Hale", "the opening of the first copper mine",
         "the mine flooded and the town was in mourning", "Bell Square", "a bell-ringing contest"),
        ("Juniper Moon Fair", "Oskarden", "Liesel Amsel", "the end of the paper-making season",
         "an outbreak of measles closed all public gatherings", "Millpond Meadow", "a night market lit by candles"),
        ("Saltmere Kite Days", "Marrowick", "Piet Vanloo", "the windy weeks of early spring",
         "the council could not pay for insurance", "Dune Common", "a kite race over the sand"),
        ("Gathering of Looms", "Ambleford", "Honor Vale", "the weaving guild of the town",
         "the guildhall was being rebuilt after a fire", "the Guildhall", "a weaving race between teams of four"),
        ("Orchard Wake", "Estervale", "Barnaby Skeel", "the first pressing of cider apples",
         "a late frost destroyed most of the blossom", "Pell's Orchard", "an apple-carrying relay"),
        ("Glassblowers' Night", "Tamsworth Edge", "Ysolde Marr", "the glassmaking craft of the town",
         "a gas shortage shut down every furnace", "the Furnace Yard", "a live glassblowing contest"),
    ],
    _festivals,
    [
        "The {name} has been held in {town} every {month} since {first_year}, when {founder} organised "
        "it to celebrate {celebrates}. Its best-known event is {highlight}, held at {venue}. Last year the "
        "festival drew {attendance} visitors, and {stalls} traders set up stalls. It has been cancelled "
        "only once, in {cancel_year}, because {cancel_cause}.",
        "Each {month}, {town} fills up for the {name}. The festival began in {first_year} as the idea of "
        "{founder}, who wanted to mark {celebrates}. Crowds gather at {venue} for {highlight}, the event "
        "most visitors come for. Organisers counted {attendance} visitors last year. The only year without "
        "a festival was {cancel_year}, when it was called off because {cancel_cause}.",
    ],
    [
        ("In which town is the {name} held?", "town"),
        ("Who organised the first {name}?", "founder"),
        ("How many visitors did the {name} draw last year?", "attendance"),
        ("What is the best-known event of the {name}?", "highlight"),
        ("Where is the main event of the {name} held?", "venue"),
        ("In which year was the {name} cancelled?", "cancel_year"),
        ("In which month is the {name} held?", "month"),
    ],
    [
        ("Why was the {name} cancelled in {cancel_year}?",
         "It was called off that year because {cancel_cause}; it is the only cancellation in its history."),
        ("How long had the {name} been running when it was cancelled?",
         "It had run for {gap} years, from {first_year} until the cancellation in {cancel_year}."),
        ("What does the {name} celebrate, and who started it?",
         "{founder} started it in {first_year} to celebrate {celebrates}."),
    ],
    [
        ("The {name} in {town} drew {attendance} visitors this {month}, organisers said on {weekday}. "
         "Crowds packed {venue} for {highlight}, and {stalls} traders sold food and crafts. Extra trains "
         "ran every {trains} minutes from the nearby towns. Organiser {organiser} said the festival, first "
         "held in {first_year} by {founder} to celebrate {celebrates}, had never looked healthier. Tickets "
         "for next year will cost {price} crowns, up from {old_price} crowns, to pay for more toilets and a "
         "first-aid tent near the main stage.",
         "The {name} in {town} drew {attendance} visitors this {month}.\n"
         "Crowds gathered at {venue} for {highlight}.\n"
         "Tickets will rise to {price} crowns next year to pay for more facilities."),
        ("Organisers of the {name} have moved this year's {highlight} away from {venue} after safety "
         "checks found the ground there was too soft. The event will take place on the playing fields at "
         "the edge of {town} instead. Organiser {organiser} said the change was a precaution and that the "
         "rest of the programme would not change. The festival began in {first_year} and has been cancelled "
         "only once, in {cancel_year}, when {cancel_cause}. About {stalls} traders have booked stalls, "
         "and tickets cost {price} crowns.",
         "The {highlight} at the {name} will move away from {venue}.\n"
         "Safety checks found the ground there was too soft.\n"
         "The rest of the programme in {town} will not change."),
    ],
))


# ---------------------------------------------------------------- bridges
def _bridges(r, rng):
    r["opened"] = rng.randint(1781, 1978)
    r["age"] = rng.randint(18, 40)
    r["closed_year"] = r["opened"] + r["age"]
    r["closed_gap"] = rng.randint(1, 4)
    r["reopened_year"] = r["closed_year"] + r["closed_gap"]
    r["length"] = rng.randint(42, 880)
    r["spans"] = rng.randint(2, 11)
    r["crossings"] = num(rng.randrange(900, 28000, 50))
    r["cost"] = num(rng.randrange(200000, 4000000, 10000))
    r["weekday"] = rng.choice(WEEKDAYS)
    r["weeks"] = rng.randint(3, 16)
    r["spokesperson"] = person(rng)
    r["lamps"] = rng.randint(24, 140)
    r["paint"] = num(rng.randrange(800, 9000, 50))


DOMAINS.append(Domain(
    "bridge",
    ["name", "river", "engineer", "material", "town_a", "town_b", "closure_cause", "contractor"],
    [
        ("Kestrel Bridge", "Ambry", "Cordelia Wynne", "wrought iron", "Marrowick", "Fennby",
         "cracks were found in two of its iron pins", "Holt & Barrow"),
        ("Ninefold Bridge", "Fenn", "Absalom Greer", "sandstone", "Quillhaven", "Larkhill",
         "a runaway barge struck one of its piers", "Greywater Builders"),
        ("Lantern Span", "Calder", "Rosamund Keel", "riveted steel", "Tamsworth Edge", "Ashby Cross",
         "floodwater washed away the soil under a pier", "Mardle Construction"),
        ("Old Weir Crossing", "Weir", "Fenwick Osei", "oak and granite", "Oskarden", "Mossgate",
         "beetles had eaten into the oak beams", "Tarrant Joinery"),
        ("Sable Viaduct", "Lathe", "Ingrid Thorsby", "red brick", "Estervale", "Corrin Junction",
         "a landslide shifted its northern end", "Pellow & Sons"),
        ("Cinder Footbridge", "Skell", "Mateo Arkwright", "cast aluminium", "Brindlecombe", "Copper Row",
         "strong winds made the deck sway dangerously", "Skell Metalworks"),
        ("Heronsgate Bridge", "Orm", "Beatrix Lowe", "reinforced concrete", "Vellinport", "Heronsgate",
         "salt spray rusted the steel bars inside the concrete", "Orm Civil Works"),
    ],
    _bridges,
    [
        "The {name} crosses the River {river} between {town_a} and {town_b}. Designed by the engineer "
        "{engineer}, it was built of {material} and opened in {opened}. It is {length} metres long and "
        "has {spans} spans. The bridge was closed in {closed_year} because {closure_cause}, and it "
        "reopened in {reopened_year} after repairs by {contractor}. About {crossings} crossings are made "
        "on it each day.",
        "Engineer {engineer} designed the {name}, a {length}-metre crossing of the River {river} that "
        "links {town_a} with {town_b}. Built of {material} with {spans} spans, it opened to traffic in "
        "{opened}. In {closed_year} it had to shut because {closure_cause}. The firm {contractor} carried "
        "out the repairs, and the bridge reopened in {reopened_year}. Counts show about {crossings} "
        "crossings a day.",
    ],
    [
        ("Who designed the {name}?", "engineer"),
        ("What is the {name} built of?", "material"),
        ("How long is the {name}?", "length"),
        ("Which river does the {name} cross?", "river"),
        ("Who repaired the {name}?", "contractor"),
        ("In which year did the {name} open?", "opened"),
        ("How many crossings are made on the {name} each day?", "crossings"),
    ],
    [
        ("Why was the {name} closed, and for how long?",
         "It closed in {closed_year} because {closure_cause}, and stayed shut about {closed_gap} years until {reopened_year}."),
        ("How old was the {name} when it had to close?",
         "It had been open for {age} years, from {opened} until the closure in {closed_year}."),
        ("Who was involved in building and later fixing the {name}?",
         "{engineer} designed it, and {contractor} carried out the repairs before it reopened in {reopened_year}."),
    ],
    [
        ("The {name} between {town_a} and {town_b} will close to traffic for {weeks} weeks from next "
         "{weekday} so that its {lamps} lamps can be replaced and the deck repainted. Painters expect to "
         "use about {paint} litres of paint. The {material} bridge, designed by {engineer} and opened in "
         "{opened}, normally carries about {crossings} crossings a day. Council spokesperson "
         "{spokesperson} said a free shuttle bus would run between the two towns while the work goes on. "
         "The last major closure, in {closed_year}, happened because {closure_cause}.",
         "The {name} will close for {weeks} weeks to replace its {lamps} lamps and repaint the deck.\n"
         "A free shuttle bus will link {town_a} and {town_b} during the work.\n"
         "The bridge normally carries about {crossings} crossings a day."),
        ("Engineers have completed a full survey of the {name} and found it safe for at least another "
         "forty years. The survey checked all {spans} spans of the {length}-metre crossing over the River "
         "{river}. The bridge was closed in {closed_year} because {closure_cause}, and repairs by "
         "{contractor} were finished in {reopened_year}. Spokesperson {spokesperson} said the survey cost "
         "{cost} crowns and will be repeated every ten years. Small cracks in the railings will be filled "
         "this summer without closing the road.",
         "A survey has found the {name} safe for at least another forty years.\n"
         "All {spans} spans were checked, at a cost of {cost} crowns.\n"
         "Small cracks in the railings will be fixed without closing the road."),
    ],
))


# ---------------------------------------------------------------- species
def _species(r, rng):
    r["protected_year"] = rng.randint(1998, 2021)
    r["gap"] = rng.randint(25, 160)
    r["year"] = r["protected_year"] - r["gap"]
    r["decline"] = rng.randint(35, 88)
    r["population"] = num(rng.randrange(300, 24000, 10))
    r["new_count"] = rng.randint(12, 240)
    r["ranger"] = person(rng)
    r["weekday"] = rng.choice(WEEKDAYS)
    r["survey_year"] = r["protected_year"] + rng.randint(1, 3)
    r["rise"] = rng.randint(8, 40)
    r["volunteers"] = rng.randint(20, 180)


DOMAINS.append(Domain(
    "species",
    ["common", "latin", "discoverer", "place", "size", "diet", "decline_cause", "habitat"],
    [
        ("ember-tailed vole", "Ardomys flammicauda", "Hester Quayle", "the Sable Hills", "11",
         "grass seeds and beetles", "farmers ploughed up the hillside meadows", "dry hillside meadows"),
        ("glass-winged moth", "Vitrella nocturna", "Osgood Pym", "the Fenn marshes", "4",
         "nectar from night-blooming reeds", "the marshes were drained for farmland", "reed beds"),
        ("Tarne spotted newt", "Tarnotriton maculatus", "Ilona Vasko", "the Isle of Tarne", "9",
         "water snails and midge larvae", "a fungus spread from imported pond fish", "cold upland ponds"),
        ("copper-throated finch", "Aurispiza cuprea", "Walter Brisk", "the Brume Forest", "14",
         "pine seeds", "a beetle outbreak killed many of the old pines", "old pine forest"),
        ("Orrin cave shrimp", "Orrinocaris caeca", "Delphine Aske", "the caves beneath Lake Orrin", "3",
         "bacteria growing on the cave walls", "tourist boats stirred up mud in the caves", "flooded limestone caves"),
        ("dusk-singing tree frog", "Vesperhyla cantans", "Amadou Feld", "the Calder gorge", "5",
         "ants and small spiders", "a dam raised the river and flooded the gorge floor", "wet gorge forest"),
        ("silver-banded eel", "Argentanguilla fasciata", "Petra Holmgren", "the mouth of the River Orm", "72",
         "shrimp and small fish", "a new weir blocked its route upriver to breed", "tidal river mouths"),
    ],
    _species,
    [
        "The {common} ({latin}) was first described in {year} by the naturalist {discoverer}, who found "
        "it in {place}. Adults reach about {size} centimetres in length and feed on {diet}. The species "
        "lives in {habitat}. Its numbers fell by {decline} percent in the twenty years before it was "
        "protected in {protected_year}, mainly because {decline_cause}. Surveys now count roughly "
        "{population} adults.",
        "Naturalist {discoverer} collected the first known {common} in {place} in {year}, and it was "
        "given the scientific name {latin}. It grows to about {size} centimetres and eats {diet}, living "
        "mostly in {habitat}. Because {decline_cause}, its population dropped by {decline} percent, and "
        "the species gained legal protection in {protected_year}. The latest count found about "
        "{population} adults.",
    ],
    [
        ("Who first described the {common}?", "discoverer"),
        ("Where was the {common} first found?", "place"),
        ("What does the {common} eat?", "diet"),
        ("What is the scientific name of the {common}?", "latin"),
        ("By how many percent did the numbers of the {common} fall?", "decline"),
        ("How many adult {common}s do surveys now count?", "population"),
        ("In which year was the {common} protected?", "protected_year"),
    ],
    [
        ("Why did the {common} decline?",
         "Its numbers fell by {decline} percent mainly because {decline_cause}."),
        ("How long after it was first described did the {common} receive protection?",
         "It was protected in {protected_year}, {gap} years after {discoverer} described it in {year}."),
        ("Describe where the {common} lives and what it eats.",
         "It lives in {habitat} and feeds on {diet}, growing to about {size} centimetres."),
    ],
    [
        ("Rangers have found {new_count} {common}s in a valley where the species had not been seen for "
         "decades. Ranger {ranger} said the animals were spotted on {weekday} during a survey run with "
         "{volunteers} volunteers. The {common}, first described by {discoverer} in {year}, lives in "
         "{habitat} and feeds on {diet}. Its numbers fell by {decline} percent before it was protected in "
         "{protected_year}, mainly because {decline_cause}. The exact place will be kept secret to protect "
         "the group from collectors.",
         "Rangers have found {new_count} {common}s in a valley where none had been seen for decades.\n"
         "The survey was carried out with {volunteers} volunteers.\n"
         "The exact place will be kept secret to protect the animals from collectors."),
        ("A survey in {survey_year} shows that the number of {common}s has risen by {rise} percent since "
         "the species was protected in {protected_year}. There are now roughly {population} adults. The "
         "animal, known to scientists as {latin}, had declined by {decline} percent because "
         "{decline_cause}. Ranger {ranger} said the recovery was slow but steady, and thanked the "
         "{volunteers} volunteers who helped with the count. Most of the increase was recorded in "
         "{habitat}, where volunteers also cleared litter and planted native shrubs. Further surveys "
         "are planned every two years.",
         "The number of {common}s has risen {rise} percent since protection began in {protected_year}.\n"
         "About {population} adults now remain.\n"
         "Surveys will continue every two years."),
    ],
))


# ---------------------------------------------------------------- laboratories
def _labs(r, rng):
    r["founded"] = rng.randint(1902, 1996)
    r["gap"] = rng.randint(6, 24)
    r["result_year"] = r["founded"] + r["gap"]
    r["move_year"] = r["result_year"] + rng.randint(2, 11)
    r["staff"] = rng.randint(12, 420)
    r["budget"] = rng.randint(3, 88)
    r["grant"] = rng.randint(2, 30)
    r["years"] = rng.randint(3, 7)
    r["new_director"] = person(rng)
    r["weekday"] = rng.choice(WEEKDAYS)
    r["new_posts"] = rng.randint(6, 40)
    r["trial_sites"] = rng.randint(3, 25)


DOMAINS.append(Domain(
    "lab",
    ["name", "city", "director", "focus", "result", "relocate_cause", "new_site"],
    [
        ("Halden Cryogenics Laboratory", "Solvik", "Ansgar Thorne", "materials that work at very low temperatures",
         "a wire that carries current without loss at minus 180 degrees",
         "vibrations from a new railway line spoiled its measurements", "Frostmoor"),
        ("Bellweather Soil Institute", "Corrin", "Nkechi Farrow", "soil health",
         "a clover mix that doubled the number of worms in clay fields", "the lease on its building ran out",
         "Greyhollow Farm"),
        ("Quarry Lane Optics Lab", "Tallis", "Solene Marchetti", "lenses and mirrors",
         "a mirror coating that reflects nearly all visible light",
         "dust from a nearby quarry settled on the equipment", "Clearwater Park"),
        ("Ravensmoor Water Research Centre", "Ravensmoor", "Desmond Achterberg", "clean drinking water",
         "a sand filter that removes arsenic from well water",
         "the river next to the lab kept flooding the basement", "Highmoor Ridge"),
        ("Fieldfare Seed Bank", "Dunlaith", "Ottilie Graves", "storing the seeds of rare crops",
         "a way to revive barley seeds that had been stored for ninety years",
         "a leaking roof let damp reach the seed vaults", "Stonecrop Hill"),
        ("Larkspur Sound Laboratory", "Ambleford", "Callum Hartigan", "the acoustics of buildings",
         "a wall panel that halves traffic noise",
         "aircraft from a new airfield drowned out its recordings", "Willowmere"),
        ("Pelham Battery Lab", "Carrow", "Yeva Rostand", "rechargeable batteries",
         "a salt-water battery that lasts ten years", "it outgrew its two rented floors",
         "Marrowfield Business Park"),
    ],
    _labs,
    [
        "The {name} in {city} was set up in {founded} to study {focus}. Under its director, {director}, "
        "a team of {staff} researchers reported in {result_year} that they had developed {result}. The "
        "laboratory moved to a new site at {new_site} in {move_year} because {relocate_cause}. Its yearly "
        "budget is about {budget} million crowns.",
        "Founded in {city} in {founded}, the {name} has one subject: {focus}. Its best-known result came "
        "in {result_year}, when {director} and a staff of {staff} announced {result}. Since {move_year} "
        "the lab has worked from {new_site}; it left its first home because {relocate_cause}. The lab "
        "spends roughly {budget} million crowns a year.",
    ],
    [
        ("Who is the director of the {name}?", "director"),
        ("How many researchers work at the {name}?", "staff"),
        ("What did the {name} report in {result_year}?", "result"),
        ("Where has the {name} been based since {move_year}?", "new_site"),
        ("What does the {name} study?", "focus"),
        ("In which city was the {name} founded?", "city"),
        ("How large is the yearly budget of the {name}?", "budget"),
    ],
    [
        ("Why did the {name} move to {new_site}?",
         "It moved there in {move_year} because {relocate_cause}."),
        ("How many years after its founding did the {name} report its best-known result?",
         "The result came in {result_year}, {gap} years after the lab was set up in {founded}."),
        ("What is the {name} known for, and who leads it?",
         "Led by {director}, it is known for {result}."),
    ],
    [
        ("The {name} has won a grant of {grant} million crowns to test {result} outside the laboratory. "
         "Director {director} said on {weekday} that the money will pay for trials at {trial_sites} sites "
         "over the next {years} years. The laboratory, founded in {founded} to study {focus}, first "
         "reported the result in {result_year}. It now has {staff} researchers at {new_site}, where it "
         "moved in {move_year} because {relocate_cause}. The grant will also create {new_posts} new posts "
         "for young scientists.",
         "The {name} won a {grant} million crown grant to test {result}.\n"
         "Trials will run at {trial_sites} sites over {years} years."),
        ("{director} will step down as director of the {name} at the end of the year, the laboratory "
         "announced on {weekday}. {new_director} will take over. {director} led the team of {staff} "
         "researchers that reported {result} in {result_year}, and oversaw the move to {new_site} in "
         "{move_year} after {relocate_cause}. The laboratory, set up in {city} in {founded}, has a yearly "
         "budget of about {budget} million crowns. {new_director} said the work on {focus} would continue "
         "without change.",
         "{director} will step down as director of the {name} at the end of the year.\n"
         "{new_director} will take over and plans no change to the work."),
    ],
))

# ================================================================ grounded data sets
def title_of(row):
    return row.get("name") or row["common"].capitalize()


def build_grounded():
    out = {k: {"train": [], "eval": []} for k in ("squad", "abstractive", "news")}
    for dom in DOMAINS:
        for i, row in enumerate(dom.rows):
            split = "train" if i < N_TRAIN_ROWS else "eval"
            # extractive QA: up to 3 questions whose answer occurs exactly once in the context
            ctx = dom.contexts[i % len(dom.contexts)].format(**row)
            picked = 0
            nq = len(dom.questions)
            for k in range(nq):
                q_t, field = dom.questions[(2 * i + k) % nq]
                ans = str(row[field])
                if ctx.count(ans) != 1:
                    continue
                out["squad"][split].append({
                    "id": f"{dom.key}-{i}-sq{picked}",
                    "title": title_of(row),
                    "context": ctx,
                    "question": q_t.format(**row),
                    "answers": {"text": [ans], "answer_start": [ctx.index(ans)]},
                })
                picked += 1
                if picked == 3:
                    break
            # abstractive QA: the other context wording, 2 of the 3 query types
            passage = dom.contexts[(i + 1) % len(dom.contexts)].format(**row)
            for k in range(2):
                q_t, a_t = dom.abstractive[(i + k) % len(dom.abstractive)]
                out["abstractive"][split].append({
                    "id": f"{dom.key}-{i}-aq{k}",
                    "passage": passage,
                    "query": q_t.format(**row),
                    "answer": a_t.format(**row),
                })
            # news: one article per template
            for k, (art_t, hl_t) in enumerate(dom.news):
                out["news"][split].append({
                    "id": f"{dom.key}-{i}-news{k}",
                    "article": art_t.format(**row),
                    "highlights": hl_t.format(**row),
                })
    return out


# ================================================================ Alpaca-style instructions
ANIMALS = [  # (subject, class, reason)
    ("A dolphin", "mammal", "It breathes air through a blowhole and feeds its young on milk, even though it spends its whole life in the sea."),
    ("A penguin", "bird", "It has feathers and a beak and lays eggs, although its wings work as flippers for swimming instead of flying."),
    ("A bat", "mammal", "It is the only mammal that can truly fly, and mothers nurse their pups with milk."),
    ("A salamander", "amphibian", "It has moist skin and usually lays its eggs in water, where the young grow before moving onto land."),
    ("A shark", "fish", "It breathes through gills and swims with fins, and its skeleton is made of cartilage rather than bone."),
    ("A tortoise", "reptile", "It has dry scaly skin, breathes with lungs and lays eggs with tough shells on land."),
    ("A ladybird", "insect", "It has six legs, a body in three parts and a pair of hard wing cases that protect its flying wings."),
    ("An ostrich", "bird", "It cannot fly, but it has feathers and a beak and lays the largest eggs of any living bird."),
    ("A seahorse", "fish", "It breathes with gills and has fins, even though it swims upright and the father carries the eggs."),
    ("A platypus", "mammal", "It is unusual because it lays eggs, but it has fur and feeds its young on milk like other mammals."),
    ("A chameleon", "reptile", "It has scaly skin and lays eggs, and it can change colour to signal its mood."),
    ("A frog", "amphibian", "It starts life as a tadpole that breathes through gills in water and later grows lungs and legs."),
]
FORMAL = [  # (informal input, formal output)
    ("hey, can u send me the report by tomorrow? thx",
     "Hello, could you please send me the report by tomorrow? Thank you very much for your help with this."),
    ("sorry i missed the meeting, my bus broke down lol",
     "I apologise for missing the meeting. Unfortunately, my bus broke down on the way and I could not arrive in time."),
    ("the new software is kinda buggy and nobody likes it",
     "The new software contains a number of errors, and the feedback from staff has so far been largely negative."),
    ("gonna be late, traffic is nuts",
     "I will be arriving late this morning because the traffic is unusually heavy. I apologise for the inconvenience."),
    ("we need more cash for the project or it's dead",
     "The project will require additional funding; without it, we will not be able to continue the work as planned."),
    ("your order's coming next week, hang tight",
     "Your order is scheduled to arrive next week. Thank you for your patience while we prepare it for delivery."),
    ("can't make it friday, can we do monday?",
     "Unfortunately, I am not available on Friday. Would it be possible to move our appointment to Monday instead?"),
    ("the printer on floor 2 is broken again, somebody fix it pls",
     "The printer on the second floor is out of order again. Could someone from the technical team please arrange a repair?"),
    ("thanks a ton for the help yesterday, you're a lifesaver",
     "Thank you very much for your assistance yesterday. Your help made a real difference, and I am very grateful."),
    ("the party's cancelled cause of the storm",
     "Please note that the party has been cancelled because of the storm forecast. We will share a new date as soon as possible."),
]
TIPS = [  # (activity, three tips)
    ("sleeping better", ["Go to bed and wake up at the same time every day.", "Keep your bedroom dark, quiet and cool.", "Avoid screens and caffeine in the hour before bed."]),
    ("saving money on groceries", ["Plan your meals for the week and shop with a list.", "Compare the price per kilo rather than the price per pack.", "Cook larger batches and freeze portions for busy days."]),
    ("studying for an exam", ["Split the material into small topics and review one at a time.", "Test yourself with practice questions instead of only rereading notes.", "Take short breaks and sleep well the night before."]),
    ("keeping houseplants alive", ["Water only when the top layer of soil feels dry.", "Place each plant where it gets the amount of light it needs.", "Use pots with drainage holes so the roots do not rot."]),
    ("giving a short presentation", ["Open with one clear sentence that says what the talk is about.", "Practise out loud at least twice and time yourself.", "Use few words on your slides and speak to the audience, not the screen."]),
    ("starting to run", ["Begin with short runs mixed with walking breaks.", "Increase your weekly distance slowly, by about a tenth at most.", "Wear comfortable shoes and rest when something hurts."]),
    ("writing a clear email", ["Put the main request in the first two sentences.", "Use a specific subject line that tells the reader what to expect.", "Keep paragraphs short and end with the next step you need."]),
    ("reducing food waste at home", ["Check what is already in the fridge before you shop.", "Store leftovers in clear boxes so you remember to eat them.", "Turn soft vegetables into soup before they spoil."]),
    ("staying focused when working from home", ["Set up a fixed place that you use only for work.", "Plan the day in blocks and turn off notifications during each block.", "Take a short walk at lunch to reset your attention."]),
    ("packing for a weekend trip", ["Check the weather forecast before you choose clothes.", "Pick outfits that mix and match so you need fewer items.", "Keep chargers, tickets and medicine in one small bag."]),
    ("learning a new language", ["Practise a little every day rather than a lot once a week.", "Learn common phrases you will actually use in conversation.", "Listen to songs or podcasts in the language while you do chores."]),
    ("preparing for a job interview", ["Read about the organisation and its recent work.", "Prepare short stories that show how you solved real problems.", "Write down two or three questions to ask the interviewer."]),
    ("making new friends in a new city", ["Join a club or class built around something you enjoy.", "Say yes to invitations, even small ones, during the first months.", "Suggest a simple follow-up plan when you meet someone you like."]),
    ("cutting down on sugar", ["Swap sweet drinks for water or unsweetened tea.", "Read labels, because sugar hides in sauces and bread.", "Keep fruit or nuts nearby for when you want a snack."]),
]
EXPLAIN = [  # (thing, simple explanation)
    ("a budget", "A budget is a plan for your money. You write down what you expect to earn and decide in advance how much to spend on rent, food, fun and savings, so you do not run out before the month ends."),
    ("photosynthesis", "Photosynthesis is how plants make their own food. Their leaves take in sunlight, water and carbon dioxide from the air and turn them into sugar, releasing oxygen as a by-product."),
    ("a vaccine", "A vaccine is a safe way to teach your body to fight a disease. It shows your immune system a harmless piece or weakened form of a germ, so the body can react quickly if the real germ ever arrives."),
    ("compound interest", "Compound interest means you earn interest on your interest. Each year the interest is added to your savings, so the next year's interest is calculated on a bigger amount and the total grows faster over time."),
    ("a password manager", "A password manager is an app that remembers your passwords for you. It stores them in a locked vault, fills them in when you log in, and can create long random passwords, so you only need to remember one main password."),
    ("inflation", "Inflation is when prices in general rise over time. The same amount of money then buys less than before, so a loaf of bread that cost one coin last year might cost a little more this year."),
    ("a solar eclipse", "A solar eclipse happens when the Moon passes between the Earth and the Sun. The Moon blocks some or all of the sunlight, so the sky darkens for a few minutes in the places under its shadow."),
    ("a thermostat", "A thermostat is a switch that reacts to temperature. It measures how warm a room is and turns the heating or cooling on or off to keep the room close to the temperature you chose."),
    ("a cloud backup", "A cloud backup is a copy of your files stored on a company's computers over the internet. If your own device breaks or is lost, you can download the copy and get your photos and documents back."),
    ("a tide", "A tide is the regular rise and fall of the sea. The Moon's gravity pulls on the oceans, so most coasts see the water come in and go out about twice a day."),
    ("recycling", "Recycling means turning used materials into new products. Paper, glass, metal and some plastics are collected, cleaned and processed so factories can use them again instead of digging up or cutting down new raw materials."),
    ("a food chain", "A food chain shows who eats whom in nature. Plants make food from sunlight, plant eaters eat the plants, and meat eaters eat the plant eaters, so energy passes from one living thing to the next."),
    ("a credit score", "A credit score is a number that shows lenders how reliably you have repaid money in the past. Paying bills on time raises it, while missed payments lower it and can make borrowing harder or more expensive."),
    ("an echo", "An echo is a sound you hear again after it bounces off a hard surface such as a cliff or a wall. Because the sound travels there and back, the copy arrives a moment after the original."),
]
NOTES = [  # (instruction, note)
    ("Write a short note to a neighbour asking them to water your plants while you are away for a week.",
     "Hi Sam, I am away from Saturday to the following Sunday. Could you water the plants on my balcony every two days? The spare key is in the blue envelope I left with you. Thank you so much!"),
    ("Write a short note thanking a colleague for covering your shift.",
     "Dear Priya, thank you for covering my Tuesday shift at such short notice. It made a difficult week much easier. Please let me know whenever you need a swap, and I will gladly return the favour."),
    ("Write a short note to a teacher explaining that your child missed school because of a fever.",
     "Dear Mr Hale, my son Leo was absent on Thursday and Friday because he had a fever. He is well again now. Could you let us know which homework he should catch up on? Thank you, Anna Berg."),
    ("Write a short message to a landlord reporting a leaking kitchen tap.",
     "Dear Ms Okoro, the kitchen tap in flat 4 has started leaking steadily, even when it is fully closed. Could you arrange for a plumber to look at it this week? I am at home most mornings. Kind regards, Tom."),
    ("Write a short note congratulating a friend on a new job.",
     "Congratulations on the new job, Mia! All your hard work has paid off, and they are lucky to have you. Let us celebrate with dinner next weekend, my treat."),
    ("Write a short announcement telling your team that the office will be closed on Friday.",
     "Hello everyone, please note that the office will be closed this Friday while the heating system is replaced. Please work from home that day and keep your usual meetings online. Normal hours resume on Monday."),
    ("Write a short apology to a customer whose delivery arrived late.",
     "Dear Mr Lind, we are sorry that your order arrived three days later than promised. A problem at our warehouse delayed several parcels. As an apology, we have refunded your delivery fee. Thank you for your patience."),
    ("Write a short reminder to classmates about a group project meeting.",
     "Hi all, a quick reminder that we meet on Wednesday at four in the library, room two, to finish our project slides. Please bring your part of the research and a laptop if you have one."),
    ("Write a short thank-you note to a grandparent for a birthday present.",
     "Dear Grandma, thank you so much for the lovely scarf you knitted for my birthday. It is warm, soft and exactly my favourite shade of green. I wore it to school today. Lots of love, Ella."),
    ("Write a short message to a coach saying you will miss practice.",
     "Hi Coach, I am sorry but I cannot come to practice on Thursday because of a family event. I will do the running drills on my own and will be back for Saturday's match."),
]
BRAINSTORM = [  # (thing, four names, comment)
    ("a small bakery by the sea", ["Salt & Crumb", "The Harbour Oven", "Tidebread", "Morning Loaf"], "Salt & Crumb is short and memorable and hints at the sea air."),
    ("a cat adopted from a shelter", ["Pepper", "Biscuit", "Luna", "Captain Whiskers"], "Pepper suits a grey or speckled cat, while Captain Whiskers is fun for a confident one."),
    ("a community garden", ["Common Ground", "The Green Patch", "Neighbourly Roots", "Seed and Share"], "Common Ground works well because it suggests both soil and shared values."),
    ("a podcast about history", ["Dust and Dates", "Yesterday's News", "The Long Ago Hour", "Footnotes"], "Footnotes is short and hints at the small stories behind big events."),
    ("a hiking club", ["Trail Mix", "Boots and Views", "The Ridge Walkers", "Summit Sundays"], "Summit Sundays is catchy if the club usually meets at weekends."),
    ("a board game café", ["Roll and Sip", "The Meeple House", "Dice and Dough", "Game Table"], "Roll and Sip tells people at once that they can play and drink coffee."),
    ("a school newsletter", ["The Bell", "Corridor News", "The Lunchbox Times", "Class Notes"], "The Bell is simple and connects to the sound that starts every school day."),
    ("a robot vacuum cleaner", ["Dusty", "Sweepy", "Crumb Hunter", "Rover"], "Crumb Hunter is playful and describes exactly what the machine does."),
]
REVIEWS = [  # (review, label, explanation)
    ("The soup was hot, the bread was fresh and the staff remembered our names. We will be back!", "Positive", "The reviewer praises the food and the staff and says they plan to return."),
    ("The hotel room smelled of smoke and nobody answered the front desk phone all night.", "Negative", "The reviewer complains about the smell and the lack of service, with nothing good to say."),
    ("Great battery life, but the screen scratches far too easily.", "Mixed", "The reviewer likes the battery but is unhappy with how fragile the screen is."),
    ("Delivery took three weeks and the box arrived crushed. I want a refund.", "Negative", "The reviewer is unhappy with the slow delivery and damaged package and asks for their money back."),
    ("A gentle, funny film that my whole family enjoyed, from my grandfather to my six-year-old.", "Positive", "The reviewer says that everyone in the family, from the oldest to the youngest, enjoyed the film."),
    ("The course content was excellent, although the videos often froze and the audio was quiet.", "Mixed", "The reviewer values the content highly but reports technical problems with the videos and the sound."),
    ("These boots kept my feet dry on a two-day hike through mud and rain.", "Positive", "The reviewer reports that the boots did their job well in mud and rain over two days."),
    ("The app keeps logging me out and customer support never replied to my emails.", "Negative", "The reviewer describes an app that keeps failing and a support team that never answered."),
    ("Lovely view from the table, but we waited forty minutes for cold pasta.", "Mixed", "The reviewer enjoyed the view but was disappointed by the slow service and cold food."),
    ("Setup took five minutes and the speaker sounds much bigger than it looks.", "Positive", "The reviewer is pleased with how quick the setup was and how full the sound is."),
]
SUMMARISE = [  # (text, one-sentence summary)
    ("Our town library will start opening on Sundays from next month. The change follows a survey in which most residents asked for weekend hours. To pay for the extra staff, the library will close one hour earlier on Mondays, when very few people visit.",
     "The library will open on Sundays from next month, paid for by closing an hour earlier on quiet Mondays."),
    ("Many people think goldfish have a memory of only three seconds. In fact, experiments have shown that goldfish can learn to push a lever for food and can remember the trick for months. They can also be trained to respond to sounds and colours.",
     "Contrary to the popular three-second myth, goldfish can learn tricks and respond to cues, and they remember them for months."),
    ("The school football team lost its first three matches this season. After the coach changed the training schedule to include more short sprints and passing drills, the team won its next four games and now sits second in the league.",
     "After a new training schedule, the school team turned three early losses into four straight wins."),
    ("Walking for thirty minutes a day can improve mood, help sleep and strengthen the heart. It needs no special equipment, and short walks can be spread across the day, for example by taking the stairs or getting off the bus one stop early.",
     "A daily thirty-minute walk, even in short parts, benefits mood, sleep and heart health without special equipment."),
    ("The city will plant two thousand trees along busy roads over the next three years. Officials say the trees will provide shade, reduce noise and help absorb rainwater during storms. Residents can also ask for a tree outside their home.",
     "The city will plant two thousand roadside trees in three years for shade, quieter streets and better drainage."),
    ("Our office is switching to a new booking system for meeting rooms. From Monday, rooms must be reserved through the online calendar instead of the paper sheet by the lift. Bookings longer than two hours will need a manager's approval.",
     "From Monday, meeting rooms must be booked in the online calendar, and bookings over two hours need approval."),
]
FREE = [  # hand-written (instruction, input, output)
    ("List five fruits that are rich in vitamin C.", "",
     "Five fruits rich in vitamin C are oranges, kiwis, strawberries, guavas and papayas. Eating one or two of them each day is an easy way to get enough of the vitamin."),
    ("What is the difference between weather and climate?", "",
     "Weather describes conditions over hours or days, such as today's rain or wind. Climate is the average pattern of weather in a place over many years, for example hot dry summers and mild wet winters."),
    ("Give me a simple recipe for scrambled eggs.", "",
     "Beat two eggs with a pinch of salt. Melt a little butter in a pan over low heat, pour in the eggs and stir slowly with a spatula. Take the pan off the heat while the eggs still look slightly wet, because they keep cooking."),
    ("Write a four-line poem about autumn rain.", "",
     "The gutters hum a copper tune,\nThe leaves let go one afternoon,\nThe window wears a silver lace,\nAnd puddles hold the sky in place."),
    ("Suggest a plan for a rainy Saturday at home with two children.", "",
     "Start with a pancake breakfast, then build a blanket fort and read stories inside it. After lunch, hold a small baking contest or a board game tournament. Finish the day with a film and popcorn."),
    ("Explain why washing hands with soap is important.", "",
     "Soap breaks up the oily layer that holds germs on the skin, so rinsing washes them away. Regular hand washing, especially before eating and after using the toilet, greatly lowers the chance of catching or spreading illness."),
    ("What should I do if I lock myself out of my house?", "",
     "First check whether another door or window is open or whether someone else has a spare key. If not, call your landlord or a licensed locksmith. Avoid forcing the lock, which can cause expensive damage."),
    ("Write a short product description for a reusable water bottle.", "",
     "Stay refreshed all day with this steel bottle. Its double wall keeps drinks cold for twenty-four hours or hot for twelve, the leak-proof lid fits in any bag, and it replaces hundreds of plastic bottles a year."),
    ("Give an example of a metaphor and explain it.", "",
     "\"Time is a thief\" is a metaphor. It does not mean time actually steals, but it compares time to a thief to suggest that the years quietly take things from us, such as youth and chances."),
    ("Correct the grammar in this sentence.", "Me and him goes to the market every mornings.",
     "Corrected sentence: \"He and I go to the market every morning.\" The subject pronouns should be \"he\" and \"I\", the verb must agree with a plural subject, and \"morning\" should be singular after \"every\"."),
    ("Turn these notes into one clear sentence.", "meeting moved - thursday 3pm - room 12 - bring budget figures",
     "The meeting has been moved to Thursday at 3 pm in room 12, so please bring the budget figures with you."),
    ("Brainstorm four ways to use an old glass jar.", "",
     "An old glass jar can become a pencil holder, a small herb pot on the windowsill, a container for homemade jam, or a lantern if you put a candle inside. Clean it well and remove the label first."),
    ("How can I make my small bedroom feel bigger?", "",
     "Use light colours on the walls, hang a large mirror opposite the window and keep the floor as clear as possible. Choose furniture with legs and storage underneath, and put away anything you do not use every week."),
    ("Is it better to study in the morning or at night?", "",
     "It depends on the person. Many people concentrate best in the morning after a good sleep, while others feel sharper late in the day. Try both for a week and keep the time when you remember more."),
    ("Explain the rules of rock, paper, scissors.", "",
     "Two players count to three and show a hand shape at the same time. Rock beats scissors, scissors beats paper and paper beats rock. If both players show the same shape, they play again."),
    ("Write a friendly out-of-office reply.", "",
     "Thank you for your message. I am away from the office until Monday and will have limited access to email. I will reply as soon as I am back. For urgent matters, please contact the front desk."),
]


def build_alpaca():
    items = []
    for subj, cls, why in ANIMALS:
        art = "an" if cls[0] in "aeiou" else "a"
        items.append({"instruction": f"Is {subj[0].lower() + subj[1:]} a mammal, bird, fish, reptile, amphibian "
                                     "or insect? Explain briefly.",
                      "input": "", "output": f"{subj} is {art} {cls}. {why}"})
    for inf, formal in FORMAL:
        items.append({"instruction": "Rewrite this message in a more formal tone.", "input": inf, "output": formal})
    for act, tips in TIPS:
        out = " ".join(f"{k}. {t}" for k, t in enumerate(tips, 1))
        items.append({"instruction": f"Give three tips for {act}.", "input": "", "output": out})
    for k, (thing, expl) in enumerate(EXPLAIN):
        ins = [f"Explain what {thing} is in simple words.", f"What is {thing}? Explain it to a ten-year-old."][k % 2]
        items.append({"instruction": ins, "input": "", "output": expl})
    for ins, note in NOTES:
        items.append({"instruction": ins, "input": "", "output": note})
    for thing, names, comment in BRAINSTORM:
        out = f"Here are four ideas: {', '.join(names[:3])} and {names[3]}. {comment}"
        items.append({"instruction": f"Suggest four names for {thing}.", "input": "", "output": out})
    for review, label, why in REVIEWS:
        items.append({"instruction": "Classify the sentiment of this review as positive, negative or mixed, and explain why.",
                      "input": review, "output": f"{label}. {why}"})
    for text, summ in SUMMARISE:
        items.append({"instruction": "Summarize the following text in one sentence.", "input": text, "output": summ})
    rng = random.Random("reset-demo/alpaca/arith")
    goods = [("bakery", "loaves of bread"), ("bookshop", "notebooks"), ("florist", "bunches of tulips"),
             ("café", "slices of cake"), ("market stall", "jars of honey"), ("toy shop", "kites"),
             ("fruit stand", "bags of apples"), ("bike shop", "bells")]
    for k in range(10):
        shop, item = goods[k % len(goods)]
        a, b, p = rng.randint(12, 60), rng.randint(8, 45), rng.randint(2, 9)
        if k % 2 == 0:
            ins = (f"A {shop} sold {a} {item} in the morning and {b} in the afternoon. Each costs {p} crowns. "
                   "How much money did it take in? Show your working.")
            out = (f"It sold {a} + {b} = {a + b} {item} in total. At {p} crowns each, it took in "
                   f"{a + b} × {p} = {(a + b) * p} crowns.")
        else:
            ins = (f"A {shop} had {a + b} {item} and sold {a} of them. How many are left, and what is the "
                   f"value of the rest at {p} crowns each?")
            out = (f"{a + b} − {a} = {b} {item} are left. Their value is {b} × {p} = {b * p} crowns, "
                   "assuming the price stays the same.")
        items.append({"instruction": ins, "input": "", "output": out})
    for k in range(6):
        km = rng.randint(2, 40) + rng.choice([0, 0.5, 0.25])
        m = int(km * 1000)
        minutes = rng.randint(75, 400)
        if k % 2 == 0:
            items.append({"instruction": f"Convert {km} kilometres to metres and explain the step.", "input": "",
                          "output": f"There are 1,000 metres in a kilometre, so {km} kilometres is {km} × 1,000 = {m:,} metres."})
        else:
            items.append({"instruction": f"How many hours and minutes are {minutes} minutes?", "input": "",
                          "output": f"An hour has 60 minutes. {minutes} ÷ 60 = {minutes // 60} with a remainder of {minutes % 60}, "
                                    f"so {minutes} minutes is {minutes // 60} hours and {minutes % 60} minutes."})
    for ins, inp, out in FREE:
        items.append({"instruction": ins, "input": inp, "output": out})
    train = [it for k, it in enumerate(items) if k % 5 != 4]
    evals = [it for k, it in enumerate(items) if k % 5 == 4]
    return train, evals


# ================================================================ IFEval-style instructions
# (subject for the prompt, title, five comma-free sentences, candidate forbidden words)
TOPICS = [
    ("the benefits of a morning walk", "Morning Walks",
     ["A morning walk wakes up both the body and the mind.",
      "Fresh air and daylight help set your inner clock for the day.",
      "Walking at a steady pace strengthens the heart without tiring you out.",
      "Many people find that ideas come more easily while they walk.",
      "A short route near home is enough to feel the difference."],
     ["gym", "expensive", "treadmill"]),
    ("caring for a bicycle", "Caring for Your Bicycle",
     ["Keep the chain clean and add a drop of oil every few weeks.",
      "Check the tyre pressure before each longer ride.",
      "Test both brakes often and replace worn pads early.",
      "Store the bicycle indoors so that rain does not rust the parts.",
      "A yearly service at a local shop catches problems before they grow."],
     ["car", "cheap", "speed"]),
    ("why people should drink enough water", "Why Water Matters",
     ["Water helps the body control its temperature.",
      "It carries nutrients to the cells and removes waste.",
      "Even mild thirst can make it harder to concentrate.",
      "Fruit and soup also count toward your daily water.",
      "Keeping a bottle on your desk turns drinking into a habit."],
     ["soda", "coffee", "sugar"]),
    ("keeping a tidy desk", "A Tidy Desk",
     ["A tidy desk makes it easier to start work each morning.",
      "Keep only the things you use every day within reach.",
      "Give pens and cables their own small box or tray.",
      "Spend two minutes clearing the surface before you leave.",
      "File loose papers once a week so they never pile up."],
     ["messy", "chaos", "boss"]),
    ("reading before bed", "Reading at Bedtime",
     ["Reading a paper book before bed helps the mind slow down.",
      "Unlike a bright screen it does not keep you alert.",
      "Even ten pages can become a calming evening ritual.",
      "Choose gentle stories rather than tense thrillers late at night.",
      "Keep a small lamp by the bed so you can read without waking others."],
     ["phone", "television", "insomnia"]),
    ("planning a picnic", "The Perfect Picnic",
     ["Check the weather forecast a day before the picnic.",
      "Pack food that tastes good cold such as sandwiches and fruit.",
      "Bring a blanket and a bag for your rubbish.",
      "Choose a shady spot near water or under trees.",
      "Keep drinks cool in a bag with a frozen bottle inside."],
     ["rain", "restaurant", "barbecue"]),
    ("what makes a good neighbour", "Being a Good Neighbour",
     ["A good neighbour says hello and learns the names of the people next door.",
      "They keep noise down late in the evening.",
      "They offer to take in parcels or water plants during holidays.",
      "They talk about problems calmly instead of leaving angry notes.",
      "Small acts of kindness make a whole street feel friendlier."],
     ["police", "fence", "lawsuit"]),
    ("starting a vegetable garden", "Your First Vegetable Garden",
     ["Start small with one bed or a few large pots.",
      "Pick a place that gets at least six hours of sun.",
      "Lettuce and beans and radishes are easy crops for beginners.",
      "Water deeply twice a week rather than a little every day.",
      "Add compost each spring to keep the soil rich."],
     ["pesticide", "tractor", "farm"]),
    ("learning to cook", "Why Learn to Cook",
     ["Cooking at home saves money and lets you choose healthy ingredients.",
      "Start with a few simple dishes and cook them until they feel easy.",
      "A sharp knife and a heavy pan are worth more than many gadgets.",
      "Taste the food as you go and adjust the seasoning.",
      "Sharing a meal you made yourself is deeply satisfying."],
     ["takeaway", "microwave", "delivery"]),
    ("preparing for a long train journey", "Ready for the Train",
     ["Book a seat in advance if you can.",
      "Pack snacks and a bottle of water in an easy pocket.",
      "Download music or a film before you leave home.",
      "Bring a light scarf because carriages can feel cold.",
      "Keep your ticket and charger in the same small bag."],
     ["plane", "airport", "delay"]),
    ("why public libraries matter", "Why Libraries Matter",
     ["Public libraries lend books to anyone for free.",
      "They offer a quiet warm place to study or read.",
      "Many also run story hours for children and classes for adults.",
      "Librarians help people find reliable information.",
      "A library gives every neighbourhood a shared living room."],
     ["shop", "price", "noisy"]),
    ("enjoying winter", "The Quiet Joys of Winter",
     ["Winter brings crisp mornings and clear starry nights.",
      "A walk in the snow sounds different from any other walk.",
      "Warm soup tastes best after time spent outdoors.",
      "Long evenings leave room for books and board games.",
      "Even short days can feel cosy with candles and good company."],
     ["summer", "beach", "heat"]),
    ("writing a thank-you letter", "Writing a Thank-You Letter",
     ["Write the letter soon while the moment is still fresh.",
      "Name the gift or the kind act that you are thankful for.",
      "Say in one sentence how it helped you or made you feel.",
      "Keep the tone warm and the letter short.",
      "Sign it by hand even if you type the rest."],
     ["email", "formal", "template"]),
    ("saving electricity at home", "Saving Electricity",
     ["Switch off lights when you leave a room.",
      "Unplug chargers that are not in use.",
      "Wash clothes at lower temperatures and dry them on a line.",
      "Choose efficient bulbs when old ones burn out.",
      "Close curtains at night to keep the heat inside."],
     ["solar", "generator", "bill"]),
    ("the importance of breakfast", "Start with Breakfast",
     ["Breakfast gives the body energy after a long night.",
      "Children who eat breakfast often concentrate better at school.",
      "A simple meal of oats and fruit keeps you full for hours.",
      "Preparing it the night before saves time in the morning.",
      "Eating slowly helps you notice when you are full."],
     ["donut", "skip", "fasting"]),
    ("being a good listener", "The Art of Listening",
     ["A good listener gives the speaker full attention.",
      "Put your phone away and make gentle eye contact.",
      "Let the other person finish before you reply.",
      "Ask a short question to show that you understood.",
      "Sometimes listening quietly helps more than giving advice."],
     ["interrupt", "argue", "lecture"]),
    ("packing for a day at the beach", "A Day at the Beach",
     ["Pack sun cream and a hat to protect your skin.",
      "Bring plenty of water and a few salty snacks.",
      "A large towel doubles as a blanket for the sand.",
      "Keep your keys and phone in a small dry bag.",
      "Take your rubbish home so the beach stays clean."],
     ["snow", "jacket", "umbrella"]),
    ("teaching a dog to sit", "Teaching a Dog to Sit",
     ["Hold a small treat just above the nose of the dog.",
      "Move the treat slowly back over its head.",
      "As its bottom touches the ground say the word sit.",
      "Give the treat and praise the dog at once.",
      "Practise for a few minutes several times a day."],
     ["punish", "shout", "cat"]),
    ("the benefits of learning music", "Why Learn Music",
     ["Learning an instrument trains patience and memory.",
      "Playing with others teaches teamwork and careful listening.",
      "Music gives people a healthy way to relax after a long day.",
      "Small daily practice brings steady progress.",
      "It is never too late to pick up a first instrument."],
     ["talent", "concert", "expensive"]),
    ("organising a small party", "Planning a Small Party",
     ["Decide on a date and send invitations two weeks ahead.",
      "Keep the menu simple with dishes you can make early.",
      "Ask guests about allergies when they reply.",
      "Prepare a playlist so the room never feels silent.",
      "Clear a space where people can stand and talk."],
     ["wedding", "caterer", "fireworks"]),
    ("why sleep matters for students", "Sleep and Learning",
     ["Sleep helps the brain store what was learned during the day.",
      "Tired students find it harder to focus in class.",
      "Most teenagers need eight to ten hours each night.",
      "A regular bedtime makes falling asleep easier.",
      "Late night cramming often costs more than it gains."],
     ["caffeine", "nap", "exam"]),
    ("starting a journal", "Starting a Journal",
     ["A journal is a private place to sort out your thoughts.",
      "Write for five minutes at the same time each day.",
      "You can note three good things that happened.",
      "Do not worry about spelling or neat handwriting.",
      "Reading old pages later shows how much you have grown."],
     ["blog", "publish", "diary"]),
    ("visiting a farmers market", "At the Farmers Market",
     ["A farmers market sells food grown close to home.",
      "Arrive early for the best choice of fruit and bread.",
      "Talk to the growers about how they raise their crops.",
      "Bring your own bags and some small change.",
      "Buying seasonal food often means better flavour."],
     ["supermarket", "plastic", "online"]),
    ("cycling safely at night", "Safe Cycling After Dark",
     ["Use a white light at the front and a red light at the back.",
      "Wear bright or reflective clothing.",
      "Ride a little away from parked cars in case a door opens.",
      "Slow down on roads you do not know well.",
      "Check your batteries before every evening ride."],
     ["helmetless", "racing", "music"]),
    # ---- topics below are used only for the eval file
    ("the value of volunteering", "Why Volunteer",
     ["Volunteering connects you with people you might never meet otherwise.",
      "It lets you learn new skills in a friendly setting.",
      "Even one hour a month can help a local group.",
      "Many volunteers say they feel happier and less stressed.",
      "Choose a cause that matters to you so you keep going."],
     ["salary", "profit", "boring"]),
    ("making a simple monthly budget", "A Simple Budget",
     ["Write down how much money comes in each month.",
      "List fixed costs such as rent and travel first.",
      "Set aside a small amount for savings right away.",
      "Divide what is left between food and fun.",
      "Check the plan at the end of the month and adjust it."],
     ["loan", "lottery", "stocks"]),
    ("the charm of old bookshops", "Old Bookshops",
     ["Old bookshops smell of paper and dust and time.",
      "Every shelf can hide a surprise from another century.",
      "Notes in the margins tell stories about earlier readers.",
      "The owners often know exactly where each book is.",
      "An hour spent browsing rarely feels wasted."],
     ["online", "download", "tablet"]),
    ("reducing screen time", "Less Screen Time",
     ["Turn off notifications that you do not need.",
      "Keep the phone out of the bedroom at night.",
      "Set a timer for apps that swallow your evenings.",
      "Replace one hour of scrolling with a walk or a book.",
      "Notice how much calmer you feel after a few days."],
     ["addicted", "delete", "ban"]),
    ("caring for a pet rabbit", "Caring for a Rabbit",
     ["Rabbits need a large space to hop and stretch every day.",
      "Fresh hay should make up most of their diet.",
      "Give them clean water and a few leafy greens.",
      "They are social animals and are happier in pairs.",
      "Handle them gently and support their back legs."],
     ["cage", "carrot", "bite"]),
    ("the benefits of stretching", "Why Stretch",
     ["Stretching keeps muscles flexible and joints moving freely.",
      "A few minutes in the morning can ease stiffness.",
      "Gentle stretches after sitting help the back.",
      "Move slowly and never push into sharp pain.",
      "Breathing calmly makes each stretch more effective."],
     ["injury", "weights", "marathon"]),
    ("welcoming a new colleague", "Welcoming a New Colleague",
     ["Greet the new colleague on the first morning.",
      "Show them where to find the kitchen and the supplies.",
      "Invite them to lunch during the first week.",
      "Explain the unwritten habits of the team.",
      "Check in after a month to see how they are settling in."],
     ["manager", "contract", "deadline"]),
    ("stargazing for beginners", "Beginning Stargazing",
     ["Find a dark place away from street lights.",
      "Let your eyes adjust for about twenty minutes.",
      "Start by finding bright star patterns such as the Plough.",
      "A simple star map or app helps you name what you see.",
      "Binoculars reveal craters on the Moon and many faint stars."],
     ["telescope", "cloudy", "astrology"]),
    ("making a good cup of tea", "A Good Cup of Tea",
     ["Use freshly boiled water for the best flavour.",
      "Warm the pot or cup before adding the tea.",
      "Let black tea steep for three to five minutes.",
      "Green tea prefers water that is a little cooler.",
      "Add milk or lemon only after the tea has steeped."],
     ["coffee", "sugar", "bag"]),
    ("keeping a houseplant healthy", "Happy Houseplants",
     ["Most houseplants prefer bright light without harsh midday sun.",
      "Water only when the top of the soil feels dry.",
      "Turn the pot now and then so the plant grows evenly.",
      "Wipe dust from the leaves with a damp cloth.",
      "Feed the plant lightly during spring and summer."],
     ["garden", "weed", "plastic"]),
]
N_TRAIN_TOPICS = 24

END_PHRASES = ["Is there anything else I can help with?", "Let me know if you have additional questions.",
               "Have a lovely day.", "That is all for now."]
POSTSCRIPTS = ["P.S. Start small and enjoy the process.", "P.S. Share this with a friend who might like it.",
               "P.S. A little every day goes a long way.", "P.S. Tell me how it works out for you."]
STOP = {"before", "rather", "because", "without", "during", "should", "another", "things", "people", "little",
        "makes", "every", "their", "about", "after", "other", "where", "which", "easier", "never", "always"}
BASE_PROMPTS = ["Write a short paragraph about {s}.", "Explain {s} to a friend who is curious about it.",
                "Give some practical advice on {s}."]
LIST_PROMPTS = ["Write a short list of points about {s}.", "Give me key points on {s}.",
                "List practical ideas about {s}."]
JSON_PROMPTS = ["Describe {s}.", "Give the main points about {s}.", "Share a few useful facts about {s}."]

NC, LOW, CAP = "punctuation:no_comma", "change_case:english_lowercase", "change_case:english_capital"
WORDS, SENTS = "length_constraints:number_words", "length_constraints:number_sentences"
BUL, TITLE, JSONF = "detectable_format:number_bullet_lists", "detectable_format:title", "detectable_format:json_format"
KW, FORB = "keywords:existence", "keywords:forbidden_words"
END, QUOTE, PS = "startend:end_checker", "startend:quotation", "detectable_content:postscript"

COMBOS = [  # a tuple (id, relation) for the length constraints
    [NC, (WORDS, "less than")], [LOW, (SENTS, "less than")], [CAP, (WORDS, "less than")], [BUL, TITLE],
    [KW, (SENTS, "at least")], [FORB, NC], [END, (WORDS, "less than")], [QUOTE, LOW], [PS, TITLE], [JSONF],
    [JSONF, KW], [LOW, BUL], [CAP, END], [PS, NC], [FORB, (SENTS, "less than")], [QUOTE, KW],
    [TITLE, (WORDS, "at least")], [(SENTS, "at least"), END], [BUL], [NC], [TITLE, BUL, NC], [CAP, TITLE],
    [PS], [QUOTE, (WORDS, "less than")], [KW, FORB], [JSONF, FORB],
]


def count_words(text):
    return len(re.findall(r"\w+", text))


def count_sentences(text):
    parts = re.split(r"(?<=[.!?])\s+", text.strip())
    return len([p for p in parts if re.search(r"[A-Za-z]", p)])


def has_word(text, word):
    return re.search(r"\b" + re.escape(word) + r"\b", text, flags=re.IGNORECASE) is not None


def phrase(cid, kw, j):
    v = j % 2
    if cid == NC:
        return ["Do not use any commas in your response.", "Avoid commas entirely."][v]
    if cid == LOW:
        return ["Your entire response should be in English and in all lowercase letters; no capital letters are allowed.",
                "Write everything in lowercase English letters only."][v]
    if cid == CAP:
        return ["Your entire response should be in English and in all capital letters.",
                "Write the whole answer in English using only CAPITAL LETTERS."][v]
    if cid == WORDS:
        if kw["relation"] == "less than":
            return [f"Answer in fewer than {kw['num_words']} words.", f"Keep it under {kw['num_words']} words."][v]
        return [f"Answer with at least {kw['num_words']} words.", f"Use no fewer than {kw['num_words']} words."][v]
    if cid == SENTS:
        if kw["relation"] == "less than":
            return [f"Your response should contain fewer than {kw['num_sentences']} sentences.",
                    f"Use less than {kw['num_sentences']} sentences."][v]
        return [f"Your response should contain at least {kw['num_sentences']} sentences.",
                f"Write {kw['num_sentences']} sentences or more."][v]
    if cid == BUL:
        return [f"Your answer must contain exactly {kw['num_bullets']} bullet points in markdown format, each line starting with \"* \".",
                f"Use exactly {kw['num_bullets']} markdown bullet points, each a line like \"* This is a point\"."][v]
    if cid == TITLE:
        return ["Include a title wrapped in double angular brackets, such as <<my title>>.",
                "Give your answer a title inside double angular brackets, like <<title>>."][v]
    if cid == KW:
        a, b = kw["keywords"]
        return [f"Include the keywords \"{a}\" and \"{b}\" in your response.",
                f"Make sure the words \"{a}\" and \"{b}\" appear in your answer."][v]
    if cid == FORB:
        a, b = kw["forbidden_words"]
        return [f"Do not include the words \"{a}\" or \"{b}\" in your response.",
                f"Never use the words \"{a}\" and \"{b}\"."][v]
    if cid == END:
        return [f"Finish your response with this exact phrase: \"{kw['end_phrase']}\". No other words should follow it.",
                f"End your answer with the exact phrase \"{kw['end_phrase']}\" and nothing after it."][v]
    if cid == QUOTE:
        return ["Wrap your entire response with double quotation marks.",
                "Put the whole answer inside double quotation marks."][v]
    if cid == PS:
        return ["At the end of your response, please explicitly add a postscript starting with P.S.",
                "Add a postscript at the end that starts with P.S."][v]
    if cid == JSONF:
        return ["Your entire output should be wrapped in JSON format, with a \"title\" field and a \"points\" list.",
                "Answer only with valid JSON that has a \"title\" string and a \"points\" list of sentences."][v]
    raise ValueError(cid)


def render_ifeval(j, topic, variant):
    subject, title, sents, forbidden = topic
    combo = COMBOS[j % len(COMBOS)]
    ids = [c[0] if isinstance(c, tuple) else c for c in combo]
    rel = {c[0]: c[1] for c in combo if isinstance(c, tuple)}
    rng = random.Random(f"reset-demo/ifeval/{j}")
    n = 3 + (j + variant) % 3
    chosen = sents[:n] if variant != 1 else sents[-n:]
    if JSONF in ids:
        body = json.dumps({"title": title, "points": chosen}, indent=2)
    elif BUL in ids:
        body = "\n".join("* " + s for s in chosen)
    else:
        body = " ".join(chosen)
    if END in ids:
        end_phrase = END_PHRASES[j % len(END_PHRASES)]
        body = body + " " + end_phrase
    if TITLE in ids:
        body = f"<<{title}>>\n\n" + body
    if PS in ids:
        body = body + "\n\n" + POSTSCRIPTS[j % len(POSTSCRIPTS)]
    if QUOTE in ids:
        body = '"' + body + '"'
    if LOW in ids:
        body = body.lower()
    if CAP in ids:
        body = body.upper()
    kwargs = []
    for cid in ids:
        if cid == WORDS:
            w = count_words(body)
            nw = (w // 10 + 2) * 10 if rel[cid] == "less than" else max(10, (w // 10) * 10)
            kwargs.append({"relation": rel[cid], "num_words": nw})
        elif cid == SENTS:
            s = count_sentences(body)
            ns = s + 1 + j % 2 if rel[cid] == "less than" else max(2, s - j % 2)
            kwargs.append({"relation": rel[cid], "num_sentences": ns})
        elif cid == BUL:
            kwargs.append({"num_bullets": n})
        elif cid == KW:
            cands = sorted({w for w in re.findall(r"[A-Za-z]+", " ".join(chosen).lower())
                            if len(w) >= 5 and w not in STOP})
            kwargs.append({"keywords": rng.sample(cands, 2)})
        elif cid == FORB:
            ok = [w for w in forbidden if not has_word(body, w)]
            kwargs.append({"forbidden_words": ok[:2]})
        elif cid == END:
            kwargs.append({"end_phrase": end_phrase})
        elif cid == PS:
            kwargs.append({"postscript_marker": "P.S."})
        else:
            kwargs.append({})
    base = (JSON_PROMPTS if JSONF in ids else LIST_PROMPTS if BUL in ids else BASE_PROMPTS)[variant].format(s=subject)
    prompt = " ".join([base] + [phrase(cid, kw, j) for cid, kw in zip(ids, kwargs)])
    return {"key": 1000 + j, "prompt": prompt, "instruction_id_list": ids, "kwargs": kwargs, "response": body}


def check_ifeval(item):
    """Re-check every constraint of the reference response; raise on any violation."""
    r = item["response"]
    assert len(item["instruction_id_list"]) == len(item["kwargs"]), item["key"]
    for cid, kw in zip(item["instruction_id_list"], item["kwargs"]):
        ok = True
        if cid == NC:
            ok = "," not in r
        elif cid == LOW:
            ok = r == r.lower() and r.islower()
        elif cid == CAP:
            ok = r == r.upper() and r.isupper()
        elif cid == WORDS:
            w = count_words(r)
            ok = w < kw["num_words"] if kw["relation"] == "less than" else w >= kw["num_words"]
        elif cid == SENTS:
            s = count_sentences(r)
            ok = s < kw["num_sentences"] if kw["relation"] == "less than" else s >= kw["num_sentences"]
        elif cid == BUL:
            stars = len(re.findall(r"^\s*\*[^\*].*$", r, flags=re.MULTILINE))
            dashes = len(re.findall(r"^\s*-.*$", r, flags=re.MULTILINE))
            ok = stars + dashes == kw["num_bullets"]
        elif cid == TITLE:
            ok = any(t.lstrip("<").rstrip(">").strip() for t in re.findall(r"<<[^\n]+>>", r))
        elif cid == KW:
            ok = len(kw["keywords"]) >= 1 and all(re.search(k, r, flags=re.IGNORECASE) for k in kw["keywords"])
        elif cid == FORB:
            ok = len(kw["forbidden_words"]) >= 1 and not any(has_word(r, w) for w in kw["forbidden_words"])
        elif cid == END:
            ok = r.strip().strip('"').lower().endswith(kw["end_phrase"].strip().lower())
        elif cid == QUOTE:
            s = r.strip()
            ok = len(s) > 1 and s[0] == '"' and s[-1] == '"'
        elif cid == PS:
            ok = kw == {"postscript_marker": "P.S."} and re.search(r"\s*p\.\s?s\..*$", r.lower(), flags=re.MULTILINE)
        elif cid == JSONF:
            try:
                json.loads(r.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip())
            except ValueError:
                ok = False
        else:
            raise ValueError(f"unknown instruction id {cid}")
        if not ok:
            raise AssertionError(f"IFEval item {item['key']} violates {cid} {kw}: {r!r}")
        if not (isinstance(kw, dict) and set(kw) <= ALLOWED_KWARGS[cid]):
            raise AssertionError(f"bad kwargs for {cid}: {kw}")


ALLOWED_KWARGS = {NC: set(), LOW: set(), CAP: set(), WORDS: {"relation", "num_words"},
                  SENTS: {"relation", "num_sentences"}, BUL: {"num_bullets"}, TITLE: set(), KW: {"keywords"},
                  FORB: {"forbidden_words"}, END: {"end_phrase"}, QUOTE: set(), PS: {"postscript_marker"},
                  JSONF: set()}


def build_ifeval():
    for subject, title, sents, forbidden in TOPICS:
        for s in sents:
            if "," in s:
                raise AssertionError(f"comma in IFEval topic sentence: {s}")
    train, evals = [], []
    j = 0
    for t, topic in enumerate(TOPICS):
        for variant in range(3):
            item = render_ifeval(j, topic, variant)
            check_ifeval(item)
            (train if t < N_TRAIN_TOPICS else evals).append(item)
            j += 1
    return train, evals


# ================================================================ validation + writing
MIN_COUNTS = {"squad_qa": (100, 25), "abstractive_qa": (60, 20), "news_summaries": (80, 20),
              "alpaca_instructions": (90, 20), "ifeval_instructions": (65, 25)}


def _check_range(name, text, lo, hi, what):
    n = nwords(text)
    if not lo <= n <= hi:
        raise AssertionError(f"{name}: {what} has {n} words (want {lo}-{hi}): {text[:80]!r}")


def validate(name, train, evals):
    lo_train, lo_eval = MIN_COUNTS[name]
    if len(train) < lo_train or len(evals) < lo_eval:
        raise AssertionError(f"{name}: {len(train)}/{len(evals)} items, need {lo_train}/{lo_eval}")
    id_key = "key" if name == "ifeval_instructions" else "id"
    if name != "alpaca_instructions":
        ids = [it[id_key] for it in train + evals]
        if len(ids) != len(set(ids)):
            raise AssertionError(f"{name}: duplicate ids")
    ctx_key = {"squad_qa": "context", "abstractive_qa": "passage", "news_summaries": "article",
               "alpaca_instructions": "instruction", "ifeval_instructions": "prompt"}[name]
    if name == "alpaca_instructions":
        keyf = lambda it: (it["instruction"], it["input"])  # noqa: E731
    else:
        keyf = lambda it: it[ctx_key]  # noqa: E731
    overlap = {keyf(it) for it in train} & {keyf(it) for it in evals}
    if overlap:
        raise AssertionError(f"{name}: {len(overlap)} contexts appear in both train and eval")
    for it in train + evals:
        if name == "squad_qa":
            ctx = it["context"]
            for txt, start in zip(it["answers"]["text"], it["answers"]["answer_start"]):
                if ctx[start:start + len(txt)] != txt:
                    raise AssertionError(f"{it['id']}: answer not at offset")
            _check_range(it["id"], ctx, 50, 120, "context")
        elif name == "abstractive_qa":
            _check_range(it["id"], it["passage"], 50, 120, "passage")
            _check_range(it["id"], it["answer"], 5, 40, "answer")
        elif name == "news_summaries":
            _check_range(it["id"], it["article"], 80, 160, "article")
            _check_range(it["id"], it["highlights"], 5, 40, "highlights")
            if not 1 <= len(it["highlights"].split("\n")) <= 3:
                raise AssertionError(f"{it['id']}: 1-3 highlight sentences")
        elif name == "alpaca_instructions":
            _check_range(it["instruction"], it["output"], 15, 80, "output")
        elif name == "ifeval_instructions":
            check_ifeval(it)
            _check_range(str(it["key"]), it["response"], 10, 90, "response")
    # no entity of an eval item leaks into train for the grounded sets (checked by title / names)
    if name == "squad_qa":
        if {it["title"] for it in train} & {it["title"] for it in evals}:
            raise AssertionError("squad_qa: title shared between train and eval")


def write_jsonl(path, items):
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for it in items:
            fh.write(json.dumps(it, ensure_ascii=False) + "\n")


def main():
    grounded = build_grounded()
    sets = {
        "squad_qa": (grounded["squad"]["train"], grounded["squad"]["eval"]),
        "abstractive_qa": (grounded["abstractive"]["train"], grounded["abstractive"]["eval"]),
        "news_summaries": (grounded["news"]["train"], grounded["news"]["eval"]),
        "alpaca_instructions": build_alpaca(),
        "ifeval_instructions": build_ifeval(),
    }
    for name, (train, evals) in sets.items():
        validate(name, train, evals)
    for name, (train, evals) in sets.items():
        write_jsonl(HERE / f"{name}.jsonl", train)
        write_jsonl(HERE / f"{name}_eval.jsonl", evals)
        print(f"{name + '.jsonl':34s} {len(train):4d} items   {name + '_eval.jsonl':39s} {len(evals):4d} items")


if __name__ == "__main__":
    main()
