"""Slovak names for the simulated call centre: queues, agents and the people who call in.

Extension names on the PBX allow only letters, digits and spaces, so every name here does too
(Slovak letters with diacritics count as letters).
"""

from __future__ import annotations

import random

QUEUE_NAMES: tuple[str, ...] = (
    "Predaj",
    "Zákaznícka podpora",
    "Technická podpora",
    "Reklamácie",
    "Fakturácia",
    "Objednávky",
    "Servis",
    "Doprava",
    "Partneri",
    "VIP linka",
    "Retencia",
    "Recepcia",
)

MALE_FIRST: tuple[str, ...] = (
    "Ján", "Peter", "Martin", "Tomáš", "Michal", "Jozef", "Marek", "Lukáš", "Juraj", "Milan",
    "Pavol", "Ivan", "Róbert", "Matej", "Dominik", "Filip", "Adam", "Jakub", "Samuel", "Ondrej",
    "Stanislav", "Miroslav", "Vladimír", "Rastislav", "Igor",
)  # fmt: skip

FEMALE_FIRST: tuple[str, ...] = (
    "Mária", "Jana", "Eva", "Anna", "Zuzana", "Katarína", "Lucia", "Monika", "Martina", "Veronika",
    "Barbora", "Lenka", "Petra", "Simona", "Ivana", "Michaela", "Kristína", "Dominika", "Natália",
    "Alžbeta", "Silvia", "Andrea", "Soňa", "Tatiana", "Laura",
)  # fmt: skip

# Surnames as (masculine, feminine): Slovak feminine surnames are mostly -ová, adjectival ones -á.
SURNAMES: tuple[tuple[str, str], ...] = (
    ("Horváth", "Horváthová"), ("Kováč", "Kováčová"), ("Varga", "Vargová"), ("Tóth", "Tóthová"),
    ("Nagy", "Nagyová"), ("Baláž", "Balážová"), ("Szabó", "Szabóová"), ("Molnár", "Molnárová"),
    ("Novák", "Nováková"), ("Lukáč", "Lukáčová"), ("Kollár", "Kollárová"), ("Polák", "Poláková"),
    ("Mészáros", "Mészárosová"), ("Oravec", "Oravcová"), ("Šimko", "Šimková"),
    ("Hudák", "Hudáková"),
    ("Kučera", "Kučerová"), ("Krajčí", "Krajčíová"), ("Marek", "Mareková"), ("Urban", "Urbanová"),
    ("Blaho", "Blahová"), ("Kráľ", "Kráľová"), ("Zeman", "Zemanová"), ("Švec", "Švecová"),
    ("Mikuláš", "Mikulášová"), ("Hruška", "Hrušková"), ("Jurík", "Juríková"),
    ("Ďurica", "Ďuricová"), ("Hlavatý", "Hlavatá"),
    ("Čierny", "Čierna"), ("Biely", "Biela"), ("Malý", "Malá"), ("Veľký", "Veľká"),
    ("Slovák", "Slováková"), ("Sokol", "Sokolová"), ("Hric", "Hricová"), ("Holub", "Holubová"),
)  # fmt: skip

# Slovak mobile prefixes after the country code (Orange, Telekom, O2, 4ka).
MOBILE_PREFIXES: tuple[str, ...] = (
    "901", "902", "903", "904", "905", "906", "907", "908", "910", "911", "914", "915", "916",
    "917", "918", "940", "944", "945", "948", "949", "950", "951",
)  # fmt: skip


def person_name(rng: random.Random) -> str:
    """A random Slovak full name, e.g. "Zuzana Kováčová"."""
    masculine, feminine = rng.choice(SURNAMES)
    if rng.random() < 0.5:
        return f"{rng.choice(MALE_FIRST)} {masculine}"
    return f"{rng.choice(FEMALE_FIRST)} {feminine}"


def queue_name(index: int) -> str:
    """The name of the index-th queue; past the named ones, numbered lines ("Linka 13")."""
    if index < len(QUEUE_NAMES):
        return QUEUE_NAMES[index]
    return f"Linka {index + 1}"


_LANDLINE_AREAS = ("2", "2", "2", "31", "32", "33", "41", "43", "44", "51", "55")


def external_number(rng: random.Random) -> str:
    """A caller's number as the PBX shows it: international format with a `00` prefix."""
    # Drawn from rng.random() alone: a month of history draws hundreds of thousands of numbers,
    # and choice()/randrange() cost several times more.
    roll = rng.random()
    if roll < 0.75:
        prefix = MOBILE_PREFIXES[int(rng.random() * len(MOBILE_PREFIXES))]
        return f"00421{prefix}{int(rng.random() * 1_000_000):06d}"
    if roll < 0.93:
        # Slovak landlines: Bratislava (2) or a regional two-digit area code.
        area = _LANDLINE_AREAS[int(rng.random() * len(_LANDLINE_AREAS))]
        digits = 8 if area == "2" else 7
        return f"00421{area}{int(rng.random() * 10**digits):0{digits}d}"
    # Neighbours: Czech mobiles and Austrian numbers.
    if rng.random() < 0.7:
        return f"00420{'67'[rng.random() >= 0.5]}{int(rng.random() * 10**8):08d}"
    return f"00436{int(rng.random() * 10**9):09d}"
