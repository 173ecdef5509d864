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
         "The {name} town hall clock runs again after a {months}-month repair costing {cost} crowns.\n"
         "Ice had cracked a brass wheel, and {restorer}'s workshop made a new one by hand.\n"
         "The clock tower will open to visitors on the first weekend of each month."),
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
         "An inquiry blames {incident_cause} for the grounding of the {name} on {incident_place}.\n"
         "All {aboard} people aboard were rescued by {rescuer} without injury.\n"
         "Owners are asked to fit a second warning system on the route."),
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
    r["previous"] = num(rng.randrange(800, 1200, 10) * 1)
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
         "{volunteers} volunteers who helped with the count. Further surveys are planned every two years.",
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
         "The {name} has won a {grant} million crown grant to test {result}.\n"
         "Trials will run at {trial_sites} sites over {years} years.\n"
         "The grant will also create {new_posts} posts for young scientists."),
        ("{director} will step down as director of the {name} at the end of the year, the laboratory "
         "announced on {weekday}. {new_director} will take over. {director} led the team of {staff} "
         "researchers that reported {result} in {result_year}, and oversaw the move to {new_site} in "
         "{move_year} after {relocate_cause}. The laboratory, set up in {city} in {founded}, has a yearly "
         "budget of about {budget} million crowns. {new_director} said the work on {focus} would continue "
         "without change.",
         "{director} will step down as director of the {name} at the end of the year.\n"
         "{new_director} will take over the laboratory.\n"
         "The new director said the work on {focus} would continue without change."),
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


# @@PART4@@
# @@PART4@@
