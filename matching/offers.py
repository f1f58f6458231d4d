"""Offers: the best few mentors for each mentee to choose from (the MentorNet loop).

This module owns which mentors an offer names. Each mentee who can be matched gets
up to ``choices`` mentors, best score first, under the same hard rules and scoring
as match(). One of them is *reserved*: the mentor match() assigns in a maximum
matching of the places given, so that every offer made in one round can end in a
pair at the same time, whatever the others choose (the places given are the
mentors' free places, after current pairs and places other open offers hold). The
other names are the mentee's best other suitable mentors with a free place; the
relay checks that a chosen one still has room when it invites them.

Pure: profiles and settings in, offers out. It calls match(), ScoreModel and
collect_candidates as they are and never imports relay/.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .blocks import ScoreModel
from .candidates import collect_candidates
from .match import Unmatched, match
from .profiles import Mentee, Mentor
from .score import RESOLUTION, explainer, total_weight
from .settings import MatchSettings

__all__ = ["Candidate", "Offer", "OfferRound", "make_offers"]

MAX_CHOICES = 10


@dataclass(frozen=True, slots=True)
class Candidate:
    mentor: Mentor
    score: float  # in [0, 1]
    reasons: tuple[str, ...]  # why they fit, in words
    reserved: bool  # the place this offer holds from the start


@dataclass(frozen=True, slots=True)
class Offer:
    mentee: Mentee
    candidates: tuple[Candidate, ...]  # best first; exactly one is reserved


@dataclass(frozen=True, slots=True)
class OfferRound:
    offers: tuple[Offer, ...]
    unmatched: tuple[Unmatched, ...]  # mentees no offer can be made to, with the reason


def make_offers(
    mentors: Sequence[Mentor],
    mentees: Sequence[Mentee],
    settings: MatchSettings,
    choices: int = 3,
    exclude: Iterable[tuple[str, str]] = frozenset(),
) -> OfferRound:
    """Up to ``choices`` candidates per mentee; a mentor's capacity is their free places.

    exclude holds (mentor email, mentee email) pairs never to be named (pairs that
    exist or ended).
    """
    if not 1 <= choices <= MAX_CHOICES:
        raise ValueError(f"choices must be from 1 to {MAX_CHOICES}, not {choices}")
    excluded = frozenset(exclude)
    result = match(mentors, mentees, settings, method="optimal", exclude=excluded)
    reserved = {p.mentee_email: p.mentor_email for p in result.proposals}
    if not reserved:
        return OfferRound((), result.unmatched)
    # Enough listed mentors per mentee to find `choices` with room besides the reserved.
    wide = MatchSettings(
        weights=settings.weights,
        max_time_zone_hours=settings.max_time_zone_hours,
        separate_organisations=settings.separate_organisations,
        candidates_per_mentee=max(settings.candidates_per_mentee, 2 * choices),
        candidates_per_mentor=settings.candidates_per_mentor,
    )
    model = ScoreModel(mentors, mentees, wide, excluded)
    listed = collect_candidates(model)
    scale = float(RESOLUTION * total_weight(settings)) or 1.0
    position = {m.email: i for i, m in enumerate(mentors)}
    why = explainer(settings)  # the settings read once, not per candidate
    offers = []
    for u, mentee in enumerate(mentees):
        chosen_email = reserved.get(mentee.email)
        if chosen_email is None:
            continue
        picked: list[tuple[float, int, bool]] = []
        for mentor_index, points in zip(
            listed.mentors[u].tolist(), listed.scores[u].tolist(), strict=True
        ):
            if mentor_index < 0:
                break
            is_reserved = mentors[mentor_index].email == chosen_email
            if is_reserved or mentors[mentor_index].capacity > 0:
                picked.append((points / scale, mentor_index, is_reserved))
        others = [p for p in picked if not p[2]][: choices - 1]
        if not any(p[2] for p in picked):  # outside the listed few: score it directly
            index = position[chosen_email]
            points = float(model.block(np.array([u]), np.array([index]))[0, 0])
            picked.append((points / scale, index, True))
        mine = [p for p in picked if p[2]][:1]
        ordered = sorted(others + mine, key=lambda p: (-p[0], p[1]))
        offers.append(
            Offer(
                mentee=mentee,
                candidates=tuple(
                    Candidate(
                        mentor=mentors[index],
                        score=score,
                        reasons=tuple(why(mentors[index], mentee)),
                        reserved=is_reserved,
                    )
                    for score, index, is_reserved in ordered
                ),
            )
        )
    return OfferRound(tuple(offers), result.unmatched)
