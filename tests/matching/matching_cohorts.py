"""Hand-made and seeded small cohorts, and brute-force checks written from the rules."""

from __future__ import annotations

import random

from matching.profiles import Mentee, Mentor, normalise_tag, parse_time_zone
from matching.score import combined_score, minutes_apart
from matching.settings import MatchSettings


def person(cls: type, email: str, **kw: object) -> Mentor | Mentee:
    tz = str(kw.pop("time_zone", "UTC"))
    fields: dict[str, object] = {
        "email": email,
        "name": email.split("@")[0].title(),
        "field": "",
        "interests": (),
        "goals": (),
        "languages": ("English",),
        "time_zone": tz,
        "utc_offset_minutes": parse_time_zone(tz),
        "organisation": "",
        "gender": "",
        "prefer_same_gender": False,
        "line": 0,
    }
    fields.update(kw)
    return cls(**fields)  # type: ignore[no-any-return]


def mentor(email: str, **kw: object) -> Mentor:
    p = person(Mentor, email, **kw)
    assert isinstance(p, Mentor)
    return p


def mentee(email: str, **kw: object) -> Mentee:
    p = person(Mentee, email, **kw)
    assert isinstance(p, Mentee)
    return p


def allowed(m: Mentor, e: Mentee, s: MatchSettings, exclude: set[tuple[str, str]]) -> bool:
    """The hard rules, as a coordinator would check them by hand."""
    langs = {normalise_tag(x) for x in m.languages}
    if not any(normalise_tag(x) in langs for x in e.languages):
        return False
    if minutes_apart(m.utc_offset_minutes, e.utc_offset_minutes) > s.max_time_zone_minutes:
        return False
    if (
        s.separate_organisations
        and m.organisation
        and (normalise_tag(m.organisation) == normalise_tag(e.organisation))
    ):
        return False
    if e.prefer_same_gender and m.gender != e.gender:
        return False
    if m.prefer_same_gender and m.gender != e.gender:
        return False
    return (m.email, e.email) not in exclude and m.email != e.email


def random_cohort(
    seed: int, n_mentees: int = 40, n_mentors: int = 14
) -> tuple[list[Mentor], list[Mentee]]:
    rng = random.Random(seed)
    zones = ["UTC", "Europe/Madrid", "America/New_York", "Asia/Tokyo", "+05:30", "UTC-3"]
    tags = [f"t{i}" for i in range(8)]

    def attrs() -> dict[str, object]:
        gender = rng.choice(["woman", "man", ""])
        return {
            "field": rng.choice(["civil", "software", "biology"]),
            "interests": tuple(rng.sample(tags, rng.randint(0, 3))),
            "goals": tuple(rng.sample(tags, rng.randint(0, 2))),
            "languages": tuple(rng.sample(["English", "Spanish", "Hindi"], rng.randint(1, 2))),
            "time_zone": rng.choice(zones),
            "organisation": rng.choice(["Acme", "Beta", "Gamma", ""]),
            "gender": gender,
            "prefer_same_gender": bool(gender) and rng.random() < 0.2,
        }

    mentors = [
        mentor(f"m{i}@x.org", capacity=rng.randint(0, 3), **attrs()) for i in range(n_mentors)
    ]
    mentees = [mentee(f"e{i}@x.org", **attrs()) for i in range(n_mentees)]
    return mentors, mentees


def brute_blocking(
    mentors: list[Mentor],
    mentees: list[Mentee],
    pairs: dict[str, str],
    s: MatchSettings,
) -> int:
    """Blocking pairs by definition, over every admissible pair."""
    index_m = {m.email: i for i, m in enumerate(mentors)}
    score = {(m.email, e.email): combined_score(m, e, s) for m in mentors for e in mentees}
    held: dict[str, list[int]] = {m.email: [] for m in mentors}
    for j, e in enumerate(mentees):
        if e.email in pairs:
            held[pairs[e.email]].append(j)
    count = 0
    for j, e in enumerate(mentees):
        mine = pairs.get(e.email)
        for m in mentors:
            if m.email == mine or not allowed(m, e, s, set()) or m.capacity == 0:
                continue
            here = (score[(m.email, e.email)], -index_m[m.email])
            if mine is not None and here <= (score[(mine, e.email)], -index_m[mine]):
                continue
            taken = held[m.email]
            if len(taken) < m.capacity:
                count += 1
                continue
            worst = min((score[(m.email, mentees[k].email)], -k) for k in taken)
            if (score[(m.email, e.email)], -j) > worst:
                count += 1
    return count


def crowded_cohort(
    seed: int, n_mentees: int, n_mentors: int, capacity: int = 3
) -> tuple[list[Mentor], list[Mentee]]:
    """A cohort as tight as the one in issue 18: places for exactly every mentee, six
    languages, five time zones, fifty organisations."""
    rng = random.Random(seed)
    languages = ["English", "Spanish", "French", "Hindi", "Arabic", "Swahili"]
    zones = ["America/New_York", "UTC", "Europe/Berlin", "Asia/Dubai", "Asia/Tokyo"]
    tags = [f"t{i}" for i in range(30)]

    def attrs() -> dict[str, object]:
        return {
            "field": rng.choice(["civil", "software", "biology", "law", "art"]),
            "interests": tuple(rng.sample(tags, 3)),
            "goals": tuple(rng.sample(tags, 2)),
            "languages": tuple(rng.sample(languages, rng.choice([1, 1, 2]))),
            "time_zone": rng.choice(zones),
            "organisation": f"org {rng.randrange(50)}",
        }

    mentors = [mentor(f"m{i}@x.org", capacity=capacity, **attrs()) for i in range(n_mentors)]
    mentees = [mentee(f"e{i}@x.org", **attrs()) for i in range(n_mentees)]
    return mentors, mentees
