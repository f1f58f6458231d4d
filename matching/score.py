"""How well one mentor fits one mentee: one function per criterion, the combined score, and
the reasons given to a coordinator.

Every criterion returns a number in [0, 1] that is a whole multiple of 1/RESOLUTION.
Keeping scores on that grid is what lets the vectorised scorer (blocks.py) compute the
same numbers exactly with float32 matrix products, so ties are real ties and the result
does not depend on how mentees are grouped into blocks.

The combined score is the weighted mean of the criteria (weights high 3, medium 2,
low 1; a mandatory criterion weighs as high), so it is also in [0, 1].
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping

from .profiles import Mentee, Mentor, normalise_tag
from .settings import CRITERIA, MatchSettings

__all__ = [
    "CRITERION_FUNCTIONS",
    "RESOLUTION",
    "combined_score",
    "criterion_scores",
    "explain",
    "explainer",
    "field_score",
    "goals_score",
    "interests_score",
    "language_score",
    "minutes_apart",
    "time_zone_score",
]

# lcm(1..12) * 2: list coverage with up to 12 items and time-zone gaps in whole
# minutes (RESOLUTION / 720 = 77) are exact on this grid.
RESOLUTION = 55440
HALF_DAY = 12 * 60


def minutes_apart(a: int, b: int) -> int:
    """Clock difference between two UTC offsets, going round the day (UTC+12 vs UTC-12: 0)."""
    d = abs(a - b) % (2 * HALF_DAY)
    return min(d, 2 * HALF_DAY - d)


@functools.lru_cache(maxsize=1 << 17)  # about three lists per person of 40,000
def _tags(items: tuple[str, ...]) -> frozenset[str]:
    """The comparison forms of a profile's list; cached, as each list is compared with
    every partner proposed and explained."""
    return frozenset(normalise_tag(x) for x in items)


def _coverage(wanted: tuple[str, ...], offered: tuple[str, ...]) -> float:
    if not wanted:
        return 0.0
    have = _tags(offered)
    shared = sum(1 for x in wanted if normalise_tag(x) in have)
    # The per-item share is floored onto the grid so that the blocks.py features
    # (one number per mentee interest) add up to exactly this.
    return shared * (RESOLUTION // len(wanted)) / RESOLUTION


def field_score(mentor: Mentor, mentee: Mentee) -> float:
    """1 when both name the same field (case-insensitive), else 0."""
    same = mentee.field and normalise_tag(mentee.field) == normalise_tag(mentor.field)
    return 1.0 if same else 0.0


def interests_score(mentor: Mentor, mentee: Mentee) -> float:
    """Share of the mentee's interests that the mentor also lists."""
    return _coverage(mentee.interests, mentor.interests)


def goals_score(mentor: Mentor, mentee: Mentee) -> float:
    """Share of the mentee's goals that the mentor also lists (goals they help with)."""
    return _coverage(mentee.goals, mentor.goals)


def language_score(mentor: Mentor, mentee: Mentee) -> float:
    """0 with no shared language, 0.5 with one, 1 when the mentor speaks the mentee's first."""
    spoken = _tags(mentor.languages)
    if not any(normalise_tag(x) in spoken for x in mentee.languages):
        return 0.0
    return 1.0 if normalise_tag(mentee.languages[0]) in spoken else 0.5


def time_zone_score(mentor: Mentor, mentee: Mentee) -> float:
    """1 in the same time zone, falling linearly to 0 at 12 hours apart."""
    d = minutes_apart(mentor.utc_offset_minutes, mentee.utc_offset_minutes)
    return (RESOLUTION - d * (RESOLUTION // HALF_DAY)) / RESOLUTION


CRITERION_FUNCTIONS: Mapping[str, Callable[[Mentor, Mentee], float]] = {
    "field": field_score,
    "interests": interests_score,
    "goals": goals_score,
    "language": language_score,
    "time_zone": time_zone_score,
}


def criterion_scores(mentor: Mentor, mentee: Mentee) -> dict[str, float]:
    return {name: CRITERION_FUNCTIONS[name](mentor, mentee) for name in CRITERIA}


def total_weight(settings: MatchSettings) -> int:
    return sum(settings.weight(c).points for c in CRITERIA)


def combined_score(mentor: Mentor, mentee: Mentee, settings: MatchSettings) -> float:
    """Weighted mean of the criteria, in [0, 1] (0 when every weight is off)."""
    weight = total_weight(settings)
    if weight == 0:
        return 0.0
    scores = criterion_scores(mentor, mentee)
    return sum(settings.weight(c).points * scores[c] for c in CRITERIA) / weight


def _listing(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _shared(wanted: tuple[str, ...], offered: tuple[str, ...]) -> list[str]:
    have = _tags(offered)
    return [x for x in wanted if normalise_tag(x) in have]


def _reason(criterion: str, mentor: Mentor, mentee: Mentee) -> str:
    if criterion == "field":
        return f"both in {mentee.field}"
    if criterion == "interests":
        shared = _shared(mentee.interests, mentor.interests)
        if len(shared) == 1:
            return f"both interested in {shared[0]}"
        return f"share interests in {_listing(shared[:3])}"
    if criterion == "goals":
        shared = _shared(mentee.goals, mentor.goals)
        noun = "goal" if len(shared) == 1 else "goals"
        return f"share the {noun} {_listing(shared[:3])}"
    if criterion == "language":
        return f"share {_listing(_shared(mentee.languages, mentor.languages))}"
    d = minutes_apart(mentor.utc_offset_minutes, mentee.utc_offset_minutes)
    if d == 0:
        return "same time zone"
    return f"{d / 60:.2f}".rstrip("0").rstrip(".") + " h apart"


def explainer(settings: MatchSettings, limit: int = 3) -> Callable[[Mentor, Mentee], list[str]]:
    """explain() with the settings read once: for the many pairs of one match."""
    weighted_criteria = [
        (settings.weight(c).points, -i, c, CRITERION_FUNCTIONS[c])
        for i, c in enumerate(CRITERIA)
        if settings.weight(c).points > 0
    ]

    def explain_pair(mentor: Mentor, mentee: Mentee) -> list[str]:
        weighted = []
        for points, order, c, score_of in weighted_criteria:
            score = score_of(mentor, mentee)
            if score > 0:
                weighted.append((points * score, order, c))
        weighted.sort(reverse=True)
        return [_reason(c, mentor, mentee) for _, _, c in weighted[:limit]]

    return explain_pair


def explain(mentor: Mentor, mentee: Mentee, settings: MatchSettings, limit: int = 3) -> list[str]:
    """The criteria that contributed most to this pair's score, in words, best first."""
    return explainer(settings, limit)(mentor, mentee)
